"""Reports over the ``usage`` table for a date range: a series, a breakdown, totals, a
request log and the rows themselves (one per attempt).

Every query takes ``tenant_id``: a tenant's pages pass their own id and see only their
rows; ``None`` means every tenant and is passed only by operator pages. Days are UTC
(the ``day`` column), both ends included. Sums come back as Python ints on both stores
(PostgreSQL sums integers as NUMERIC). Cost is the exact sum of the priced rows'
pico-dollars; unpriced rows are counted apart, their cost unknown rather than 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from reference_gateway.store.tables import usage
from reference_gateway.store.usage_sql import FAILED, PRICED, UNKNOWN_COST, as_int, count_if, sum_if

__all__ = [
    "ATTEMPT_COLUMNS",
    "Bucket",
    "KeyedUsage",
    "LoggedAttempt",
    "LoggedRequest",
    "Totals",
    "attempt_rows",
    "request_log",
    "usage_breakdown",
    "usage_series",
    "usage_totals",
]

ATTEMPT_COLUMNS: tuple[str, ...] = (
    "created_at",
    "request_id",
    "attempt",
    "requested_model",
    "provider",
    "model",
    "status",
    "error",
    "key_source",
    "key_hint",
    "stream",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "input_tokens_method",
    "output_tokens_method",
    "estimated",
    "priced",
    "cost_picodollars",
    "finish_reason",
    "cell",
)
"""The columns of :func:`attempt_rows`, in order (``tenant_id`` is added first when the
report covers every tenant)."""


def _where(tenant_id: str | None, first: date, last: date) -> list[sa.ColumnElement[bool]]:
    clauses = [usage.c.day >= first.isoformat(), usage.c.day <= last.isoformat()]
    if tenant_id is not None:
        clauses.append(usage.c.tenant_id == tenant_id)
    return clauses


# Every measure but the request count, which depends on the tenant filter.
_MEASURES = (
    sa.func.count(),
    count_if(FAILED),
    sa.func.sum(usage.c.input_tokens),
    sa.func.sum(usage.c.output_tokens),
    sum_if(PRICED, usage.c.cost_picodollars),
    count_if(UNKNOWN_COST),
    count_if(usage.c.estimated == 1),
    sum_if(PRICED & (usage.c.estimated == 1), usage.c.cost_picodollars),
)


def _measured(tenant_id: str | None) -> tuple[Any, ...]:
    """The measures every report shares, in the order of the fields of ``_Measures``."""
    # Request ids are unique within a tenant; across tenants a request is the pair.
    request = (
        usage.c.request_id
        if tenant_id is not None
        else (usage.c.tenant_id + " " + usage.c.request_id)
    )
    return (sa.func.count(sa.distinct(request)), *_MEASURES)


@dataclass(frozen=True, slots=True)
class _Measures:
    requests: int = 0
    """Distinct requests (a retried or fallen-back request counts once)."""
    attempts: int = 0
    failed: int = 0
    """Attempts that failed (``error`` set)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_picodollars: int = 0
    """The exact cost of the priced attempts."""
    unpriced: int = 0
    """Attempts at unpriced models that used tokens: their cost is unknown, not in
    ``cost_picodollars`` (one refused before any token cost nothing)."""
    estimated: int = 0
    """Attempts whose token counts are estimated."""
    estimated_picodollars: int = 0
    """The part of ``cost_picodollars`` that rests on estimated token counts."""


_MEASURE_NAMES = (
    "requests",
    "attempts",
    "failed",
    "input_tokens",
    "output_tokens",
    "cost_picodollars",
    "unpriced",
    "estimated",
    "estimated_picodollars",
)


def _measures(values: Sequence[Any]) -> dict[str, int]:
    return {name: as_int(value) for name, value in zip(_MEASURE_NAMES, values, strict=True)}


@dataclass(frozen=True, slots=True)
class Totals(_Measures):
    """A range's totals."""


