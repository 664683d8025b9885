"""The usage reports on both stores: exact sums, zero days, the range, keys, the log."""

from __future__ import annotations

from datetime import UTC, date, datetime

from reference_gateway.auth import create_tenant
from reference_gateway.store import connect
from reference_gateway.store.usage_reports import (
    ATTEMPT_COLUMNS,
    attempt_rows,
    request_log,
    usage_breakdown,
    usage_series,
    usage_totals,
)
from tests.gateway.usage_rows import attempt_row, insert_attempts

FIRST, LAST = date(2026, 3, 1), date(2026, 3, 5)
BIG = 9_007_199_254_740_993  # 2**53 + 1: a float would round it


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def seed(url: str) -> tuple[str, str]:
    """Two tenants' usage; returns ``(mine, theirs)``."""
    with connect(url) as conn:
        mine = create_tenant(conn, "mine")[0].id
        theirs = create_tenant(conn, "theirs")[0].id
        insert_attempts(
            conn,
            [
                # r1: a 429 on openai, a fallback served by anthropic with my own key.
                attempt_row(
                    mine,
                    "r1",
                    at(2, 9),
                    provider="openai",
                    model="gpt-x",
                    status=429,
                    error="rate_limited",
                    input_tokens=0,
                    output_tokens=0,
                    cost_picodollars=0,
                    requested_model="auto",
                ),
                attempt_row(
                    mine,
                    "r1",
                    at(2, 9, 1),
                    provider="anthropic",
                    model="claude-y",
                    attempt=1,
                    key_source="tenant",
                    key_hint="abcd",
                    cost_picodollars=BIG,
                    requested_model="auto",
                ),
                # r2: unpriced, estimated tokens.
                attempt_row(
                    mine,
                    "r2",
                    at(4, 15),
                    provider="acme",
                    model="big",
                    priced=0,
                    estimated=1,
                    output_tokens_method="chars/4",
                ),
                # r4: refused (no tokens) at an unpriced model, then served priced: its
                # cost is known.
                attempt_row(
                    mine,
                    "r4",
                    at(3, 8),
                    provider="acme",
                    model="big",
                    priced=0,
                    status=503,
                    error="upstream_error",
                    input_tokens=0,
                    output_tokens=0,
                ),
                attempt_row(mine, "r4", at(3, 8, 1), attempt=1, cost_picodollars=0),
                # r3: served on the operator's key, last day of the range.
                attempt_row(mine, "r3", at(5, 23, 59), cost_picodollars=7),
                # Outside the range, both sides.
                attempt_row(mine, "before", datetime(2026, 2, 28, 23, 59, tzinfo=UTC)),
                attempt_row(mine, "after", datetime(2026, 3, 6, 0, 0, tzinfo=UTC)),
                # Another tenant, inside the range, with a request id I also use.
                attempt_row(theirs, "r3", at(3), model="theirs-only", cost_picodollars=5),
            ],
        )
    return mine, theirs


