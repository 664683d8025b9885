"""The gateway's SQLite store: one connection on its own thread, SQL grouped by table."""

from __future__ import annotations

from reference_gateway.store.database import Database, connect
from reference_gateway.store.schema import MIGRATIONS, migrate

__all__ = ["MIGRATIONS", "Database", "connect", "migrate"]