@dataclass(frozen=True, slots=True)
class Bucket(_Measures):
    """One day (or one hour of a one-day range) of a series; ``label`` is ``YYYY-MM-DD``
    or ``YYYY-MM-DD HH:00``."""

    label: str = ""


@dataclass(frozen=True, slots=True)
class KeyedUsage(_Measures):
    """One ``(provider, model, key)`` line of a breakdown; ``key_hint`` is the last four
    characters of the tenant's own stored key, ``None`` for the operator's."""

    provider: str = ""
    model: str = ""
    key_source: str = ""
    key_hint: str | None = None


def usage_totals(conn: sa.Connection, tenant_id: str | None, first: date, last: date) -> Totals:
    """The totals of the days ``first`` to ``last``."""
    row = conn.execute(
        sa.select(*_measured(tenant_id)).where(*_where(tenant_id, first, last))
    ).one()
    return Totals(**_measures(row))


def usage_series(
    conn: sa.Connection, tenant_id: str | None, first: date, last: date
) -> list[Bucket]:
    """One bucket per day from ``first`` to ``last``, by hour when they are the same day;
    a day or hour without usage is a bucket of zeros, not a gap."""
    hourly = first == last
    key = sa.func.substr(usage.c.created_at, 12, 2) if hourly else usage.c.day
    query = (
        sa.select(key, *_measured(tenant_id)).where(*_where(tenant_id, first, last)).group_by(key)
    )
    found = {str(row[0]): _measures(row[1:]) for row in conn.execute(query)}
    if hourly:
        labels = [(f"{hour:02d}", f"{first.isoformat()} {hour:02d}:00") for hour in range(24)]
    else:
        days = ((first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1))
        labels = [(day, day) for day in days]
    return [Bucket(label=label, **found.get(key_, {})) for key_, label in labels]


def usage_breakdown(
    conn: sa.Connection, tenant_id: str | None, first: date, last: date
) -> list[KeyedUsage]:
    """The range by provider, model and key, the costliest first."""
    group = (usage.c.provider, usage.c.model, usage.c.key_source, usage.c.key_hint)
    query = (
        sa.select(*group, *_measured(tenant_id))
        .where(*_where(tenant_id, first, last))
        .group_by(*group)
    )
    lines = [
        KeyedUsage(
            provider=row[0],
            model=row[1],
            key_source=row[2],
            key_hint=row[3],
            **_measures(row[4:]),
        )
        for row in conn.execute(query)
    ]
    lines.sort(
        key=lambda line: (
            -line.cost_picodollars,
            -line.attempts,
            line.provider,
            line.model,
            line.key_source,
            line.key_hint or "",
        )
    )
    return lines


@dataclass(frozen=True, slots=True)
class LoggedAttempt:
    """One attempt of a logged request."""

    attempt: int
    created_at: str
    provider: str
    model: str
    status: int
    error: str | None
    key_source: str
    key_hint: str | None
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int
    output_tokens: int
    priced: bool
    estimated: bool
    cost_picodollars: int | None
    input_tokens_method: str | None
    output_tokens_method: str | None

    @property
    def public_model(self) -> str:
        """``provider/model``."""
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """A request and its attempts, in order."""

    tenant_id: str
    request_id: str
    requested_model: str | None
    stream: bool
    attempts: list[LoggedAttempt] = field(default_factory=list)

    @property
    def started_at(self) -> str:
        """When the first attempt was recorded."""
        return min(attempt.created_at for attempt in self.attempts)

    @property
    def served(self) -> LoggedAttempt | None:
        """The attempt that answered (``error`` NULL), ``None`` when every attempt failed."""
        ok = [attempt for attempt in self.attempts if attempt.error is None]
        return ok[-1] if ok else None

    @property
    def final(self) -> LoggedAttempt:
        """The last attempt: the served one, or the failure the client got."""
        return self.served or self.attempts[-1]

    @property
    def cost_picodollars(self) -> int:
        """The exact cost of the priced attempts (see :attr:`unpriced`)."""
        return sum(a.cost_picodollars or 0 for a in self.attempts if a.priced)

    @property
    def unpriced(self) -> bool:
        """Whether an attempt at an unpriced model used tokens: the cost is then only
        what is known."""
        return any(not a.priced and (a.input_tokens or a.output_tokens) for a in self.attempts)

    @property
    def estimated(self) -> bool:
        """Whether any attempt's token counts are estimated."""
        return any(attempt.estimated for attempt in self.attempts)

    @property
    def latency_ms(self) -> float:
        """The time spent in the attempts, summed (the waits between them excluded)."""
        return sum(attempt.latency_ms for attempt in self.attempts)

    @property
    def input_tokens(self) -> int:
        return sum(attempt.input_tokens for attempt in self.attempts)

    @property
    def output_tokens(self) -> int:
        return sum(attempt.output_tokens for attempt in self.attempts)

    @property
    def path(self) -> str:
        """The attempts as ``provider/model status → provider/model status``."""
        return " → ".join(f"{a.public_model} {a.status}" for a in self.attempts)


