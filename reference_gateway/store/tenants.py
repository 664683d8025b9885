"""SQL for the ``tenants`` table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import sqlalchemy as sa

from reference_gateway.store.changes import record_change
from reference_gateway.store.tables import tenants
from reference_gateway.types import Tenant

__all__ = [
    "TenantExistsError",
    "TenantRow",
    "find_by_token_hash",
    "insert_tenant",
    "list_tenants",
    "revoke_tenant",
]


class TenantExistsError(ValueError):
    """A tenant with that name exists already."""


class TenantRow(NamedTuple):
    """A tenant as ``tenants list`` shows it."""

    id: str
    name: str
    token_prefix: str
    created_at: str
    revoked_at: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def insert_tenant(
    conn: sa.Connection, tenant_id: str, name: str, token_sha256: str, token_prefix: str
) -> Tenant:
    values = {
        "id": tenant_id,
        "name": name,
        "token_sha256": token_sha256,
        "token_prefix": token_prefix,
        "created_at": _now(),
    }
    try:
        with conn.begin_nested():
            conn.execute(tenants.insert().values(values))
    except sa.exc.IntegrityError:
        raise TenantExistsError(f"a tenant named {name!r} exists already") from None
    record_change(conn, "tenant-created", tenant_id)
    return Tenant(id=tenant_id, name=name)


def find_by_token_hash(conn: sa.Connection, token_sha256: str) -> Tenant | None:
    """The tenant holding the token, unless it was revoked."""
    row = conn.execute(
        sa.select(tenants.c.id, tenants.c.name).where(
            tenants.c.token_sha256 == token_sha256, tenants.c.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else Tenant(id=row.id, name=row.name)


def revoke_tenant(conn: sa.Connection, name: str) -> Tenant | None:
    """Revoke the tenant named ``name`` (its token stops working everywhere; its usage and
    keys stay); ``None`` if there is no such tenant that is not already revoked."""
    row = conn.execute(
        sa.select(tenants.c.id, tenants.c.name).where(
            tenants.c.name == name, tenants.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    conn.execute(tenants.update().where(tenants.c.id == row.id).values(revoked_at=_now()))
    record_change(conn, "tenant-revoked", row.id)
    return Tenant(id=row.id, name=row.name)


def list_tenants(conn: sa.Connection) -> list[TenantRow]:
    rows = conn.execute(
        sa.select(
            tenants.c.id,
            tenants.c.name,
            tenants.c.token_prefix,
            tenants.c.created_at,
            tenants.c.revoked_at,
        ).order_by(tenants.c.created_at, tenants.c.name)
    )
    return [TenantRow(*row) for row in rows]
