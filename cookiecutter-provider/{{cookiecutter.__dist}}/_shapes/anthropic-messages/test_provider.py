"""The adapter's own wire mapping: what it sends, and what it makes of the answers.

The conformance suite checks what every adapter must do; these tests pin down how this one
speaks its wire. Change them along with ``provider.py``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from provara_kit import ChatRequest, ProvaraMeta, TextDelta, ToolCallDelta
from provara_kit.testing import CannedReply, ScriptedUpstream

from {{ cookiecutter.__module }}.dialect import {{ cookiecutter.__dialect_class }}
from {{ cookiecutter.__module }}.pricing import PRICES, PRICING
from {{ cookiecutter.__module }}.provider import (
    API_VERSION,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODELS,
    {{ cookiecutter.__class }},
)

KEY = "sk-test-5b0e7c1d9a"
MODEL = DEFAULT_MODELS[0]


def _upstream(reply: CannedReply | None = None, **options: Any) -> ScriptedUpstream:
    reply = reply or CannedReply(("Hello", " there"), model=MODEL)
    return ScriptedUpstream(
        {{ cookiecutter.__dialect_class }}(),
        reply=reply,
        expected_api_key=KEY,
        **options,
    )


def _provider(upstream: ScriptedUpstream) -> {{ cookiecutter.__class }}:
    return {{ cookiecutter.__class }}(api_key=KEY, transport=upstream, pricing=PRICING)


def _request(*messages: dict[str, Any], **fields: Any) -> ChatRequest:
    default = ({"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"})
    body = {"model": MODEL, "messages": list(messages or default), **fields}
    return ChatRequest.model_validate(body)


def test_sends_the_key_and_a_messages_body() -> None:
    upstream = _upstream()

    async def go() -> str:
        async with _provider(upstream) as provider:
            return (await provider.complete(_request(temperature=0.5, n=1))).text

    assert asyncio.run(go()) == "Hello there"
    sent = upstream.last_request
    assert sent.authorized is True
    assert sent.headers["anthropic-version"] == API_VERSION
    assert sent.path.endswith("/messages")
    assert sent.body == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.5,
    }


def test_tool_calls_and_results_map_to_blocks() -> None:
    upstream = _upstream()
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    request = _request(
        {"role": "user", "content": "Use f."},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    )

    async def go() -> None:
        async with _provider(upstream) as provider:
            await provider.complete(request)

    asyncio.run(go())
    assert upstream.last_request.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "42"}],
        },
    ]


def test_a_stream_yields_text_and_tool_calls_then_one_priced_meta() -> None:
    reply = CannedReply(
        ("Let me check.",),
        model=MODEL,
        finish_reason="tool_calls",
        input_tokens=1000,
        output_tokens=200,
        tool_calls=(("call_1", "lookup", '{"q":"x"}'),),
    )
    upstream = _upstream(reply)

    async def go() -> list[object]:
        async with _provider(upstream) as provider, provider.complete_stream(_request()) as stream:
            return [event async for event in stream]

    *content, meta = asyncio.run(go())
    assert content[0] == TextDelta("Let me check.")
    calls = [event for event in content if isinstance(event, ToolCallDelta)]
    assert "".join(call.arguments for call in calls) == '{"q":"x"}'
    assert calls[0].name == "lookup"
    assert isinstance(meta, ProvaraMeta)
    assert (meta.input_tokens, meta.output_tokens) == (1000, 200)
    assert meta.finish_reason == "tool_calls"
    price_in, price_out = (Decimal(str(price)) for price in PRICES[MODEL])
    assert meta.cost_usd == (1000 * price_in + 200 * price_out) / 1_000_000


def test_discovers_the_served_models() -> None:
    upstream = _upstream(models=[*DEFAULT_MODELS, "preview-model"])

    async def go() -> list[str] | None:
        async with _provider(upstream) as provider:
            return await provider.discover_models()

    assert asyncio.run(go()) == [*DEFAULT_MODELS, "preview-model"]
