"""SQL for the ``usage`` table: batched inserts and per-tenant reads."""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["USAGE_COLUMNS", "insert_usage", "usage_for_tenant"]

USAGE_COLUMNS: tuple[str, ...] = (
    "request_id",
    "tenant_id",
    "created_at",
    "day",
    "provider",
    "model",
    "key_source",
    "stream",
    "input_tokens",
    "output_tokens",
    "input_tokens_source",
    "output_tokens_source",
    "estimated",
    "priced",
    "cost_picodollars",
    "finish_reason",
    "ttft_ms",
    "latency_ms",
)
"""The order of the values in a row given to :func:`insert_usage`."""

_INSERT = (
    f"INSERT INTO usage ({', '.join(USAGE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in USAGE_COLUMNS)})"
)


def insert_usage(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in :data:`USAGE_COLUMNS` order) in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_INSERT, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def usage_for_tenant(conn: sqlite3.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's usage rows, oldest first, as dicts keyed by column name."""
    cursor = conn.execute(
        f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage WHERE tenant_id = ? ORDER BY id",
        (tenant_id,),
    )
    return [dict(zip(USAGE_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
