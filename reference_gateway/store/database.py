"""One SQLite connection, owned by one dedicated thread.

Why the standard library's ``sqlite3`` on a private thread rather than ``aiosqlite``:
aiosqlite is the same design (a thread per connection fed by a queue) behind a
dependency; owning the thread lets every write be one ``executemany`` in one transaction,
and lets the CLI run the very same SQL functions synchronously. The event loop never
blocks on the database, and the gateway's hot path does not touch it at all: tenants and
keys are cached, usage rows are written in batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from reference_gateway.store.schema import migrate

__all__ = ["Database", "connect"]

T = TypeVar("T")


def connect(path: str) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the database at ``path``.

    The connection is in autocommit mode: functions open transactions explicitly.
    """
    if path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    return conn


class Database:
    """Runs functions of a :class:`sqlite3.Connection` on the connection's own thread.

    ``await db.run(fn, *args)`` calls ``fn(conn, *args)`` there; :meth:`close` waits for
    pending work, then closes the connection.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="provara-sqlite")
        self._local = threading.local()
        self._closed = False
        # Open it now, so a bad path fails at start-up rather than on the first request.
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        self._local.conn = connect(self.path)

    def _call(self, fn: Callable[..., T], *args: object) -> T:
        conn: sqlite3.Connection = self._local.conn
        return fn(conn, *args)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(conn, *args)`` on the database thread."""
        if self._closed:
            raise RuntimeError("the database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn, *args)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(conn, *args)`` on the database thread, blocking the caller."""
        if self._closed:
            raise RuntimeError("the database is closed")
        return self._executor.submit(self._call, fn, *args).result()

    def _close_conn(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        """Finish pending work and close the connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self._close_conn).result()
        self._executor.shutdown(wait=True)
