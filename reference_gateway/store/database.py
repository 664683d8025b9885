"""The store as the gateway uses it: SQL functions run on worker threads, one transaction
per call.

Why threads and SQLAlchemy's synchronous Core rather than an async driver: each SQL
function of ``store/`` takes a connection and runs plain statements, so the CLI calls the
very same functions synchronously and the event loop never blocks on the database. SQLite
gets one thread (one writer is all it has anyway); PostgreSQL a few, each with a pooled
connection. The gateway's hot path does not read the database: tenants and keys are
cached, and the only write it waits for is a completion's usage row (see
:mod:`reference_gateway.usage`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa

from reference_gateway.store.engine import READ_ONLY, create_engine, inline_sqlite_engine, is_sqlite
from reference_gateway.store.schema import migrate

__all__ = ["Database", "connect"]

T = TypeVar("T")

_POSTGRES_THREADS = 4


@contextmanager
def connect(url: str) -> Iterator[sa.Connection]:
    """One transaction on ``url``'s database (migrated first), for the CLI and tests."""
    engine = create_engine(url, pool_size=1)
    try:
        migrate(engine)
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


class Database:
    """Runs functions of a :class:`sqlalchemy.Connection` on worker threads.

    ``await db.run(fn, *args)`` calls ``fn(conn, *args)`` there inside one transaction
    (committed when ``fn`` returns, rolled back when it raises); :meth:`close` waits for
    pending work, then disposes of the connections. The database is migrated when the
    object is made, so a bad URL or an unreachable server fails at start-up.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = is_sqlite(url)
        threads = 1 if self.is_sqlite else _POSTGRES_THREADS
        self.engine = create_engine(url, pool_size=threads)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="provara-db")
        self._closed = False
        self._inline: sa.Engine | None = None
        self._read_options = {READ_ONLY: True} if self.is_sqlite else {"postgresql_readonly": True}
        try:
            self._executor.submit(migrate, self.engine).result()
        except BaseException:
            self.close()
            raise
        self._inline = inline_sqlite_engine(url)

    def _call(self, fn: Callable[..., T], *args: object) -> T:
        with self.engine.begin() as conn:
            return fn(conn, *args)

    def _read(self, fn: Callable[..., T], *args: object) -> T:
        with self.engine.connect() as conn:
            conn.execution_options(**self._read_options)
            with conn.begin():
                return fn(conn, *args)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(conn, *args)`` in one transaction on a database thread."""
        if self._closed:
            raise RuntimeError("the database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn, *args)

    async def read(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(conn, *args)`` in one read-only transaction on a database thread.

        On SQLite it takes no lock (a long report never holds up another process's
        writes); on PostgreSQL the transaction is ``READ ONLY``, so a write in ``fn`` fails.
        """
        if self._closed:
            raise RuntimeError("the database is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read, fn, *args)

    def try_inline(self, fn: Callable[..., T], *args: object) -> tuple[bool, T | None]:
        """``(True, fn(conn, *args))`` in one transaction on the caller's thread, when the
        store is a SQLite file whose write lock is free now; ``(False, None)`` otherwise
        (the caller then uses :meth:`run`).

        For a short write that a request waits for: on SQLite a one-row commit costs less
        than handing it to the database thread and back (about 0.2 ms against 0.6 ms
        measured), and it never waits for another process's lock.
        """
        engine = self._inline
        if engine is None or self._closed:
            return False, None
        try:
            with engine.begin() as conn:
                return True, fn(conn, *args)
        except sa.exc.OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                return False, None
            raise

    def _checkpoint(self) -> None:
        with self.engine.connect() as conn:
            # On the driver's connection, outside a transaction: inside one the log
            # could not be copied up to the present.
            driver = conn.connection.driver_connection
            if driver is not None:
                driver.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def checkpoint(self) -> None:
        """Copy a SQLite file's write-ahead log into the database, on the database thread
        (inline writes leave that to it). Nothing on PostgreSQL."""
        if self._inline is not None and not self._closed:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._checkpoint)

    def run_sync(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(conn, *args)`` in one transaction on a database thread, blocking the caller."""
        if self._closed:
            raise RuntimeError("the database is closed")
        return self._executor.submit(self._call, fn, *args).result()

    def close(self) -> None:
        """Finish pending work and close the connections. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self.engine.dispose()
        if self._inline is not None:
            self._inline.dispose()
