"""SQL for the ``provider_keys`` table: ciphertext and a hint only, never plaintext."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from reference_gateway.types import StoredKey

__all__ = [
    "all_ciphertexts",
    "delete_key",
    "insert_key",
    "list_keys",
    "replace_key",
    "write_ciphertexts",
]

_COLUMNS = "name, provider, ciphertext, hint, created_at, updated_at"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def list_keys(conn: sqlite3.Connection, tenant_id: str) -> list[StoredKey]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM provider_keys WHERE tenant_id = ? ORDER BY name", (tenant_id,)
    ).fetchall()
    return [StoredKey(*row) for row in rows]


def insert_key(
    conn: sqlite3.Connection, tenant_id: str, name: str, provider: str, ciphertext: str, hint: str
) -> StoredKey | None:
    """Add a key; ``None`` if the tenant already has one under ``name``."""
    now = _now()
    try:
        conn.execute(
            f"INSERT INTO provider_keys (tenant_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tenant_id, name, provider, ciphertext, hint, now, now),
        )
    except sqlite3.IntegrityError:
        return None
    return StoredKey(name, provider, ciphertext, hint, now, now)


def replace_key(
    conn: sqlite3.Connection, tenant_id: str, name: str, ciphertext: str, hint: str
) -> StoredKey | None:
    """Store a new value for an existing key; ``None`` if there is none under ``name``."""
    cursor = conn.execute(
        "UPDATE provider_keys SET ciphertext = ?, hint = ?, updated_at = ? "
        "WHERE tenant_id = ? AND name = ?",
        (ciphertext, hint, _now(), tenant_id, name),
    )
    if cursor.rowcount == 0:
        return None
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM provider_keys WHERE tenant_id = ? AND name = ?",
        (tenant_id, name),
    ).fetchone()
    return StoredKey(*row)


def delete_key(conn: sqlite3.Connection, tenant_id: str, name: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM provider_keys WHERE tenant_id = ? AND name = ?", (tenant_id, name)
    )
    return cursor.rowcount > 0


def all_ciphertexts(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Every stored key as ``(tenant_id, name, ciphertext)``, for a master-key rotation."""
    return conn.execute("SELECT tenant_id, name, ciphertext FROM provider_keys").fetchall()


def write_ciphertexts(conn: sqlite3.Connection, items: list[tuple[str, str, str]]) -> None:
    """Write back re-encrypted ``(tenant_id, name, ciphertext)`` items in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(
            "UPDATE provider_keys SET ciphertext = ? WHERE tenant_id = ? AND name = ?",
            [(token, tenant, name) for tenant, name, token in items],
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
