"""SQL for the ``usage`` table: batched inserts and per-tenant reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reference_gateway.store.tables import usage

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
    "status",
    "error",
    "attempt",
    "requested_model",
    "key_hint",
)
"""The order of the values in a row given to :func:`insert_usage`."""


def insert_usage(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in :data:`USAGE_COLUMNS` order); the caller's transaction
    makes them one commit."""
    if rows:
        conn.execute(usage.insert(), [dict(zip(USAGE_COLUMNS, row, strict=True)) for row in rows])


def completion_of(
    conn: sa.Connection, tenant_id: str, request_id: str
) -> tuple[str, str, str] | None:
    """``(provider, model, cell)`` of one of the tenant's completions, or None.

    Only completions the router tracks carry a cell (not the judge's own calls), and only
    the attempt that served it counts (``error`` NULL): a failed attempt before it was
    another model's.
    """
    row = conn.execute(
        sa.select(usage.c.provider, usage.c.model, usage.c.cell)
        .where(
            usage.c.request_id == request_id,
            usage.c.tenant_id == tenant_id,
            usage.c.cell.is_not(None),
            usage.c.error.is_(None),
        )
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def usage_for_tenant(conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's usage rows, oldest first, as dicts keyed by column name."""
    columns = [usage.c[name] for name in USAGE_COLUMNS]
    rows = conn.execute(
        sa.select(*columns).where(usage.c.tenant_id == tenant_id).order_by(usage.c.id)
    )
    return [dict(zip(USAGE_COLUMNS, row, strict=True)) for row in rows]


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

_GROUP = (
    usage.c.day,
    usage.c.provider,
    usage.c.model,
    usage.c.priced,
    usage.c.estimated,
    usage.c.input_tokens_method,
    usage.c.output_tokens_method,
)


def usage_rollup(conn: sa.Connection, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's usage by day, provider, model, priced, estimated and the methods that
    produced the token counts, newest day first.

    ``cost_picodollars`` is the exact integer sum for priced groups and ``None`` for
    unpriced ones (their cost is unknown, not zero). ``requests`` counts distinct requests:
    a request retried at one model is one request there, every attempt's cost summed.
    """
    query = (
        sa.select(
            *_GROUP,
            sa.func.count(sa.distinct(usage.c.request_id)),
            sa.func.sum(usage.c.input_tokens),
            sa.func.sum(usage.c.output_tokens),
            sa.case((usage.c.priced == 1, sa.func.sum(usage.c.cost_picodollars))),
        )
        .where(usage.c.tenant_id == tenant_id)
        .group_by(*_GROUP)
        .order_by(
            usage.c.day.desc(),
            usage.c.provider,
            usage.c.model,
            usage.c.priced.desc(),
            usage.c.estimated,
            usage.c.input_tokens_method,
            usage.c.output_tokens_method,
        )
    )
    result: list[dict[str, Any]] = []
    for row in conn.execute(query):
        item = dict(zip(ROLLUP_COLUMNS, row, strict=True))
        # PostgreSQL sums integers as NUMERIC: keep them exact Python ints.
        for name in ("requests", "input_tokens", "output_tokens", "cost_picodollars"):
            if item[name] is not None:
                item[name] = int(item[name])
        result.append(item)
    return result
