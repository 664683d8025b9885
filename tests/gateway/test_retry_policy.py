"""The retry policy, the local faults that script it, its settings and the router's failure
counts, without a server."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from provara_kit.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    StreamAbortedError,
    StreamTimeoutError,
    UnprocessableEntityError,
    UpstreamServerError,
)
from reference_gateway.auth import create_tenant
from reference_gateway.config import Settings
from reference_gateway.dashboard.cells import _failures
from reference_gateway.local import LocalFault
from reference_gateway.retry import MAX_BACKOFF, FirstTokenTimeoutError, RetryPolicy, classify
from reference_gateway.store import connect
from reference_gateway.store.usage import USAGE_COLUMNS, insert_usage, usage_rollup
from tests.gateway.test_router import PRICING, TENANT, feed, request, router


def status_error(cls: type, status: int, retry_after: float | None = None) -> ProviderError:
    error: ProviderError = cls("no", status_code=status, retry_after=retry_after)
    return error


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (status_error(RateLimitError, 429, 2.5), (429, "rate_limited", True, True, 2.5)),
        (status_error(OverloadedError, 529), (529, "overloaded", True, True, None)),
        (status_error(UpstreamServerError, 503), (503, "upstream_error", True, True, None)),
        (status_error(UpstreamServerError, 408), (408, "upstream_error", True, True, None)),
        (
            ProviderConnectionError("x", reason="connection refused"),
            (502, "connection_error", True, True, None),
        ),
        (
            ProviderConnectionError("x", reason="timed out"),
            (504, "connection_error", True, True, None),
        ),
        (FirstTokenTimeoutError("x"), (504, "first_token_timeout", True, True, None)),
        (StreamTimeoutError("x"), (504, "stream_timeout", True, True, None)),
        (StreamAbortedError("x"), (502, "stream_aborted", True, True, None)),
        (MalformedResponseError("x"), (502, "upstream_error", False, True, None)),
        (status_error(AuthenticationError, 401), (401, "upstream_rejected", False, True, None)),
        (status_error(PermissionDeniedError, 403), (403, "upstream_rejected", False, True, None)),
        (status_error(NotFoundError, 404), (404, "upstream_rejected", False, True, None)),
        (status_error(BadRequestError, 400), (400, "upstream_rejected", False, False, None)),
        (
            status_error(UnprocessableEntityError, 422),
            (422, "upstream_rejected", False, False, None),
        ),
    ],
)
def test_what_each_failure_may_be_helped_by(
    exc: ProviderError, expected: tuple[int, str, bool, bool, float | None]
) -> None:
    failure = classify(exc)
    assert (
        failure.status,
        failure.error,
        failure.retry,
        failure.fall_back,
        failure.retry_after,
    ) == expected
    assert failure.counts_against_model == failure.fall_back


def test_retry_after_wins_over_the_backoff() -> None:
    policy = RetryPolicy(rng=random.Random(1))
    assert policy.delay(0, 7.0) == 7.0
    assert policy.delay(3, 0.0) == 0.0


def test_the_backoff_doubles_with_jitter_up_to_a_cap() -> None:
    policy = RetryPolicy(backoff=0.5, rng=random.Random(3))
    for retry in range(8):
        ceiling = min(MAX_BACKOFF, 0.5 * 2**retry)
        draws = {policy.delay(retry, None) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        assert len(draws) > 1  # jittered: clients that failed together do not retry together


def test_the_budget_left_runs_on_the_injected_clock() -> None:
    now = [100.0]
    policy = RetryPolicy(budget=10.0, clock=lambda: now[0])
    started = policy.clock()
    now[0] += 7.5
    assert policy.left(started) == 2.5


def test_local_faults_can_spare_later_attempts_and_other_models() -> None:
    fault = LocalFault.parse("status=503; times=2; model=echo")
    assert (fault.status, fault.times, fault.model) == (503, 2, "echo")
    assert [fault.applies("echo", n) for n in range(3)] == [True, True, False]
    assert not fault.applies("echo-anthropic", 0)
    assert fault.header() == "status=503"  # the upstream plays the fault; the rest is ours
    always = LocalFault.parse("abort")
    assert always.applies("echo", 99) and always.applies("echo-anthropic", 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("times=2", "times and model need a fault"),
        ("model=echo", "times and model need a fault"),
        ("status=503; model=gpt-4o", "model must be one of"),
        ("status=503; times=x", "whole number"),
    ],
)
def test_bad_local_faults_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalFault.parse(text)


def test_retry_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "PROVARA_RETRIES": "0",
            "PROVARA_RETRY_BUDGET_MS": "2500",
            "PROVARA_RETRY_BACKOFF_MS": "100",
            "PROVARA_FIRST_TOKEN_TIMEOUT_MS": "8000",
        }
    )
    assert (
        settings.retries,
        settings.retry_budget_ms,
        settings.retry_backoff_ms,
        settings.first_token_timeout_ms,
    ) == (0, 2500, 100, 8000)
    defaults = Settings.from_env({})
    assert (defaults.retries, defaults.retry_budget_ms, defaults.first_token_timeout_ms) == (
        2,
        10_000,
        0,
    )
    for name, value in (("PROVARA_RETRIES", "-1"), ("PROVARA_RETRY_BACKOFF_MS", "0")):
        with pytest.raises(ConfigurationError, match=name):
            Settings.from_env({name: value})


def test_failures_decay_and_halve_on_success() -> None:
    now = [0.0]
    r = router(clock=lambda: now[0], failure_half_life=60.0)
    r.failed(TENANT.id, "p/good")
    r.failed(TENANT.id, "p/good")
    assert r.failures(TENANT.id) == {"p/good": 2.0}
    assert r.failures("someone-else") == {}
    now[0] = 60.0
    assert r.failures(TENANT.id)["p/good"] == pytest.approx(1.0)
    r.succeeded(TENANT.id, "p/good")
    assert r.failures(TENANT.id)["p/good"] == pytest.approx(0.5)
    now[0] = 60.0 * 10
    r.succeeded(TENANT.id, "p/good")
    assert r.failures(TENANT.id) == {}  # faded out entirely


def test_failures_lower_a_model_s_chance_in_auto() -> None:
    def picks(failures: int) -> int:
        r = router(rng=random.Random(11))
        feed(r, "chat/simple", "p/good", 0.8, 20)
        feed(r, "chat/simple", "p/default", 0.8, 20)
        for _ in range(failures):
            r.failed(TENANT.id, "p/good")
        chosen = [r.choose_model(request("hello"), TENANT) for _ in range(300)]
        return chosen.count("p/good")

    assert picks(0) > 100
    assert picks(10) < picks(0) / 3
    r = router()
    feed(r, "chat/simple", "p/good", 0.8, 20)
    r.failed(TENANT.id, "p/good")
    standing = {c.model: c for c in r.decide("chat/simple", tenant_id=TENANT.id).candidates}
    assert standing["p/good"].failures == pytest.approx(1.0, rel=1e-3)
    assert "p/good" in PRICING


def test_the_router_page_lists_recent_failures_escaped() -> None:
    r = router()
    assert _failures(r, TENANT.id) == ""
    r.failed(TENANT.id, "p/<odd>")
    html = _failures(r, TENANT.id)
    assert "Recent failures" in html and "p/&lt;odd&gt;" in html and "<odd>" not in html


def test_the_rollup_counts_a_retried_request_once(tmp_path: Path) -> None:
    with connect(f"sqlite:///{tmp_path / 'rollup.db'}") as conn:
        tenant, _ = create_tenant(conn, "rollup")
        base = dict.fromkeys(USAGE_COLUMNS)
        base.update(
            tenant_id=tenant.id,
            created_at="2026-11-26T08:00:00.000+00:00",
            day="2026-11-26",
            provider="local",
            model="echo",
            key_source="local",
            stream=0,
            input_tokens_source="upstream",
            output_tokens_source="upstream",
            estimated=0,
            priced=1,
            input_tokens_method="upstream",
            output_tokens_method="upstream",
            latency_ms=1.0,
        )
        rows = []
        for number, (status, error, tokens, cost) in enumerate(
            [(503, "upstream_error", 0, 0), (200, None, 10, 7)]
        ):
            row = {**base, "request_id": "r1", "status": status, "error": error}
            row.update(attempt=number, input_tokens=tokens, output_tokens=tokens)
            row["cost_picodollars"] = cost
            rows.append(tuple(row[name] for name in USAGE_COLUMNS))
        insert_usage(conn, rows)
        (group,) = usage_rollup(conn, tenant.id)
    assert (group["requests"], group["input_tokens"], group["cost_picodollars"]) == (1, 10, 7)
