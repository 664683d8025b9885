"""Retries before the first byte: Retry-After honoured, jittered backoff, the budget, the
first-token limit, streams, and never a retry once a byte went out. The gateway's waits
are recorded by an injected sleep, never slept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provara_kit.testing import ErrorFault, ScriptedUpstream, StreamFaults
from tests.gateway.attempt_helpers import (
    PRICY_PRICE,
    TEXT,
    Recorder,
    Sleeps,
    events,
    meta_of,
    post,
    start_gateway,
    streamed_text,
    usage_rows,
)
from tests.gateway.conftest import GatewayServer
from tests.gateway.db import tenant_id

PRICY = ScriptedUpstream("openai-chat", reply=None)
"""The upstream of ``pricy/p-1``; a test queues what its next requests get."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, Sleeps]]:
    server, sleeps = start_gateway(
        Path(tmp_path_factory.mktemp("retries")), pricy=PRICY, first_token_timeout_ms=400
    )
    try:
        yield server, sleeps
    finally:
        server.stop()


@pytest.fixture
def server(served: tuple[GatewayServer, Sleeps]) -> GatewayServer:
    return served[0]


@pytest.fixture
def sleeps(served: tuple[GatewayServer, Sleeps]) -> Sleeps:
    served[1].waits.clear()
    return served[1]


@pytest.fixture
def token(server: GatewayServer) -> str:
    return server.tenant(f"retry-{time.monotonic_ns()}")


@pytest.mark.parametrize("stream", [False, True])
def test_a_429_is_retried_after_its_retry_after(
    server: GatewayServer, token: str, sleeps: Sleeps, stream: bool
) -> None:
    response = post(server, token, fault="status=429; retry-after=3; times=1", stream=stream)
    assert response.status_code == 200
    assert sleeps.waits == [3.0]  # the header's value, not a backoff of its own
    assert response.headers["x-provara-served-model"] == "local/echo"
    assert response.headers["x-provara-attempts"] == "2"
    meta = meta_of(response)
    assert meta["served_model"] == "local/echo"
    assert [(p["status"], p["error"]) for p in meta["path"]] == [(429, "rate_limited"), (200, None)]
    rejected, answered = usage_rows(server, token, response.headers["x-request-id"], 2)
    assert (rejected["status"], rejected["error"], rejected["attempt"]) == (429, "rate_limited", 0)
    # A rejected attempt processed nothing: 0 tokens, $0 on a priced model (not unpriced).
    assert (rejected["input_tokens"], rejected["output_tokens"]) == (0, 0)
    assert (rejected["priced"], rejected["cost_picodollars"], rejected["estimated"]) == (1, 0, 0)
    assert (answered["status"], answered["error"], answered["attempt"]) == (200, None, 1)
    assert answered["input_tokens"] > 0
    assert {r["requested_model"] for r in (rejected, answered)} == {"local/echo"}
    assert {r["stream"] for r in (rejected, answered)} == {int(stream)}


def test_without_retry_after_the_backoff_is_exponential_and_jittered(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, fault="status=503; times=2")
    assert response.status_code == 200
    assert response.headers["x-provara-attempts"] == "3"
    first, second = sleeps.waits
    assert 0.125 <= first <= 0.25  # PROVARA_RETRY_BACKOFF_MS 250, upper half
    assert 0.25 <= second <= 0.5
    rows = usage_rows(server, token, response.headers["x-request-id"], 3)
    assert [(r["status"], r["error"]) for r in rows] == [
        (503, "upstream_error"),
        (503, "upstream_error"),
        (200, None),
    ]


