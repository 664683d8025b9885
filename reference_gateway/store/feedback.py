"""SQL for the ``feedback`` table: one quality sample per completion and source."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import sqlalchemy as sa

from reference_gateway.store.tables import feedback

__all__ = ["Sample", "feedback_after", "feedback_totals", "insert_feedback", "last_feedback_id"]


class Sample(NamedTuple):
    """One stored feedback sample, as the router takes it."""

    id: int
    tenant_id: str
    cell: str | None
    model: str
    """``provider/model``."""
    score: float


def insert_feedback(
    conn: sa.Connection,
    *,
    tenant_id: str,
    request_id: str,
    model: str,
    cell: str,
    score: float,
    source: str,
    comment: str | None,
) -> int | None:
    """Store a sample for ``model`` (``provider/model``); returns its id, or ``None`` if the
    completion already has one from ``source``."""
    provider, _, model_id = model.partition("/")
    try:
        with conn.begin_nested():
            result = conn.execute(
                feedback.insert().values(
                    tenant_id=tenant_id,
                    request_id=request_id,
                    provider=provider,
                    model=model_id,
                    cell=cell,
                    score=score,
                    source=source,
                    comment=comment,
                    created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                )
            )
    except sa.exc.IntegrityError:
        return None
    key = result.inserted_primary_key
    return None if key is None else int(key[0])


def last_feedback_id(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(feedback.c.id))).scalar() or 0)


def feedback_totals(
    conn: sa.Connection, up_to: int | None = None
) -> list[tuple[str, str, str, int, float]]:
    """``(tenant_id, cell, provider/model, samples, sum of scores)`` of every sample with a
    cell (and an id up to ``up_to``, when given)."""
    query = sa.select(
        feedback.c.tenant_id,
        feedback.c.cell,
        feedback.c.provider,
        feedback.c.model,
        sa.func.count(),
        sa.func.sum(feedback.c.score),
    ).where(feedback.c.cell.is_not(None))
    if up_to is not None:
        query = query.where(feedback.c.id <= up_to)
    query = query.group_by(
        feedback.c.tenant_id, feedback.c.cell, feedback.c.provider, feedback.c.model
    )
    return [
        (tenant, cell, f"{provider}/{model}", int(n), float(total))
        for tenant, cell, provider, model, n, total in conn.execute(query)
    ]


def feedback_after(conn: sa.Connection, after: int, limit: int = 5000) -> list[Sample]:
    """Samples with an id above ``after``, oldest first (those without a cell too, so a
    reader sees every id)."""
    rows = conn.execute(
        sa.select(
            feedback.c.id,
            feedback.c.tenant_id,
            feedback.c.cell,
            feedback.c.provider,
            feedback.c.model,
            feedback.c.score,
        )
        .where(feedback.c.id > after)
        .order_by(feedback.c.id)
        .limit(limit)
    )
    return [
        Sample(int(i), tenant, cell, f"{provider}/{model}", float(score))
        for i, tenant, cell, provider, model, score in rows
    ]
