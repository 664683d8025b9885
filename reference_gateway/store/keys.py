"""SQL for the ``provider_keys`` table: ciphertext and a hint only, never plaintext.

Every write records a ``keys`` change for the tenant, so every gateway process drops the
tenant's cached keys and clients.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from reference_gateway.store.changes import record_change
from reference_gateway.store.tables import provider_keys
from reference_gateway.types import StoredKey

__all__ = [
    "all_ciphertexts",
    "delete_key",
    "insert_key",
    "list_keys",
    "replace_key",
    "write_ciphertexts",
]

_COLUMNS = (
    provider_keys.c.name,
    provider_keys.c.provider,
    provider_keys.c.ciphertext,
    provider_keys.c.hint,
    provider_keys.c.created_at,
    provider_keys.c.updated_at,
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _key(tenant_id: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(provider_keys.c.tenant_id == tenant_id, provider_keys.c.name == name)


def list_keys(conn: sa.Connection, tenant_id: str) -> list[StoredKey]:
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .where(provider_keys.c.tenant_id == tenant_id)
        .order_by(provider_keys.c.name)
    )
    return [StoredKey(*row) for row in rows]


def insert_key(
    conn: sa.Connection, tenant_id: str, name: str, provider: str, ciphertext: str, hint: str
) -> StoredKey | None:
    """Add a key; ``None`` if the tenant already has one under ``name``."""
    now = _now()
    try:
        with conn.begin_nested():
            conn.execute(
                provider_keys.insert().values(
                    tenant_id=tenant_id,
                    name=name,
                    provider=provider,
                    ciphertext=ciphertext,
                    hint=hint,
                    created_at=now,
                    updated_at=now,
                )
            )
    except sa.exc.IntegrityError:
        return None
    record_change(conn, "keys", tenant_id)
    return StoredKey(name, provider, ciphertext, hint, now, now)


def replace_key(
    conn: sa.Connection, tenant_id: str, name: str, ciphertext: str, hint: str
) -> StoredKey | None:
    """Store a new value for an existing key; ``None`` if there is none under ``name``."""
    result = conn.execute(
        provider_keys.update()
        .where(_key(tenant_id, name))
        .values(ciphertext=ciphertext, hint=hint, updated_at=_now())
    )
    if result.rowcount == 0:
        return None
    record_change(conn, "keys", tenant_id)
    row = conn.execute(sa.select(*_COLUMNS).where(_key(tenant_id, name))).one()
    return StoredKey(*row)


def delete_key(conn: sa.Connection, tenant_id: str, name: str) -> bool:
    result = conn.execute(provider_keys.delete().where(_key(tenant_id, name)))
    if result.rowcount == 0:
        return False
    record_change(conn, "keys", tenant_id)
    return True


def all_ciphertexts(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """Every stored key as ``(tenant_id, name, ciphertext)``, for a master-key rotation."""
    rows = conn.execute(
        sa.select(provider_keys.c.tenant_id, provider_keys.c.name, provider_keys.c.ciphertext)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def write_ciphertexts(conn: sa.Connection, items: list[tuple[str, str, str]]) -> None:
    """Write back re-encrypted ``(tenant_id, name, ciphertext)`` items (one transaction:
    the caller's)."""
    statement = (
        provider_keys.update()
        .where(_key(sa.bindparam("t"), sa.bindparam("n")))  # type: ignore[arg-type]
        .values(ciphertext=sa.bindparam("c"))
    )
    if items:
        conn.execute(statement, [{"t": t, "n": n, "c": c} for t, n, c in items])
    for tenant_id in sorted({t for t, _, _ in items}):
        record_change(conn, "keys", tenant_id)