def test_a_retry_after_beyond_the_budget_moves_on_at_once(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    # 60 s is more than PROVARA_RETRY_BUDGET_MS leaves: no sleep, the next model now.
    response = post(server, token, fault="status=429; retry-after=60; model=echo")
    assert response.status_code == 200
    assert sleeps.waits == []
    assert response.headers["x-provara-served-model"] == "local/echo-anthropic"
    rows = usage_rows(server, token, response.headers["x-request-id"], 2)
    assert [(r["model"], r["status"]) for r in rows] == [("echo", 429), ("echo-anthropic", 200)]


def test_the_last_failure_is_the_answer_with_its_retry_after(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, "local/echo-anthropic", fault="status=429; retry-after=4")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "4"
    assert response.headers["x-provara-attempts"] == "3"
    assert "x-provara-served-model" not in response.headers
    assert sleeps.waits == [4.0, 4.0]


def test_a_streamed_retry_before_the_first_byte_sends_the_answer_once(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, fault="status=503; times=1", stream=True)
    assert response.status_code == 200
    assert streamed_text(response) == TEXT
    assert {e["model"] for e in events(response)} == {"local/echo"}
    assert response.text.endswith("data: [DONE]\n\n")
    assert len(sleeps.waits) == 1


def test_no_retry_after_the_first_byte(server: GatewayServer, token: str, sleeps: Sleeps) -> None:
    response = post(server, token, fault="abort; times=1", stream=True)
    assert response.status_code == 200
    assert "[DONE]" not in response.text
    assert events(response)[-1]["error"]["code"] == "upstream_stream_aborted"
    assert sleeps.waits == []
    assert response.headers["x-provara-attempts"] == "1"
    (row,) = usage_rows(server, token, response.headers["x-request-id"], 1)
    assert (row["status"], row["error"], row["estimated"]) == (200, "stream_aborted", 1)


def test_an_unstreamed_answer_cut_before_the_client_saw_it_is_retried(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, fault="abort; times=1")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == TEXT
    assert response.headers["x-provara-attempts"] == "2"
    assert len(sleeps.waits) == 1


def test_a_refused_connection_is_retried_then_falls_back(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, "dead/dead-1")
    assert response.status_code == 200
    assert response.headers["x-provara-served-model"] == "local/echo"
    assert len(sleeps.waits) == 2
    rows = usage_rows(server, token, response.headers["x-request-id"], 4)
    assert [(r["provider"], r["error"]) for r in rows] == [
        ("dead", "connection_error"),
        ("dead", "connection_error"),
        ("dead", "connection_error"),
        ("local", None),
    ]
    for row in rows[:3]:
        # dead/dead-1 has no price: its attempts are unpriced (NULL), never a silent $0.
        assert (row["priced"], row["cost_picodollars"], row["status"]) == (0, None, 502)
        assert row["key_source"] == "none"


def test_a_400_is_neither_retried_nor_falls_back(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, fault="status=400")
    assert response.status_code == 400
    assert response.headers["x-provara-attempts"] == "1"
    assert sleeps.waits == []
    (row,) = usage_rows(server, token, response.headers["x-request-id"], 1)
    assert (row["status"], row["error"], row["attempt"]) == (400, "upstream_rejected", 0)


def test_no_first_token_in_time_is_abandoned_without_keep_alives(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, fault="stall=3000; times=1", stream=True)
    assert response.status_code == 200
    assert streamed_text(response) == TEXT
    # A keep-alive would have committed the stream to the stalled attempt.
    assert not [line for line in response.text.splitlines() if line.startswith(":")]
    assert response.headers["x-provara-attempts"] == "2"
    timed_out, answered = usage_rows(server, token, response.headers["x-request-id"], 2)
    assert (timed_out["status"], timed_out["error"]) == (504, "first_token_timeout")
    # The upstream may have read the prompt: its input counts, estimated; nothing came out.
    assert timed_out["input_tokens"] > 0 and timed_out["output_tokens"] == 0
    assert timed_out["input_tokens_source"] == "estimated" and timed_out["estimated"] == 1
    assert (timed_out["priced"], timed_out["cost_picodollars"]) == (1, 0)
    assert answered["error"] is None


def test_the_last_attempt_waits_with_keep_alives(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    # No fallback for echo-anthropic: two attempts time out, the last one may be slow.
    response = post(server, token, "local/echo-anthropic", fault="stall=700", stream=True)
    assert response.status_code == 200
    assert streamed_text(response) == TEXT
    lines = response.text.splitlines()
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert [line for line in lines[:first_data] if line.startswith(":")]
    assert response.headers["x-provara-attempts"] == "3"
    rows = usage_rows(server, token, response.headers["x-request-id"], 3)
    assert [r["error"] for r in rows] == ["first_token_timeout", "first_token_timeout", None]


def test_the_observer_gets_every_attempt_and_one_outcome_per_request(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    recorder = Recorder()
    server.gateway.observer = recorder
    try:
        ok = post(server, token, fault="status=503; model=echo")
        bad_token = post(server, "pvk_nope")
        bad_body = post(server, token, model="")
        failed = post(server, token, "local/echo-anthropic", fault="status=500")
        buggy = post(server, token, "boom/boom-1")
    finally:
        server.gateway.observer = type(recorder)()
    assert [o.status for o in recorder.outcomes] == [200, 401, 400, 502, 500]
    served, unauthenticated, invalid, upstream, bug = recorder.outcomes
    assert served.request_id == ok.headers["x-request-id"]
    assert served.served_model == "local/echo-anthropic" and served.error is None
    assert [a.public_model for a in served.attempts] == ["local/echo"] * 3 + [
        "local/echo-anthropic"
    ]
    assert served.skipped == ("acme/acme-large",)
    assert (served.retries, served.fallbacks) == (2, 1)
    assert served.attempts[-1].ok and not served.attempts[0].ok
    sent = [a for rid, a in recorder.attempts if rid == served.request_id]
    assert sent == list(served.attempts)
    assert (unauthenticated.tenant_id, unauthenticated.error) == (None, "invalid_api_key")
    assert bad_token.status_code == 401
    assert invalid.tenant_id is not None and invalid.attempts == ()
    assert bad_body.status_code == 400
    assert (upstream.error, upstream.served_model, len(upstream.attempts)) == (
        "upstream_error",
        None,
        3,
    )
    assert failed.status_code == 502
    assert (buggy.status_code, bug.error, bug.requested_model) == (
        500,
        "internal_error",
        "boom/boom-1",
    )


def test_a_scripted_upstream_s_attempts_cost_what_they_consumed(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    PRICY.queue(error=ErrorFault(529, "busy", retry_after=2))
    PRICY.queue(faults=StreamFaults(stall_after_chunks=0, stall_seconds=3))
    response = post(server, token, "pricy/p-1", stream=True)
    assert response.status_code == 200
    assert streamed_text(response) == TEXT
    assert sleeps.waits[0] == 2.0  # the 529's Retry-After
    overloaded, timed_out, answered = usage_rows(server, token, response.headers["x-request-id"], 3)
    assert (overloaded["error"], overloaded["status"]) == ("overloaded", 529)
    assert (overloaded["input_tokens"], overloaded["cost_picodollars"]) == (0, 0)
    assert overloaded["priced"] == 1
    # No first token in time: the prompt was sent, so its input is billed, estimated.
    assert timed_out["error"] == "first_token_timeout"
    assert timed_out["input_tokens"] > 0 and timed_out["estimated"] == 1
    per_input_token = PRICY_PRICE[0] * 10**12 // 10**6
    assert timed_out["cost_picodollars"] == timed_out["input_tokens"] * per_input_token
    assert answered["error"] is None and answered["cost_picodollars"] > 0


def test_a_gateway_error_after_the_first_byte_still_records_the_attempt(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    response = post(server, token, "glitch/g-1", stream=True)
    assert response.status_code == 200
    assert streamed_text(response) == "half"
    assert events(response)[-1]["error"]["type"] == "server_error"
    assert sleeps.waits == []
    (row,) = usage_rows(server, token, response.headers["x-request-id"], 1)
    assert (row["status"], row["error"], row["output_tokens"]) == (200, "internal_error", 1)
    owner = tenant_id(server.database, token)
    assert "glitch/g-1" not in server.gateway.router.failures(owner)  # a bug, not the model


@pytest.mark.parametrize(("model", "stream"), [("glitch/g-1", False), ("glitch/g-2", True)])
def test_an_adapter_bug_before_the_first_byte_is_a_500_and_an_attempt_row(
    server: GatewayServer, token: str, sleeps: Sleeps, model: str, stream: bool
) -> None:
    response = post(server, token, model, stream=stream)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert sleeps.waits == []  # a bug is not retried
    (row,) = usage_rows(server, token, response.headers["x-request-id"], 1)
    assert (row["status"], row["error"], row["output_tokens"]) == (500, "internal_error", 0)
    assert row["input_tokens"] > 0 and row["estimated"] == 1  # the upstream may have read it
    owner = tenant_id(server.database, token)
    assert model not in server.gateway.router.failures(owner)


def test_the_budget_spent_waiting_sends_the_request_down_the_chain(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    policy = server.gateway.retry
    now = [1_000.0]
    real_clock, real_sleep = policy.clock, policy.sleep

    async def sleep(seconds: float) -> None:
        sleeps.waits.append(seconds)
        now[0] += seconds

    policy.clock, policy.sleep = (lambda: now[0]), sleep
    try:
        # 10 s of budget: the first 6 s wait fits, a second one would not.
        response = post(server, token, fault="status=429; retry-after=6; model=echo")
    finally:
        policy.clock, policy.sleep = real_clock, real_sleep
    assert response.status_code == 200
    assert sleeps.waits == [6.0]
    assert response.headers["x-provara-served-model"] == "local/echo-anthropic"
    assert [p["status"] for p in meta_of(response)["path"]] == [429, 429, 200]
