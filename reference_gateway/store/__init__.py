"""The gateway's store: SQLAlchemy Core over SQLite or PostgreSQL, SQL grouped by table."""

from reference_gateway.store.database import Database, connect
from reference_gateway.store.engine import create_engine, is_sqlite, redacted, sqlite_path
from reference_gateway.store.schema import HEAD, SchemaTooNewError, current_revision, migrate

__all__ = [
    "HEAD",
    "Database",
    "SchemaTooNewError",
    "connect",
    "create_engine",
    "current_revision",
    "is_sqlite",
    "migrate",
    "redacted",
    "sqlite_path",
]
