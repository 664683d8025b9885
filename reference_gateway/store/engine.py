"""Database URLs and SQLAlchemy engines for the two stores: SQLite and PostgreSQL.

``PROVARA_DATABASE_URL`` is ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``
(a bare path means the same file) or ``postgresql://user:password@host:port/name`` (driven by
psycopg 3). Every transaction on SQLite starts with ``BEGIN IMMEDIATE``: it takes the write
lock at once, so two processes never both read and then fail to upgrade to writing; a
connection with the :data:`READ_ONLY` option begins a plain read instead. The
file is in WAL mode with ``synchronous = NORMAL``: a committed transaction survives the
gateway process being killed (it is in the operating system's hands), though not a power
cut.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from provara_kit.errors import ConfigurationError

__all__ = [
    "READ_ONLY",
    "create_engine",
    "inline_sqlite_engine",
    "is_sqlite",
    "redacted",
    "sqlalchemy_url",
    "sqlite_path",
]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")

READ_ONLY = "provara_read_only"
"""The execution option of a connection whose transactions only read: on SQLite a plain
(deferred) ``BEGIN`` instead of ``BEGIN IMMEDIATE``."""


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else "sqlite"


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database (a bare path does)."""
    return _scheme(url) == "sqlite"


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (``:memory:`` for an in-memory database).

    ``sqlite:///relative/path.db`` is relative to the working directory,
    ``sqlite:////abs/path.db`` is absolute. A bare path is accepted as is.
    """
    if "://" not in url:
        if not url.strip():
            raise ConfigurationError("PROVARA_DATABASE_URL is empty")
        return url
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "sqlite":
        raise ConfigurationError(f"{redacted(url)} is not a sqlite:/// URL")
    if not rest.startswith("/") or rest == "/":
        raise ConfigurationError(
            "PROVARA_DATABASE_URL must look like sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return rest[1:]


def sqlalchemy_url(url: str) -> sa.URL:
    """``url`` as SQLAlchemy takes it; a :class:`ConfigurationError` naming what is wrong."""
    scheme = _scheme(url)
    if scheme == "sqlite":
        path = sqlite_path(url)
        return sa.URL.create("sqlite", database=path)
    if scheme not in _POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"PROVARA_DATABASE_URL must be a sqlite:/// or postgresql:// URL, got scheme {scheme!r}"
        )
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigurationError(
            "PROVARA_DATABASE_URL is not a valid postgresql://user:password@host:port/name URL"
        ) from None
    if not parsed.database:
        raise ConfigurationError("PROVARA_DATABASE_URL must name a database: postgresql://…/NAME")
    return parsed.set(drivername="postgresql+psycopg")


def redacted(url: str) -> str:
    """``url`` with any password masked, for messages and logs."""
    if is_sqlite(url):
        return url
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def _enter_wal(cursor: sqlite3.Cursor, wait_ms: int) -> None:
    """Put the database file in WAL mode (it stays so), waiting up to ``wait_ms`` for it.

    SQLite answers ``database is locked`` at once, without its busy handler, when another
    connection holds the file while the journal mode is being changed: processes opening a
    new database together (``--workers N``) would fail at random, so this retries instead.
    """
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _sqlite_engine(path: str, *, wait_ms: int = 5000, checkpoints: bool = True) -> sa.Engine:
    memory = path == ":memory:"
    if not memory:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False},
        "hide_parameters": True,  # errors never quote a row's values
    }
    if memory:
        options["poolclass"] = StaticPool  # one connection: each new one would be empty
    engine = sa.create_engine(sa.URL.create("sqlite", database=path), **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is off: SQLAlchemy's "begin" event below
        # issues BEGIN IMMEDIATE, which also makes savepoints and DDL transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not memory:
            _enter_wal(cursor, wait_ms)
            cursor.execute("PRAGMA synchronous = NORMAL")
            if not checkpoints:
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        # A reader takes no lock at all in WAL mode: it never waits for a writer, and no
        # writer (another process's usage commit) waits for it.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def inline_sqlite_engine(url: str) -> sa.Engine | None:
    """For a SQLite file, an engine for short writes on the caller's own thread: it never
    waits for the write lock (a busy database raises at once, and the caller hands the
    write to the database thread instead), and never checkpoints the WAL (a checkpoint
    writes the database file and syncs it; the database thread does that). ``None`` for
    anything else."""
    if not is_sqlite(url) or sqlite_path(url) == ":memory:":
        return None
    return _sqlite_engine(sqlite_path(url), wait_ms=0, checkpoints=False)


def create_engine(url: str, *, pool_size: int = 4) -> sa.Engine:
    """An engine for ``url`` (not yet migrated: see :func:`~reference_gateway.store.migrate`)."""
    if is_sqlite(url):
        return _sqlite_engine(sqlite_path(url))
    return sa.create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        hide_parameters=True,
    )
