"""A provider with streaming off behind the gateway: a client that asks for a stream gets a
whole, correct SSE answer built from one plain completion, and its usage row."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from provara_kit.pricing import MODEL_PRICING
from provara_kit.provider import Provider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import Registry
from provara_kit.testing import CannedReply, ErrorFault, ScriptedUpstream
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.test_dashboard_pages import page
from tests.gateway.test_usage import rows

KEY = "sk-quiet-operator-0123456789abcdef"
REPLY = CannedReply(
    ("Let me", " check."),
    model="quiet-large",
    finish_reason="tool_calls",
    tool_calls=(("call_w1", "get_weather", '{"city": "Lisbon"}'),),
    input_tokens=1000,
    output_tokens=500,
)
MESSAGES = [{"role": "user", "content": "Weather in Lisbon?"}]


def _registry(upstream: ScriptedUpstream) -> Registry:
    """``quiet`` registered with streaming off, ``loud`` turned off by the environment,
    ``shaky`` with an unreadable setting; all three speak to ``upstream``."""

    def factory(name: str) -> Any:
        def build(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
            return OpenAICompatibleProvider(
                name=name,
                base_url="https://quiet.test/v1",
                api_key=api_key,
                transport=upstream,
                default_models=("quiet-large",),
            )

        return build

    registry = Registry()
    for name, streaming in (("quiet", False), ("loud", True), ("shaky", True)):
        registry.register(
            name,
            factory(name),
            api_key_env=f"{name.upper()}_API_KEY",
            default_models=("quiet-large",),
            wire="openai-chat",
            streaming=streaming,
        )
    return registry


@pytest.fixture
def priced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODEL_PRICING, "quiet/quiet-large", (0.5, 1.5))


def _server(tmp_path: Path, upstream: ScriptedUpstream) -> GatewayServer:
    environ = {f"{n}_API_KEY": KEY for n in ("QUIET", "LOUD", "SHAKY")}
    environ |= {"LOUD_STREAMING": "0", "SHAKY_STREAMING": "perhaps"}
    return GatewayServer(make_settings(tmp_path, environ=environ), registry=_registry(upstream))


def _events(body: str) -> list[Any]:
    """The SSE body's data fields, JSON decoded (``[DONE]`` as is); nothing else may be in it."""
    events: list[Any] = []
    for block in body.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: ") and "\n" not in block, block
        data = block.removeprefix("data: ")
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_a_stream_from_a_provider_with_streaming_off(
    tmp_path: Path, priced: None, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = ScriptedUpstream("openai-chat", reply=REPLY, expected_api_key=KEY)
    caplog.set_level(logging.WARNING, logger="reference_gateway")
    with _server(tmp_path, upstream) as gateway:
        token = gateway.tenant("ops")
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {token}"},
            json={
                "model": "quiet/quiet-large",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            timeout=10,
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[-1] == "[DONE]"
    *content, finish, usage, meta = events[:-1]
    deltas = [chunk["choices"][0]["delta"] for chunk in content]
    assert deltas == [
        {"role": "assistant", "content": "Let me check."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_w1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'},
                }
            ]
        },
    ]
    assert {chunk["id"] for chunk in events[:-1]} == {response.headers["x-request-id"]}
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert usage["choices"] == [] and usage["usage"] == {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
    }
    provara = meta["provara"]
    assert (provara["provider"], provara["model"], provara["priced"]) == (
        "quiet",
        "quiet-large",
        True,
    )
    assert Decimal(provara["cost_usd"]) == Decimal("0.00125")
    assert provara["input_tokens_source"] == provara["output_tokens_source"] == "upstream"
    assert provara["response_id"] == "resp_scripted"
    assert 0 <= provara["ttft_ms"] <= provara["latency_ms"]
    # One plain completion went upstream, never a stream request.
    [sent] = upstream.requests
    assert sent.authorized and "stream" not in sent.view and "stream_options" not in sent.view
    assert upstream.opened_streams == 0

    [row] = rows(gateway.database, token)
    assert (row["provider"], row["model"], row["stream"]) == ("quiet", "quiet-large", 1)
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (1000, 500, 0)
    assert row["priced"] == 1 and row["cost_picodollars"] == 1_250_000_000
    assert row["finish_reason"] == "tool_calls" and row["ttft_ms"] is not None
    logged = [r.getMessage() for r in caplog.records]
    assert any("streaming is off for quiet" in line for line in logged)
    assert any("streaming is off for loud" in line for line in logged)
    assert any("SHAKY_STREAMING must be 0 or 1" in line for line in logged)


def test_the_openai_sdk_reads_it_and_errors_keep_their_status(tmp_path: Path, priced: None) -> None:
    upstream = ScriptedUpstream("openai-chat", reply=REPLY, expected_api_key=KEY)
    upstream.queue(error=ErrorFault(429, message="slow down", retry_after=7))
    with _server(tmp_path, upstream) as gateway:
        token = gateway.tenant("sdk")
        with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk:
            with pytest.raises(openai.RateLimitError, match="slow down") as info:
                sdk.chat.completions.create(
                    model="loud/quiet-large", messages=MESSAGES, stream=True
                )
            assert info.value.response.headers.get("retry-after") == "7"
            chunks = list(
                sdk.chat.completions.create(
                    model="loud/quiet-large", messages=MESSAGES, stream=True
                )
            )
            misconfigured = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                headers={"authorization": f"Bearer {token}"},
                json={"model": "shaky/quiet-large", "messages": MESSAGES, "stream": True},
            )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    assert text == "Let me check."
    assert [(c.id, c.function and c.function.name) for c in calls] == [("call_w1", "get_weather")]
    assert (chunks[-1].model_extra or {})["provara"]["provider"] == "loud"
    assert misconfigured.status_code == 500
    assert misconfigured.json()["error"]["code"] == "provider_misconfigured"
    assert all("stream" not in r.view for r in upstream.requests)


def test_the_providers_page_shows_each_providers_streaming(tmp_path: Path) -> None:
    upstream = ScriptedUpstream("openai-chat", reply=REPLY, expected_api_key=KEY)
    with _server(tmp_path, upstream) as gateway:
        html = page(gateway, "/dashboard/providers", gateway.tenant("ops"))

    def row(name: str) -> str:
        return html.split(f"<strong>{name}</strong>")[1].split("<strong>")[0]

    assert '<span class="flag">off</span>' in row("quiet")
    assert "registered with streaming=False" in row("quiet")
    assert '<span class="flag">off</span>' in row("loud") and "LOUD_STREAMING=0" in row("loud")
    assert '<span class="flag">bad setting</span>' in row("shaky")
    assert "SHAKY_STREAMING must be 0 or 1" in row("shaky") and "&#x27;perhaps&#x27;" in row(
        "shaky"
    )
    assert '<span class="ok">on</span>' in row("local")
    assert "<script" not in html
