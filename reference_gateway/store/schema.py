"""Bringing a database to the current schema: Alembic's history in ``store/migrations``.

One migration history serves SQLite and PostgreSQL. :func:`migrate` runs every migration
the database lacks in one transaction, holding a lock so that processes starting at once
(``--workers N``, replicas, the CLI) migrate once: on PostgreSQL a transaction-scoped
advisory lock, on SQLite the write lock ``BEGIN IMMEDIATE`` takes.

Databases made before Alembic kept their version in SQLite's ``PRAGMA user_version``
(1 to 4, one per migration then): such a database is stamped with the revision that
version corresponds to, then upgraded like any other.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["HEAD", "SchemaTooNewError", "current_revision", "migrate"]

_SCRIPTS = Path(__file__).with_name("migrations")
_LEGACY_REVISIONS = ("0001", "0002", "0003", "0004")
"""The revision each pre-Alembic ``user_version`` (1 to 4) corresponds to."""
_LOCK_ID = 0x50524F5641524131  # "PROVARA1": the advisory lock id of migrations


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer gateway than this one."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


HEAD: str = _script().get_current_head() or ""
"""The newest revision this gateway knows."""


def current_revision(conn: sa.Connection) -> str | None:
    """The database's revision (``None`` for an empty database)."""
    return MigrationContext.configure(conn).get_current_revision()


def _legacy_revision(conn: sa.Connection) -> str | None:
    if conn.dialect.name != "sqlite" or sa.inspect(conn).has_table("alembic_version"):
        return None
    version = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if version == 0:
        return None
    if version > len(_LEGACY_REVISIONS):
        raise SchemaTooNewError(f"database schema version {version} is unknown to this gateway")
    return _LEGACY_REVISIONS[version - 1]


def migrate(engine: sa.Engine) -> str:
    """Apply the migrations ``engine``'s database lacks; returns its revision (the head).

    Raises :class:`SchemaTooNewError` when the database is newer than this gateway.
    """
    config = _config()
    script = _script()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        config.attributes["connection"] = conn
        legacy = _legacy_revision(conn)
        if legacy is not None:
            command.stamp(config, legacy)
        current = current_revision(conn)
        if current is not None and current not in {s.revision for s in script.walk_revisions()}:
            raise SchemaTooNewError(
                f"database schema revision {current} is newer than this gateway knows "
                f"({HEAD}); upgrade provara-kit"
            )
        if current != HEAD:
            command.upgrade(config, "head")
    return HEAD