def test_series_totals_and_breakdown_are_exact_and_own_only(store_url: str) -> None:
    mine, theirs = seed(store_url)
    with connect(store_url) as conn:
        series = usage_series(conn, mine, FIRST, LAST)
        totals = usage_totals(conn, mine, FIRST, LAST)
        lines = usage_breakdown(conn, mine, FIRST, LAST)
        everyone = usage_totals(conn, None, FIRST, LAST)
    # Every day of the range is a bucket; days without usage are zeros, not gaps.
    assert [b.label for b in series] == [f"2026-03-0{d}" for d in range(1, 6)]
    assert [b.requests for b in series] == [0, 1, 1, 1, 1]
    assert [b.attempts for b in series] == [0, 2, 2, 1, 1]
    assert [b.cost_picodollars for b in series] == [0, BIG, 0, 0, 7]
    assert [b.unpriced for b in series] == [0, 0, 0, 1, 0]  # r4's refused attempt cost 0
    assert series[1].failed == 1 and series[1].input_tokens == 10
    # Exact integers on both stores (PostgreSQL sums as NUMERIC).
    assert type(totals.cost_picodollars) is int and totals.cost_picodollars == BIG + 7
    assert totals.requests == 4 and totals.attempts == 6 and totals.failed == 2
    assert totals.unpriced == 1 and totals.estimated == 1 and totals.estimated_picodollars == 0
    assert (totals.input_tokens, totals.output_tokens) == (40, 80)
    # By provider, model and key: the costliest first, my key apart from the operator's.
    keyed = [(line.provider, line.model, line.key_source, line.key_hint) for line in lines]
    assert keyed == [
        ("anthropic", "claude-y", "tenant", "abcd"),
        ("p", "m", "operator", None),
        ("acme", "big", "operator", None),
        ("openai", "gpt-x", "operator", None),
    ]
    assert lines[3].failed == 1 and lines[3].requests == 1 and lines[2].unpriced == 1
    assert "theirs-only" not in {line.model for line in lines}
    # None is every tenant (operator pages only).
    assert everyone.requests == 5 and everyone.cost_picodollars == BIG + 12
    with connect(store_url) as conn:
        assert usage_totals(conn, theirs, FIRST, LAST).cost_picodollars == 5


def test_one_day_is_bucketed_by_hour(store_url: str) -> None:
    mine, _ = seed(store_url)
    with connect(store_url) as conn:
        hours = usage_series(conn, mine, date(2026, 3, 2), date(2026, 3, 2))
    assert len(hours) == 24 and hours[0].label == "2026-03-02 00:00"
    assert [h.label for h in hours if h.attempts] == ["2026-03-02 09:00"]
    assert hours[9].attempts == 2 and hours[9].requests == 1


def test_request_log_groups_attempts_newest_first_and_pages(store_url: str) -> None:
    mine, theirs = seed(store_url)
    with connect(store_url) as conn:
        total, page = request_log(conn, mine, FIRST, LAST, limit=2)
        _, rest = request_log(conn, mine, FIRST, LAST, limit=2, offset=2)
        _, shared = request_log(conn, theirs, FIRST, LAST, limit=10)
        everyone_total, everyone = request_log(conn, None, FIRST, LAST, limit=10)
    assert total == 4
    assert [r.request_id for r in page] == ["r3", "r2"]
    assert [r.request_id for r in rest] == ["r4", "r1"]
    # r3 is mine alone here, though the other tenant used the same request id.
    assert [a.model for a in page[0].attempts] == ["m"] and page[0].cost_picodollars == 7
    assert [a.model for a in shared[0].attempts] == ["theirs-only"]
    # Every tenant (operator pages): the two tenants' "r3" stay two requests.
    assert everyone_total == 5
    both = {(r.tenant_id, r.request_id): r for r in everyone}
    assert [a.model for a in both[(mine, "r3")].attempts] == ["m"]
    assert [a.model for a in both[(theirs, "r3")].attempts] == ["theirs-only"]
    refused_first = rest[0]
    assert refused_first.path == "acme/big 503 → p/m 200" and not refused_first.unpriced
    fallback = rest[1]
    assert fallback.path == "openai/gpt-x 429 → anthropic/claude-y 200"
    assert fallback.served is not None and fallback.served.public_model == "anthropic/claude-y"
    assert fallback.requested_model == "auto" and fallback.cost_picodollars == BIG
    assert fallback.latency_ms == 80.0 and not fallback.unpriced
    assert page[1].unpriced and page[1].estimated and page[1].cost_picodollars == 0


def test_attempt_rows_cover_the_range_oldest_first(store_url: str) -> None:
    mine, _ = seed(store_url)
    with connect(store_url) as conn:
        rows = attempt_rows(conn, mine, FIRST, LAST)
        every = attempt_rows(conn, None, FIRST, LAST)
    request_at = ATTEMPT_COLUMNS.index("request_id")
    assert [row[request_at] for row in rows] == ["r1", "r1", "r4", "r4", "r2", "r3"]
    assert len(every) == 7 and len(every[0]) == len(ATTEMPT_COLUMNS) + 1
