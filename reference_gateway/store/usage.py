"""SQL for the ``usage`` table: batched inserts and per-tenant reads."""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = [
    "ROLLUP_COLUMNS",
    "USAGE_COLUMNS",
    "completion_of",
    "insert_usage",
    "usage_for_tenant",
    "usage_rollup",
]

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
    "cell",
    "input_tokens_method",
    "output_tokens_method",
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


def completion_of(
    conn: sqlite3.Connection, tenant_id: str, request_id: str
) -> tuple[str, str, str] | None:
    """``(provider, model, cell)`` of one of the tenant's completions, or None.

    Only completions the router tracks carry a cell (not the judge's own calls).
    """
    row = conn.execute(
        "SELECT provider, model, cell FROM usage "
        "WHERE request_id = ? AND tenant_id = ? AND cell IS NOT NULL LIMIT 1",
        (request_id, tenant_id),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def usage_for_tenant(conn: sqlite3.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's usage rows, oldest first, as dicts keyed by column name."""
    cursor = conn.execute(
        f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage WHERE tenant_id = ? ORDER BY id",
        (tenant_id,),
    )
    return [dict(zip(USAGE_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


ROLLUP_COLUMNS: tuple[str, ...] = (
    "day",
    "provider",
    "model",
    "priced",
    "estimated",
    "input_tokens_method",
    "output_tokens_method",
    "requests",
    "input_tokens",
    "output_tokens",
    "cost_picodollars",
)


def usage_rollup(conn: sqlite3.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's usage by day, provider, model, priced, estimated and the methods that
    produced the token counts, newest day first.

    ``cost_picodollars`` is the exact integer sum for priced groups and ``None`` for
    unpriced ones (their cost is unknown, not zero).
    """
    cursor = conn.execute(
        "SELECT day, provider, model, priced, estimated, input_tokens_method, "
        "output_tokens_method, count(*), sum(input_tokens), sum(output_tokens), "
        "CASE WHEN priced THEN sum(cost_picodollars) END "
        "FROM usage WHERE tenant_id = ? "
        "GROUP BY day, provider, model, priced, estimated, input_tokens_method, "
        "output_tokens_method "
        "ORDER BY day DESC, provider, model, priced DESC, estimated, input_tokens_method, "
        "output_tokens_method",
        (tenant_id,),
    )
    return [dict(zip(ROLLUP_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
