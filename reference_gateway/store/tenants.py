"""SQL for the ``tenants`` table."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from reference_gateway.types import Tenant

__all__ = ["TenantExistsError", "TenantRow", "find_by_token_hash", "insert_tenant", "list_tenants"]


class TenantExistsError(ValueError):
    """A tenant with that name exists already."""


TenantRow = tuple[str, str, str, str]
"""``(id, name, token_prefix, created_at)``."""


def insert_tenant(
    conn: sqlite3.Connection, tenant_id: str, name: str, token_sha256: str, token_prefix: str
) -> Tenant:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        conn.execute(
            "INSERT INTO tenants (id, name, token_sha256, token_prefix, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (tenant_id, name, token_sha256, token_prefix, now),
        )
    except sqlite3.IntegrityError:
        raise TenantExistsError(f"a tenant named {name!r} exists already") from None
    return Tenant(id=tenant_id, name=name)


def find_by_token_hash(conn: sqlite3.Connection, token_sha256: str) -> Tenant | None:
    row = conn.execute(
        "SELECT id, name FROM tenants WHERE token_sha256 = ?", (token_sha256,)
    ).fetchone()
    return None if row is None else Tenant(id=row[0], name=row[1])


def list_tenants(conn: sqlite3.Connection) -> list[TenantRow]:
    return conn.execute(
        "SELECT id, name, token_prefix, created_at FROM tenants ORDER BY created_at, name"
    ).fetchall()
