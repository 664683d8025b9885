"""What the adapter decides for itself: the key, the paths, refusals, done reasons, models
and prices.

Messages, tools and the NDJSON stream are mapped by provara-kit's ``OllamaProvider``, whose
own tests cover them; the conformance suite checks what every adapter must do. Change these
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
    DEFAULT_MODELS,
    DONE_REASONS,
    KEY_HEADER,
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


def test_sends_the_key_the_path_and_an_explicit_stream_flag() -> None:
    upstream = _upstream()

    async def go() -> str:
        async with _provider(upstream) as provider:
            return (await provider.complete(_request(temperature=0.5, max_tokens=9))).text

    assert asyncio.run(go()) == "Hello there"
    sent = upstream.last_request
    assert sent.authorized is True
    assert KEY_HEADER in sent.headers
    assert sent.path.endswith("/api/chat")
    assert sent.body["stream"] is False  # the wire streams unless told not to
    assert sent.body["options"] == {"num_predict": 9, "temperature": 0.5}


def test_without_a_key_no_key_header_is_sent() -> None:
    upstream = ScriptedUpstream({{ cookiecutter.__dialect_class }}(), reply=CannedReply(("Hi",)))

    async def go() -> None:
        async with {{ cookiecutter.__class }}(api_key=None, transport=upstream) as provider:
            await provider.complete(_request())

    asyncio.run(go())
    assert KEY_HEADER not in upstream.last_request.headers


@pytest.mark.parametrize("param", sorted({{ cookiecutter.__class }}.unsupported_params))
def test_refuses_what_the_api_cannot_express_before_sending(param: str) -> None:
    upstream = _upstream()

    value = "required" if param == "tool_choice" else 1  # "auto" is what Ollama does

    async def go() -> None:
        async with _provider(upstream) as provider:
            await provider.complete(_request(**{param: value}))

    with pytest.raises(UnsupportedParameterError, match=param):
        asyncio.run(go())
    assert not upstream.requests


@pytest.mark.parametrize(("done_reason", "finish_reason"), sorted(DONE_REASONS.items()))
def test_done_reasons_become_finish_reasons(done_reason: str, finish_reason: str) -> None:
    reply = CannedReply(("Done.",), model=MODEL, wire_finish_reason=done_reason)
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
    assert [(call.name, call.arguments) for call in calls] == [("lookup", '{"q": "x"}')]
    assert calls[0].id  # the wire sends none: the kit derives a stable one
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
