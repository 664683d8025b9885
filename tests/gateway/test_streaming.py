"""Stream timing: keep-alives while the first token is slow, the idle timeout, and clients
that go away. These run on their own gateway with short timers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from tests.gateway.conftest import GatewayServer, make_settings

MESSAGES = [{"role": "user", "content": "slow and steady"}]
FAULT = "x-provara-local-fault"


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    settings = make_settings(
        Path(tmp_path_factory.mktemp("timed")), keepalive_ms=100, stream_timeout_ms=1500
    )
    with GatewayServer(settings) as server:
        yield server


@pytest.fixture
def timed_token(timed: GatewayServer) -> str:
    return timed.tenant(f"timed-{time.monotonic_ns()}")


def sse_lines(response: httpx.Response) -> list[str]:
    return [line for line in response.iter_lines() if line]


@contextmanager
def faulted_stream(server: GatewayServer, token: str, fault: str) -> Iterator[httpx.Response]:
    """A streamed local/echo completion with a local upstream fault, as a raw response."""
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "local/echo", "messages": MESSAGES, "stream": True},
            headers={"authorization": f"Bearer {token}", FAULT: fault},
        ) as response,
    ):
        yield response


def test_keep_alives_while_the_first_token_is_slow(timed: GatewayServer, timed_token: str) -> None:
    with faulted_stream(timed, timed_token, "stall=450") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = sse_lines(response)
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    keep_alives = [line for line in lines[:first_data] if line.startswith(":")]
    assert len(keep_alives) >= 2, lines
    assert all(not line.startswith(":") for line in lines[first_data:])
    assert lines[-1] == "data: [DONE]"


def test_openai_sdk_reads_through_keep_alives(timed: GatewayServer, timed_token: str) -> None:
    with openai.OpenAI(base_url=f"{timed.url}/v1", api_key=timed_token, max_retries=0) as sdk:
        stream = sdk.chat.completions.create(
            model="local/echo-anthropic",
            messages=MESSAGES,
            stream=True,
            extra_headers={FAULT: "stall=350"},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "slow and steady"
    assert chunks[-1].model_extra["provara"]["ttft_ms"] >= 300


def test_stall_over_the_stream_timeout_raises(timed: GatewayServer, timed_token: str) -> None:
    started = time.monotonic()
    with openai.OpenAI(base_url=f"{timed.url}/v1", api_key=timed_token, max_retries=0) as sdk:
        stream = sdk.chat.completions.create(
            model="local/echo",
            messages=MESSAGES,
            stream=True,
            extra_headers={FAULT: "stall=3000"},
        )
        with pytest.raises(openai.APIError) as caught:
            list(stream)
    assert "PROVARA_STREAM_TIMEOUT_MS" in caught.value.message
    assert time.monotonic() - started < 2.9


def test_fast_failure_keeps_its_status_even_when_streaming(
    timed: GatewayServer, timed_token: str
) -> None:
    with (
        openai.OpenAI(base_url=f"{timed.url}/v1", api_key=timed_token, max_retries=0) as sdk,
        pytest.raises(openai.RateLimitError),
    ):
        sdk.chat.completions.create(
            model="local/echo",
            messages=MESSAGES,
            stream=True,
            extra_headers={FAULT: "status=429"},
        )


def test_client_disconnect_closes_the_upstream(timed: GatewayServer, timed_token: str) -> None:
    upstream = timed.gateway.local.upstream
    with (
        httpx.Client(base_url=timed.url, timeout=10) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "local/echo", "messages": MESSAGES, "stream": True},
            headers={"authorization": f"Bearer {timed_token}", FAULT: "stall=5000"},
        ) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith(":")  # a keep-alive: the stream is open
        time.sleep(0.05)
        assert upstream.active == 1
        lines.close()  # dropping the iterator closes the connection
    # The client left during the stall: the gateway closes its upstream request at once
    # instead of waiting out the stall (or the stream timeout).
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline and upstream.active:
        time.sleep(0.01)
    assert upstream.active == 0


@pytest.mark.parametrize("fault", ["stall=300; abort", "stall=300; error-event"])
def test_a_failure_after_keep_alives_is_an_in_stream_error(
    timed: GatewayServer, timed_token: str, fault: str
) -> None:
    with faulted_stream(timed, timed_token, fault) as response:
        assert response.status_code == 200  # the stream had started: no status to change
        lines = sse_lines(response)
    assert lines[0].startswith(":")
    assert lines[-1].startswith('data: {"error":')
    assert "data: [DONE]" not in lines


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_the_wire_cannot_express_is_a_400(
    timed: GatewayServer, timed_token: str, stream: bool
) -> None:
    messages = [*MESSAGES, {"role": "tool", "content": "42"}]  # no tool_call_id
    response = httpx.post(
        f"{timed.url}/v1/chat/completions",
        json={"model": "local/echo-anthropic", "messages": messages, "stream": stream},
        headers={"authorization": f"Bearer {timed_token}"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_request"
    assert "tool_call_id" in error["message"]
