"""What the adapter decides for itself: headers, path, max_tokens, refusals, stop reasons,
models and prices.

Messages, tools and the stream are mapped by provara-kit's ``AnthropicProvider``, whose own
tests cover them; the conformance suite checks what every adapter must do. Change these
tests along with the hooks in ``provider.py``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from provara_kit import ChatRequest, ProvaraMeta, TextDelta, ToolCallDelta
from provara_kit.errors import UnsupportedParameterError
from provara_kit.testing import CannedReply, ScriptedUpstream

from {{ cookiecutter.__module }}.dialect import {{ cookiecutter.__dialect_class }}
from {{ cookiecutter.__module }}.pricing import PRICES, PRICING
from {{ cookiecutter.__module }}.provider import (
    API_VERSION,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODELS,
    STOP_REASONS,
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


def _request(**fields: Any) -> ChatRequest:
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
    return ChatRequest.model_validate({"model": MODEL, "messages": messages, **fields})


def test_sends_the_key_the_version_and_the_default_max_tokens() -> None:
    upstream = _upstream()

    async def go() -> str:
        async with _provider(upstream) as provider:
            return (await provider.complete(_request(temperature=0.5))).text

    assert asyncio.run(go()) == "Hello there"
    sent = upstream.last_request
    assert sent.authorized is True
    assert sent.headers["anthropic-version"] == API_VERSION
    assert sent.path.endswith("/messages")
    assert sent.body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert sent.body["temperature"] == 0.5


@pytest.mark.parametrize("param", sorted({{ cookiecutter.__class }}.unsupported_params))
def test_refuses_what_the_api_cannot_express_before_sending(param: str) -> None:
    upstream = _upstream()

    async def go() -> None:
        async with _provider(upstream) as provider:
            await provider.complete(_request(**{param: 1}))

    with pytest.raises(UnsupportedParameterError, match=param):
        asyncio.run(go())
    assert not upstream.requests


@pytest.mark.parametrize(("stop_reason", "finish_reason"), sorted(STOP_REASONS.items()))
def test_stop_reasons_become_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    reply = CannedReply(("Done.",), model=MODEL, wire_finish_reason=stop_reason)
    upstream = _upstream(reply)

    async def go() -> tuple[str | None, object]:
        async with _provider(upstream) as provider:
            completed = await provider.complete(_request())
            async with provider.complete_stream(_request()) as stream:
                *_, meta = [event async for event in stream]
            return completed.finish_reason, meta

    completed, meta = asyncio.run(go())
    assert completed == finish_reason
    assert isinstance(meta, ProvaraMeta)
    assert meta.finish_reason == finish_reason


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