_LOGGED = (
    "attempt",
    "created_at",
    "provider",
    "model",
    "status",
    "error",
    "key_source",
    "key_hint",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "priced",
    "estimated",
    "cost_picodollars",
    "input_tokens_method",
    "output_tokens_method",
)


def request_log(
    conn: sa.Connection,
    tenant_id: str | None,
    first: date,
    last: date,
    *,
    limit: int,
    offset: int = 0,
) -> tuple[int, list[LoggedRequest]]:
    """``(number of requests in the range, one page of them)``, the newest first; a
    request's attempts are grouped by ``(tenant_id, request_id)``, in order."""
    where = _where(tenant_id, first, last)
    count = conn.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(usage.c.tenant_id, usage.c.request_id)
            .where(*where)
            .group_by(usage.c.tenant_id, usage.c.request_id)
            .subquery()
        )
    ).scalar_one()
    newest = sa.func.max(usage.c.created_at)
    page = conn.execute(
        sa.select(usage.c.tenant_id, usage.c.request_id)
        .where(*where)
        .group_by(usage.c.tenant_id, usage.c.request_id)
        .order_by(newest.desc(), usage.c.request_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    wanted = [(str(row[0]), str(row[1])) for row in page]
    wanted_set = set(wanted)
    if not wanted:
        return int(count), []
    columns = [usage.c[name] for name in _LOGGED]
    query = sa.select(
        usage.c.tenant_id, usage.c.request_id, usage.c.requested_model, usage.c.stream, *columns
    ).where(usage.c.request_id.in_(sorted({request_id for _, request_id in wanted})))
    if tenant_id is not None:
        query = query.where(usage.c.tenant_id == tenant_id)
    requests: dict[tuple[str, str], LoggedRequest] = {}
    for row in conn.execute(query.order_by(usage.c.attempt, usage.c.id)):
        key = (row[0], row[1])
        if key not in wanted_set:
            continue
        if key not in requests:
            requests[key] = LoggedRequest(row[0], row[1], row[2], bool(row[3]))
        values = dict(zip(_LOGGED, row[4:], strict=True))
        values["priced"] = bool(values["priced"])
        values["estimated"] = bool(values["estimated"])
        requests[key].attempts.append(LoggedAttempt(**values))
    return int(count), [requests[key] for key in wanted if key in requests]


def attempt_rows(
    conn: sa.Connection, tenant_id: str | None, first: date, last: date
) -> list[tuple[Any, ...]]:
    """Every attempt of the range, oldest first, in :data:`ATTEMPT_COLUMNS` order
    (``tenant_id`` first when ``tenant_id`` is ``None``)."""
    names = ATTEMPT_COLUMNS if tenant_id is not None else ("tenant_id", *ATTEMPT_COLUMNS)
    query = (
        sa.select(*(usage.c[name] for name in names))
        .where(*_where(tenant_id, first, last))
        .order_by(usage.c.created_at, usage.c.id)
    )
    return [tuple(row) for row in conn.execute(query)]
