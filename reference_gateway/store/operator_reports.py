"""Reports over every tenant, for the operator pages only: spend by tenant, and each
provider's health from its recent attempts.

Both read the ``usage`` table (one row per attempt), so every gateway process and replica
on the database shows the same figures. Sums come back as Python ints on both stores
(PostgreSQL sums integers as NUMERIC). Cost is the exact sum of the priced attempts'
pico-dollars; unpriced attempts are counted apart, their cost unknown rather than 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from reference_gateway.store.tables import tenants, usage
from reference_gateway.store.usage_sql import FAILED, PRICED, UNKNOWN_COST, as_int, count_if, sum_if

__all__ = [
    "ABORTED",
    "NOT_THE_PROVIDER",
    "TIMEOUTS",
    "ProviderHealth",
    "TenantSpend",
    "provider_health",
    "tenant_spend",
]

ABORTED = ("stream_aborted",)
"""Error codes of a stream cut after its first byte."""
TIMEOUTS = ("stream_timeout", "first_token_timeout")
"""Error codes of an upstream that stalled: before its first token, or mid-stream."""
NOT_THE_PROVIDER = ("client_disconnected", "usage_not_recorded")
"""Error codes that say nothing about the provider: the client left, or the gateway could
not write the usage row. They do not count towards a provider's error rate."""


@dataclass(frozen=True, slots=True)
class TenantSpend:
    """One tenant's usage over a range of days (zeros when it sent nothing)."""

    tenant_id: str
    name: str
    revoked: bool
    requests: int = 0
    """Distinct requests (a retried or fallen-back request counts once)."""
    attempts: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_picodollars: int = 0
    """The exact cost of the priced attempts."""
    estimated_picodollars: int = 0
    """The part of ``cost_picodollars`` that rests on estimated token counts."""
    estimated: int = 0
    """Priced attempts whose token counts are estimated."""
    unpriced: int = 0
    """Attempts at unpriced models that used tokens: their cost is unknown, not in
    ``cost_picodollars`` (one refused before any token cost nothing)."""
    unpriced_tokens: int = 0
    """Input plus output tokens of the unpriced attempts."""


_SPEND = (
    sa.func.count(sa.distinct(usage.c.request_id)),
    sa.func.count(),
    count_if(FAILED),
    sa.func.sum(usage.c.input_tokens),
    sa.func.sum(usage.c.output_tokens),
    sum_if(PRICED, usage.c.cost_picodollars),
    sum_if(PRICED & (usage.c.estimated == 1), usage.c.cost_picodollars),
    count_if(PRICED & (usage.c.estimated == 1)),
    count_if(UNKNOWN_COST),
    sum_if(UNKNOWN_COST, usage.c.input_tokens + usage.c.output_tokens),
)


def tenant_spend(conn: sa.Connection, first: date, last: date) -> list[TenantSpend]:
    """Every tenant (revoked ones included: their usage stays) with its usage of the UTC
    days ``first`` to ``last``, both included; the costliest first, then by name."""
    query = (
        sa.select(usage.c.tenant_id, *_SPEND)
        .where(usage.c.day >= first.isoformat(), usage.c.day <= last.isoformat())
        .group_by(usage.c.tenant_id)
    )
    found = {row[0]: [as_int(value) for value in row[1:]] for row in conn.execute(query)}
    rows = []
    for tenant in conn.execute(sa.select(tenants.c.id, tenants.c.name, tenants.c.revoked_at)):
        rows.append(
            TenantSpend(
                tenant.id, tenant.name, tenant.revoked_at is not None, *found.get(tenant.id, ())
            )
        )
    rows.sort(key=lambda row: (-row.cost_picodollars, -row.attempts, row.name))
    return rows


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """One provider's attempts since a moment.

    ``failed`` counts the attempts with an error code other than
    :data:`NOT_THE_PROVIDER`; ``aborted`` and ``timeouts`` are parts of it. Latency and
    time to first token are over the attempts that succeeded (``None`` when there were
    none; TTFT only for streams), nearest-rank percentiles in milliseconds.
    """

    provider: str
    attempts: int
    failed: int
    aborted: int
    timeouts: int
    rate_limited: int
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    ttft_p95: float | None

    @property
    def error_rate(self) -> float:
        """``failed / attempts`` (0 when there were none)."""
        return self.failed / self.attempts if self.attempts else 0.0


def _percentile(
    conn: sa.Connection, column: sa.ColumnElement[Any], where: list[Any], fraction: float
) -> float | None:
    """The nearest-rank percentile of ``column`` over the rows ``where`` selects (NULLs
    left out), sorted by the database so only one value comes back."""
    where = [*where, column.is_not(None)]
    count = as_int(conn.execute(sa.select(sa.func.count()).where(*where)).scalar())
    if not count:
        return None
    rank = max(1, math.ceil(fraction * count))
    value = conn.execute(
        sa.select(column).where(*where).order_by(column).limit(1).offset(rank - 1)
    ).scalar()
    return None if value is None else float(value)


def provider_health(conn: sa.Connection, since: str) -> list[ProviderHealth]:
    """Every provider with attempts created at or after ``since`` (an ISO timestamp with
    milliseconds, UTC, as the ``created_at`` column holds them), by name."""
    recent = usage.c.created_at >= since
    error = usage.c.error
    query = (
        sa.select(
            usage.c.provider,
            sa.func.count(),
            count_if(error.is_not(None) & error.not_in(NOT_THE_PROVIDER)),
            count_if(error.in_(ABORTED)),
            count_if(error.in_(TIMEOUTS)),
            count_if(error.in_(("rate_limited", "overloaded"))),
        )
        .where(recent)
        .group_by(usage.c.provider)
        .order_by(usage.c.provider)
    )
    report = []
    for row in conn.execute(query).all():
        provider = str(row[0])
        attempts, failed, aborted, timeouts, rate_limited = (as_int(value) for value in row[1:])
        served = [recent, usage.c.provider == provider, error.is_(None)]
        report.append(
            ProviderHealth(
                provider=provider,
                attempts=attempts,
                failed=failed,
                aborted=aborted,
                timeouts=timeouts,
                rate_limited=rate_limited,
                latency_p50=_percentile(conn, usage.c.latency_ms, served, 0.50),
                latency_p95=_percentile(conn, usage.c.latency_ms, served, 0.95),
                ttft_p50=_percentile(conn, usage.c.ttft_ms, served, 0.50),
                ttft_p95=_percentile(conn, usage.c.ttft_ms, served, 0.95),
            )
        )
    return report
