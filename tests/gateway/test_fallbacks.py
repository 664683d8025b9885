"""Fallback chains: the served model named everywhere, models without a key skipped, what
falls back and what does not, ``auto``, the stored key's hint, feedback on the served
model, failures counted by the router, and a client that goes away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reference_gateway.store import connect
from reference_gateway.store.usage import completion_of
from tests.gateway.attempt_helpers import (
    FAULT,
    MESSAGES,
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


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, Sleeps]]:
    server, sleeps = start_gateway(Path(tmp_path_factory.mktemp("fallbacks")), retries=1)
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
    return server.tenant(f"fallback-{time.monotonic_ns()}")


@pytest.mark.parametrize("stream", [False, True])
def test_the_fallback_that_served_is_named_in_headers_meta_and_chunks(
    server: GatewayServer, token: str, sleeps: Sleeps, stream: bool
) -> None:
    response = post(server, token, fault="status=503; model=echo", stream=stream)
    assert response.status_code == 200
    assert response.headers["x-provara-served-model"] == "local/echo-anthropic"
    assert response.headers["x-provara-attempts"] == "3"
    meta = meta_of(response)
    assert meta["served_model"] == "local/echo-anthropic"
    assert meta["requested_model"] == "local/echo"
    assert meta["attempts"] == 3
    assert [(p["model"], p["status"]) for p in meta["path"]] == [
        ("local/echo", 503),
        ("local/echo", 503),
        ("local/echo-anthropic", 200),
    ]
    # acme/acme-large comes before it in the chain, but this tenant has no acme key.
    assert meta["skipped"] == ["acme/acme-large"]
    assert meta["model"] == "echo-anthropic" and meta["type"] == "_provara"
    if stream:
        assert streamed_text(response) == TEXT
        assert {e["model"] for e in events(response)} == {"local/echo-anthropic"}
    else:
        assert response.json()["model"] == "local/echo-anthropic"
        assert response.json()["choices"][0]["message"]["content"] == TEXT
    rows = usage_rows(server, token, response.headers["x-request-id"], 3)
    assert [(r["model"], r["attempt"], r["error"]) for r in rows] == [
        ("echo", 0, "upstream_error"),
        ("echo", 1, "upstream_error"),
        ("echo-anthropic", 2, None),
    ]
    assert len(sleeps.waits) == 1  # PROVARA_RETRIES 1: one retry of echo, then the fallback


def test_auto_falls_back_along_the_chosen_model_s_chain(server: GatewayServer, token: str) -> None:
    response = post(server, token, "auto", fault="status=529; model=echo")
    assert response.status_code == 200
    assert response.headers["x-provara-served-model"] == "local/echo-anthropic"
    rows = usage_rows(server, token, response.headers["x-request-id"], 3)
    assert {r["requested_model"] for r in rows} == {"auto"}
    assert [r["error"] for r in rows] == ["overloaded", "overloaded", None]


def test_a_refused_key_falls_back_but_a_bad_request_does_not(
    server: GatewayServer, token: str, sleeps: Sleeps
) -> None:
    refused = post(server, token, fault="status=401; model=echo")
    assert refused.status_code == 200
    assert refused.headers["x-provara-served-model"] == "local/echo-anthropic"
    assert refused.headers["x-provara-attempts"] == "2"  # a 401 is not retried
    bad = post(server, token, fault="status=422; model=echo")
    assert bad.status_code == 422
    assert bad.headers["x-provara-attempts"] == "1"
    assert sleeps.waits == []


def test_a_fallback_the_tenant_has_a_key_for_serves_and_its_row_has_the_hint(
    server: GatewayServer, token: str
) -> None:
    stored = httpx.post(
        f"{server.url}/api/provider-keys",
        json={"name": "ACME_API_KEY", "value": "sk-acme-0123456789wxyz"},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert stored.status_code in (200, 201)
    response = post(server, token, fault="status=500; model=echo")
    assert response.status_code == 200
    assert response.headers["x-provara-served-model"] == "acme/acme-large"
    assert "skipped" not in meta_of(response)
    *failed, answered = usage_rows(server, token, response.headers["x-request-id"], 3)
    assert (answered["provider"], answered["key_source"], answered["key_hint"]) == (
        "acme",
        "tenant",
        "wxyz",
    )
    # acme is unpriced: the served row's cost is unknown (NULL), not $0.
    assert (answered["priced"], answered["cost_picodollars"]) == (0, None)
    assert {(r["key_source"], r["key_hint"]) for r in failed} == {("local", None)}


def test_a_requested_model_without_a_key_falls_back_when_it_has_a_chain(
    tmp_path: Path,
) -> None:
    server, _ = start_gateway(tmp_path, fallbacks={"acme/acme-large": ("local/echo-anthropic",)})
    try:
        token = server.tenant("keyless")
        response = post(server, token, "acme/acme-large")
        assert response.status_code == 200
        assert response.headers["x-provara-served-model"] == "local/echo-anthropic"
        assert meta_of(response)["skipped"] == ["acme/acme-large"]
        assert response.headers["x-provara-attempts"] == "1"
        rows = usage_rows(server, token, response.headers["x-request-id"], 1)
        assert [(r["model"], r["requested_model"]) for r in rows] == [
            ("echo-anthropic", "acme/acme-large")
        ]
    finally:
        server.stop()


def test_every_model_failing_answers_the_last_failure(server: GatewayServer, token: str) -> None:
    response = post(server, token, fault="status=503")
    assert response.status_code == 503
    assert response.headers["x-provara-attempts"] == "4"
    assert "x-provara-served-model" not in response.headers
    rows = usage_rows(server, token, response.headers["x-request-id"], 4)
    assert all(r["error"] == "upstream_error" for r in rows)


def test_feedback_finds_the_served_attempt_not_a_failed_one(
    server: GatewayServer, token: str
) -> None:
    response = post(server, token, fault="status=503; model=echo")
    request_id = response.headers["x-request-id"]
    usage_rows(server, token, request_id, 3)
    owner = tenant_id(server.database, token)
    with connect(server.database) as conn:
        found = completion_of(conn, owner, request_id)
    assert found is not None and found[:2] == ("local", "echo-anthropic")
    feedback = httpx.post(
        f"{server.url}/v1/feedback",
        json={"completion_id": request_id, "score": 1},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert feedback.status_code == 201, feedback.text
    assert feedback.json()["model"] == "local/echo-anthropic"
    cell = found[2]
    samples = server.gateway.router.samples(owner, cell)
    assert set(samples) == {"local/echo-anthropic"}


def test_the_router_counts_failures_against_the_model(server: GatewayServer, token: str) -> None:
    owner = tenant_id(server.database, token)
    post(server, token, fault="status=503; model=echo")
    post(server, token, fault="status=400; model=echo")  # the request's fault, not the model's
    failures = server.gateway.router.failures(owner)
    assert set(failures) == {"local/echo"}
    assert 1.9 < failures["local/echo"] <= 2.0  # two 503s; the 400 does not count
    page = httpx.get(f"{server.url}/dashboard/router", headers={"authorization": f"Bearer {token}"})
    assert page.status_code == 200
    assert "Recent failures" in page.text and "<code>local/echo</code>" in page.text
    stranger = server.tenant(f"stranger-{time.monotonic_ns()}")
    other = httpx.get(
        f"{server.url}/dashboard/router", headers={"authorization": f"Bearer {stranger}"}
    )
    assert "Recent failures" not in other.text  # a tenant sees its own counts only


def test_a_client_that_goes_away_is_one_outcome_and_one_row(tmp_path: Path) -> None:
    server, _ = start_gateway(tmp_path, retries=0, fallbacks={})
    recorder = Recorder()
    server.gateway.observer = recorder
    try:
        token = server.tenant("leaver")
        with (
            httpx.Client(base_url=server.url, timeout=10) as http,
            http.stream(
                "POST",
                "/v1/chat/completions",
                json={"model": "local/echo", "messages": MESSAGES, "stream": True},
                headers={"authorization": f"Bearer {token}", FAULT: "stall=5000"},
            ) as response,
        ):
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            next(response.iter_lines())  # a keep-alive: the stream has started
        deadline = time.monotonic() + 5
        while not recorder.outcomes and time.monotonic() < deadline:
            time.sleep(0.02)
        (outcome,) = recorder.outcomes
        assert (outcome.request_id, outcome.status, outcome.error) == (
            request_id,
            200,
            "client_disconnected",
        )
        (row,) = usage_rows(server, token, request_id, 1)
        assert (row["status"], row["error"], row["output_tokens"]) == (
            200,
            "client_disconnected",
            0,
        )
        assert row["input_tokens_source"] == "estimated"
    finally:
        server.stop()


def test_a_client_gone_before_the_first_byte_is_a_499(tmp_path: Path) -> None:
    # A retry is left, so the stalled attempt sends no keep-alive: nothing reaches the client.
    server, _ = start_gateway(tmp_path, retries=1, fallbacks={}, first_token_timeout_ms=5_000)
    recorder = Recorder()
    server.gateway.observer = recorder
    try:
        token = server.tenant("impatient")
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{server.url}/v1/chat/completions",
                json={"model": "local/echo", "messages": MESSAGES, "stream": True},
                headers={"authorization": f"Bearer {token}", FAULT: "stall=5000"},
                timeout=httpx.Timeout(5, read=0.5),
            )
        deadline = time.monotonic() + 5
        while not recorder.outcomes and time.monotonic() < deadline:
            time.sleep(0.02)
        (outcome,) = recorder.outcomes
        assert (outcome.status, outcome.error, outcome.served_model) == (
            499,
            "client_disconnected",
            None,
        )
        (row,) = usage_rows(server, token, outcome.request_id, 1)
        assert (row["status"], row["error"], row["output_tokens"]) == (
            499,
            "client_disconnected",
            0,
        )
        assert row["input_tokens"] > 0 and row["estimated"] == 1
    finally:
        server.stop()


def test_a_first_token_timeout_with_no_time_left_for_a_retry_is_the_answer(
    tmp_path: Path,
) -> None:
    # A retry was possible when the attempt started, so it waited 300 ms with no keep-alive;
    # then the 1.5 s budget had less left than the shortest backoff (2 s): a 504.
    server, sleeps = start_gateway(
        tmp_path,
        retries=1,
        fallbacks={},
        first_token_timeout_ms=300,
        retry_budget_ms=1_500,
        retry_backoff_ms=4_000,
    )
    try:
        token = server.tenant("slow")
        response = post(server, token, fault="stall=3000", stream=True)
        assert response.status_code == 504
        error = response.json()["error"]
        assert error["code"] == "upstream_timeout"
        assert "PROVARA_FIRST_TOKEN_TIMEOUT_MS" in error["message"]
        assert response.headers["x-provara-attempts"] == "1"
        assert sleeps.waits == []
        (row,) = usage_rows(server, token, response.headers["x-request-id"], 1)
        assert (row["status"], row["error"]) == (504, "first_token_timeout")
    finally:
        server.stop()


def test_a_chain_of_models_without_keys_leaves_the_attempt_its_keep_alives(
    tmp_path: Path,
) -> None:
    # acme/acme-large has no key for this tenant: local/echo is in fact the last attempt,
    # so it may be slow (keep-alives) rather than abandoned at the first-token limit.
    server, _ = start_gateway(
        tmp_path,
        retries=0,
        fallbacks={"local/echo": ("acme/acme-large",)},
        first_token_timeout_ms=300,
    )
    try:
        token = server.tenant("slow-and-alone")
        response = post(server, token, fault="stall=900", stream=True)
        assert response.status_code == 200
        assert streamed_text(response) == TEXT
        assert [line for line in response.text.splitlines() if line.startswith(":")]
        assert response.headers["x-provara-attempts"] == "1"
    finally:
        server.stop()


@pytest.mark.parametrize("stream", [False, True])
def test_a_fallback_that_refuses_the_request_is_skipped(tmp_path: Path, stream: bool) -> None:
    chain = {"local/echo": ("picky/k-1", "local/echo-anthropic"), "dead/dead-1": ("picky/k-1",)}
    server, _ = start_gateway(tmp_path, fallbacks=chain)
    try:
        token = server.tenant("picky")
        served = post(server, token, fault="status=503; model=echo", stream=stream)
        assert served.status_code == 200
        assert served.headers["x-provara-served-model"] == "local/echo-anthropic"
        meta = meta_of(served)
        assert meta["skipped"] == ["picky/k-1"]
        assert [p["model"] for p in meta["path"]] == ["local/echo"] * 3 + ["local/echo-anthropic"]
        # Nothing left after the refusal: the answer is the failure that led there (a
        # 502, the dead port), not the refusal's 400.
        failed = post(server, token, "dead/dead-1", stream=stream)
        assert failed.status_code == 502, failed.text
        assert failed.json()["error"]["code"] != "unsupported_request"
        # The requested model refusing is the client's 400, as without a chain.
        refused = post(server, token, "picky/k-1", stream=stream)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "unsupported_request"
    finally:
        server.stop()
