"""OpenAICompatibleProvider against a scripted upstream (httpx.MockTransport, no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provara_kit.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderStatusError,
    RateLimitError,
    RequestTooLargeError,
    StreamAbortedError,
    StreamTimeoutError,
    UnprocessableEntityError,
    UpstreamServerError,
)
from provara_kit.pricing import lookup_price
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.types import (
    ChatRequest,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

API_KEY = "sk-proj-Zq8VwL3nT5rY7uI9oP1aS2dF4gH6jK8lM0xC"
BASE_URL = "https://llm.example.test/v1"
PRICED_MODEL = "gpt-4o-mini"  # priced under provider "openai" in MODEL_PRICING
DONE = "[DONE]"

Handler = Callable[[httpx.Request], httpx.Response]


# -- helpers ---------------------------------------------------------------------------------


class ScriptedBody(httpx.AsyncByteStream):
    """A response body played part by part: bytes are sent, a float sleeps, an exception
    is raised. Records whether the client closed it."""

    def __init__(self, *parts: bytes | float | BaseException) -> None:
        self.parts = parts
        self.closed = False
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if isinstance(part, bytes):
                self.sent += 1
                yield part
            elif isinstance(part, BaseException):
                raise part
            else:
                await asyncio.sleep(part)

    async def aclose(self) -> None:
        self.closed = True


class Upstream:
    """A MockTransport handler that records requests and answers with a scripted response."""

    def __init__(
        self,
        body: bytes | ScriptedBody = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "text/event-stream",
        raises: Exception | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.headers = {"content-type": content_type, **(headers or {})}
        self.raises = raises
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.raises is not None:
            raise self.raises
        if isinstance(self.body, ScriptedBody):
            return httpx.Response(self.status, headers=self.headers, stream=self.body)
        return httpx.Response(self.status, headers=self.headers, content=self.body)

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.requests[-1].content)
        return payload


def make_provider(
    upstream: Handler, *, name: str = "openai", api_key: str | None = API_KEY, **kwargs: Any
) -> OpenAICompatibleProvider:
    kwargs.setdefault("stream_timeout", 5.0)
    return OpenAICompatibleProvider(
        name=name,
        base_url=BASE_URL,
        api_key=api_key,
        transport=httpx.MockTransport(upstream),
        **kwargs,
    )


def make_request(**overrides: Any) -> ChatRequest:
    data: dict[str, Any] = {
        "model": PRICED_MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    data.update(overrides)
    return ChatRequest(**data)


def chunk(
    content: str | list[dict[str, Any]] | None = None,
    *,
    finish: str | None = None,
    usage: tuple[int, int] | None = None,
    index: int = 0,
    **delta: Any,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``usage`` becomes a top-level usage object."""
    if content is not None:
        delta["content"] = content
    body: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "model": PRICED_MODEL,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    return body


def usage_chunk(prompt: int, completion: int) -> dict[str, Any]:
    body = chunk(usage=(prompt, completion))
    body["choices"] = []
    return body


def sse(*items: dict[str, Any] | str, newline: str = "\n", ensure_ascii: bool = True) -> bytes:
    """An SSE body: dicts are JSON ``data:`` events, strings are raw ``data:`` values."""
    out = []
    for item in items:
        data = item if isinstance(item, str) else json.dumps(item, ensure_ascii=ensure_ascii)
        out.append(f"data: {data}{newline}{newline}")
    return "".join(out).encode()


async def run_stream(
    provider: OpenAICompatibleProvider, request: ChatRequest | None = None
) -> tuple[list[StreamEvent], Exception | None]:
    """Drain a stream; return the events it yielded and the error that ended it, if any."""
    events: list[StreamEvent] = []
    error: Exception | None = None
    try:
        async with provider.complete_stream(request or make_request()) as stream:
            async for event in stream:
                events.append(event)
    except Exception as exc:
        error = exc
    finally:
        await provider.aclose()
    return events, error


async def stream_events(body: bytes | ScriptedBody, **kwargs: Any) -> list[StreamEvent]:
    events, error = await run_stream(make_provider(Upstream(body), **kwargs))
    if error is not None:
        raise error
    return events


def content_events(events: list[StreamEvent]) -> list[StreamEvent]:
    return [e for e in events if not isinstance(e, ProvaraMeta)]


def only_meta(events: list[StreamEvent]) -> ProvaraMeta:
    metas = [e for e in events if isinstance(e, ProvaraMeta)]
    assert len(metas) == 1, f"expected exactly one meta event, got {len(metas)}"
    assert events[-1] is metas[0], "the meta event must come last"
    return metas[0]


def completion_body(
    message: dict[str, Any],
    *,
    usage: dict[str, Any] | None = None,
    finish: str = "stop",
    model: str = PRICED_MODEL,
) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
        "usage": usage,
    }
    return json.dumps(body).encode()


def ceil4(text: str) -> int:
    return -(-len(text) // 4)


# -- request mapping -------------------------------------------------------------------------


async def test_request_maps_every_field_and_passes_extras_through() -> None:
    upstream = Upstream(completion_body({"content": "ok"}), content_type="application/json")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    request = make_request(
        messages=messages,
        max_tokens=64,
        temperature=0.2,
        stop=["\n\n", "END"],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        top_p=0.9,
        seed=7,
        response_format={"type": "json_object"},
    )
    provider = make_provider(upstream)
    await provider.complete(request)
    await provider.aclose()

    sent = upstream.requests[-1]
    assert sent.method == "POST"
    assert sent.url == f"{BASE_URL}/chat/completions"
    assert upstream.payload == {
        "model": PRICED_MODEL,
        "messages": messages,
        "max_tokens": 64,
        "temperature": 0.2,
        "stop": ["\n\n", "END"],
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "top_p": 0.9,
        "seed": 7,
        "response_format": {"type": "json_object"},
    }
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"


async def test_unset_optional_fields_are_not_sent() -> None:
    upstream = Upstream(completion_body({"content": "ok"}), content_type="application/json")
    provider = make_provider(upstream)
    await provider.complete(make_request())
    await provider.aclose()
    assert upstream.payload == {
        "model": PRICED_MODEL,
        "messages": [{"role": "user", "content": "Say hello."}],
    }


async def test_non_stream_request_drops_client_stream_flags() -> None:
    upstream = Upstream(completion_body({"content": "ok"}), content_type="application/json")
    provider = make_provider(upstream)
    await provider.complete(make_request(stream=True, stream_options={"include_usage": True}))
    await provider.aclose()
    assert "stream" not in upstream.payload
    assert "stream_options" not in upstream.payload


async def test_stream_request_asks_for_usage() -> None:
    upstream = Upstream(sse(chunk("hi", finish="stop"), DONE))
    await run_stream(make_provider(upstream))
    assert upstream.payload["stream"] is True
    assert upstream.payload["stream_options"] == {"include_usage": True}


async def test_stream_options_merge_with_the_clients() -> None:
    upstream = Upstream(sse(chunk("hi", finish="stop"), DONE))
    await run_stream(make_provider(upstream), make_request(stream_options={"x_trace": "on"}))
    assert upstream.payload["stream_options"] == {"x_trace": "on", "include_usage": True}


async def test_client_choice_of_include_usage_is_kept() -> None:
    upstream = Upstream(sse(chunk("hi", finish="stop"), DONE))
    await run_stream(make_provider(upstream), make_request(stream_options={"include_usage": False}))
    assert upstream.payload["stream_options"] == {"include_usage": False}


async def test_include_usage_false_sends_no_stream_options() -> None:
    upstream = Upstream(sse(chunk("hi", finish="stop"), DONE))
    await run_stream(make_provider(upstream, include_usage=False))
    assert upstream.payload["stream"] is True
    assert "stream_options" not in upstream.payload


async def test_extra_headers_are_sent_and_no_key_means_no_authorization() -> None:
    upstream = Upstream(completion_body({"content": "ok"}), content_type="application/json")
    provider = make_provider(
        upstream,
        api_key=None,
        extra_headers={"HTTP-Referer": "https://gateway.test", "X-Title": "Provara"},
    )
    await provider.complete(make_request())
    await provider.aclose()
    sent = upstream.requests[-1]
    assert sent.headers["http-referer"] == "https://gateway.test"
    assert sent.headers["x-title"] == "Provara"
    assert "authorization" not in sent.headers


# -- non-streamed responses ------------------------------------------------------------------


async def test_complete_parses_text_finish_and_usage() -> None:
    body = completion_body(
        {"content": "Hello there!"},
        usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    )
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert response.text == "Hello there!"
    assert response.finish_reason == "stop"
    assert response.id == "chatcmpl-abc"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 3)
    assert not response.usage.estimated
    meta = response.meta
    assert (meta.provider, meta.model) == ("openai", PRICED_MODEL)
    price = lookup_price("openai", PRICED_MODEL)
    assert price is not None
    assert meta.priced and isinstance(meta.cost_usd, Decimal)
    assert meta.cost_usd == price.cost(11, 3)
    assert meta.latency_ms >= 0


async def test_complete_keeps_a_real_zero() -> None:
    body = completion_body({"content": ""}, usage={"prompt_tokens": 0, "completion_tokens": 0})
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert (response.usage.input_tokens, response.usage.output_tokens) == (0, 0)
    assert response.usage.input_tokens_source == "upstream"
    assert response.usage.output_tokens_source == "upstream"
    assert response.meta.cost_usd == Decimal(0)


# 4 code points over three messages: ceil(4/4) = 1 counted together, but 3 per message,
# 2 in UTF-16 units (the emoji is two) and 2 in UTF-8 bytes (it is four).
ESTIMATE_MESSAGES = [
    {"role": "system", "content": "ab"},
    {"role": "user", "content": [{"type": "text", "text": "😄"}, {"type": "image_url"}]},
    {"role": "user", "content": "b"},
]


@pytest.mark.parametrize("usage", [None, "absent", {}])
async def test_complete_estimates_missing_usage(usage: Any) -> None:
    text = "héllo wörld 😄😄"  # 15 code points -> 4 tokens (UTF-16 would give 5, bytes 6)
    message = {"content": text}
    body = json.loads(completion_body(message, usage=None if usage == "absent" else usage))
    if usage == "absent":
        del body["usage"]
    upstream = Upstream(json.dumps(body).encode(), content_type="application/json")
    provider = make_provider(upstream)
    response = await provider.complete(make_request(messages=ESTIMATE_MESSAGES))
    await provider.aclose()
    assert response.usage.input_tokens == 1
    assert response.usage.output_tokens == ceil4(text) == 4
    assert response.usage.input_tokens_source == "estimated"
    assert response.usage.output_tokens_source == "estimated"
    assert response.usage.estimated


async def test_complete_estimates_only_the_missing_half() -> None:
    body = completion_body({"content": "abcdefgh"}, usage={"prompt_tokens": 9})
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert (response.usage.input_tokens, response.usage.input_tokens_source) == (9, "upstream")
    assert (response.usage.output_tokens, response.usage.output_tokens_source) == (
        2,
        "estimated",
    )


async def test_complete_parses_tool_calls() -> None:
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    body = completion_body({"content": None, "tool_calls": calls}, finish="tool_calls")
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert response.text == ""
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [
        ToolCall(id="call_a", name="get_weather", arguments='{"city":"Oslo"}'),
        ToolCall(id="call_b", name="get_time", arguments="{}"),
    ]


async def test_complete_tool_call_arguments_sent_as_an_object() -> None:
    calls = [{"id": "c", "function": {"name": "f", "arguments": {"city": "Zürich"}}}]
    body = completion_body({"content": None, "tool_calls": calls}, finish="tool_calls")
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert response.tool_calls == [ToolCall(id="c", name="f", arguments='{"city": "Zürich"}')]


async def test_complete_parses_legacy_function_call() -> None:
    body = completion_body(
        {"content": None, "function_call": {"name": "lookup", "arguments": '{"q":"x"}'}},
        finish="function_call",
    )
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert response.tool_calls == [ToolCall(id=None, name="lookup", arguments='{"q":"x"}')]
    assert response.finish_reason == "function_call"


async def test_complete_parses_mistral_content_parts() -> None:
    content = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "Let me think."}]},
        {"type": "text", "text": "The answer"},
        {"type": "text", "text": " is 4."},
    ]
    body = completion_body({"content": content})
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert response.text == "The answer is 4."
    assert response.reasoning == "Let me think."


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_complete_parses_reasoning(field: str) -> None:
    body = completion_body({"content": "4", field: "2 + 2 = 4"})
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request())
    await provider.aclose()
    assert (response.text, response.reasoning) == ("4", "2 + 2 = 4")


async def test_complete_unpriced_model_has_no_cost() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 1}
    body = completion_body({"content": "hi"}, usage=usage, model="no-such-model-xyz")
    provider = make_provider(Upstream(body, content_type="application/json"))
    response = await provider.complete(make_request(model="no-such-model-xyz"))
    await provider.aclose()
    assert response.meta.cost_usd is None
    assert response.meta.priced is False


async def test_complete_non_json_200_is_malformed_and_scrubbed() -> None:
    body = f"<html>upstream proxy error for key {API_KEY}</html>".encode()
    provider = make_provider(Upstream(body, content_type="text/html"))
    with pytest.raises(MalformedResponseError) as info:
        await provider.complete(make_request())
    await provider.aclose()
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)


@pytest.mark.parametrize(
    "body",
    [
        {"choices": []},
        {"object": "chat.completion"},
        {"choices": ["not an object"]},
        {"choices": [{"message": "not an object"}]},
        {"choices": [{"message": {"content": "x", "tool_calls": [None]}}]},
        [],
    ],
    ids=["no-choices", "choices-missing", "choice-string", "message-string", "call-null", "list"],
)
async def test_complete_unexpected_shape_is_malformed(body: Any) -> None:
    upstream = Upstream(json.dumps(body).encode(), content_type="application/json")
    provider = make_provider(upstream)
    with pytest.raises(MalformedResponseError):
        await provider.complete(make_request())
    await provider.aclose()


# -- streams: content ------------------------------------------------------------------------


async def test_stream_yields_content_deltas_and_skips_empty_ones() -> None:
    body = sse(
        chunk("", role="assistant", refusal=None),  # OpenAI's role-only first chunk
        chunk(None, role="assistant"),  # content: null
        chunk("Hel"),
        chunk(""),
        chunk(role="assistant"),  # no content key at all
        chunk("lo"),
        {"id": "chatcmpl-123", "choices": [{"index": 0, "delta": {}, "finish_reason": None}]},
        chunk("", finish="stop"),
        DONE,
    )
    events = await stream_events(body)
    assert content_events(events) == [TextDelta("Hel"), TextDelta("lo")]
    assert only_meta(events).finish_reason == "stop"


async def test_stream_empty_answer_yields_only_meta() -> None:
    events = await stream_events(sse(chunk("", role="assistant"), chunk("", finish="stop"), DONE))
    assert content_events(events) == []
    meta = only_meta(events)
    assert meta.ttft_ms is None
    assert (meta.output_tokens, meta.output_tokens_source) == (0, "estimated")


async def test_stream_reasoning_and_refusal() -> None:
    body = sse(
        chunk(None, reasoning_content="think "),
        chunk(None, reasoning="more"),
        chunk(None, refusal="I can't help with that."),
        chunk([{"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]}]),
        chunk([{"type": "text", "text": "ok"}]),
        chunk(finish="stop"),
        DONE,
    )
    events = await stream_events(body)
    assert content_events(events) == [
        ReasoningDelta("think "),
        ReasoningDelta("more"),
        TextDelta("I can't help with that."),
        ReasoningDelta("hm"),
        TextDelta("ok"),
    ]


async def test_stream_only_follows_choice_zero() -> None:
    body = sse(chunk("A"), chunk("B", index=1), chunk("C", index=1, finish="length"),
               chunk("D", finish="stop"), DONE)  # fmt: skip
    events = await stream_events(body)
    assert content_events(events) == [TextDelta("A"), TextDelta("D")]
    assert only_meta(events).finish_reason == "stop"


async def test_stream_tool_call_fragments() -> None:
    def call(index: int, **fields: Any) -> dict[str, Any]:
        function = {k: v for k, v in fields.items() if k in ("name", "arguments")}
        out: dict[str, Any] = {"index": index, "function": function}
        if "id" in fields:
            out.update(id=fields["id"], type="function")
        return out

    body = sse(
        chunk(None, role="assistant", tool_calls=[call(0, id="call_a", name="f", arguments="")]),
        chunk(tool_calls=[call(0, arguments='{"ci')]),
        chunk(tool_calls=[call(1, id="call_b", name="g", arguments="")]),
        chunk(tool_calls=[call(0, arguments='ty":"Oslo"}')]),
        chunk(tool_calls=[call(1, arguments="{}")]),
        chunk(finish="tool_calls"),
        usage_chunk(20, 12),
        DONE,
    )
    provider = make_provider(Upstream(body))
    async with provider.complete_stream(make_request()) as stream:
        response = await stream.collect()
    await provider.aclose()
    assert response.tool_calls == [
        ToolCall(id="call_a", name="f", arguments='{"city":"Oslo"}'),
        ToolCall(id="call_b", name="g", arguments="{}"),
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 12)


async def test_stream_tool_call_id_and_name_come_once() -> None:
    """OpenRouter repeats id and name on every fragment; clients would concatenate them."""
    call = {"index": 0, "id": "0", "type": "function", "function": {"name": "llm_version"}}
    body = sse(
        chunk(None, tool_calls=[{**call, "function": {"name": "llm_version", "arguments": ""}}]),
        chunk(None, tool_calls=[{**call, "function": {"name": "llm_version", "arguments": "{}"}}]),
        chunk(finish="tool_calls"),
        DONE,
    )
    events = await stream_events(body)
    assert content_events(events) == [
        ToolCallDelta(index=0, id="0", name="llm_version", arguments=""),
        ToolCallDelta(index=0, id=None, name=None, arguments="{}"),
    ]


async def test_stream_tool_calls_without_index_use_their_position() -> None:
    """Mistral sends whole tool calls in one chunk with neither ``index`` nor ``type``."""
    calls = [
        {"id": "a1", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b2", "function": {"name": "g", "arguments": '{"x":1}'}},
    ]
    events = await stream_events(sse(chunk("", tool_calls=calls, finish="tool_calls"), DONE))
    assert content_events(events) == [
        ToolCallDelta(index=0, id="a1", name="f", arguments="{}"),
        ToolCallDelta(index=1, id="b2", name="g", arguments='{"x":1}'),
    ]


# -- streams: usage --------------------------------------------------------------------------


async def test_stream_usage_chunk_with_empty_choices() -> None:
    body = sse(chunk("Hi", usage=None), chunk(finish="stop"), usage_chunk(14, 2), DONE)
    meta = only_meta(await stream_events(body))
    assert (meta.input_tokens, meta.output_tokens) == (14, 2)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("upstream", "upstream")


async def test_stream_usage_on_the_finish_chunk() -> None:
    meta = only_meta(
        await stream_events(sse(chunk("Hi"), chunk(finish="stop", usage=(7, 1)), DONE))
    )
    assert (meta.input_tokens, meta.output_tokens) == (7, 1)
    assert not meta.usage.estimated


async def test_stream_usage_null_on_every_chunk_is_estimated() -> None:
    first, last = chunk("Olá 😄😄😄"), chunk(finish="stop")
    first["usage"] = last["usage"] = None
    request = make_request(messages=ESTIMATE_MESSAGES)
    events, error = await run_stream(make_provider(Upstream(sse(first, last, DONE))), request)
    assert error is None
    meta = only_meta(events)
    assert (meta.input_tokens, meta.input_tokens_source) == (1, "estimated")
    # 7 code points -> 2 (UTF-16 units would give 3, bytes 4)
    assert (meta.output_tokens, meta.output_tokens_source) == (2, "estimated")


async def test_stream_real_zero_usage_is_kept() -> None:
    meta = only_meta(await stream_events(sse(chunk("x", finish="stop"), usage_chunk(0, 0), DONE)))
    assert (meta.input_tokens, meta.output_tokens) == (0, 0)
    assert not meta.usage.estimated
    assert meta.cost_usd == Decimal(0)


async def test_stream_x_groq_usage() -> None:
    last = chunk(finish="stop")
    last["x_groq"] = {"id": "req_1", "usage": {"prompt_tokens": 18, "completion_tokens": 73}}
    first = chunk("Hi")
    first["x_groq"] = {"id": "req_1", "seed": 42}
    meta = only_meta(await stream_events(sse(first, last, DONE)))
    assert (meta.input_tokens, meta.output_tokens) == (18, 73)
    assert not meta.usage.estimated


# -- streams: how they end -------------------------------------------------------------------


async def test_stream_done_is_terminal() -> None:
    events = await stream_events(sse(chunk("a", finish="stop"), DONE, chunk("after")))
    assert content_events(events) == [TextDelta("a")]
    only_meta(events)


async def test_stream_done_without_finish_reason_is_clean() -> None:
    meta = only_meta(await stream_events(sse(chunk("a"), DONE)))
    assert meta.finish_reason is None


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
async def test_stream_end_after_finish_reason_without_done_is_clean(newline: str) -> None:
    """Perplexity never sends [DONE] (and frames events with CRLF)."""
    body = sse(chunk("The answer", usage=(12, 1)), chunk(" [1].", finish="stop", usage=(12, 3)),
               newline=newline)  # fmt: skip
    events = await stream_events(body)
    assert content_events(events) == [TextDelta("The answer"), TextDelta(" [1].")]
    meta = only_meta(events)
    assert (meta.finish_reason, meta.input_tokens, meta.output_tokens) == ("stop", 12, 3)


async def test_stream_end_without_finish_or_done_aborts() -> None:
    events, error = await run_stream(make_provider(Upstream(sse(chunk("par"), chunk("tial")))))
    assert isinstance(error, StreamAbortedError)
    assert content_events(events) == [TextDelta("par"), TextDelta("tial")]
    assert not any(isinstance(e, ProvaraMeta) for e in events)


@pytest.mark.parametrize(
    "tail",
    [b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"cut', b"data: [DO", b"data: "],
    ids=["mid-json", "mid-done", "mid-field"],
)
async def test_stream_truncated_mid_event_aborts(tail: bytes) -> None:
    # Even after a finish_reason, a body cut inside an event is not a clean end.
    body = sse(chunk("Hello", finish="stop")) + tail
    events, error = await run_stream(make_provider(Upstream(body)))
    assert isinstance(error, StreamAbortedError)
    assert not any(isinstance(e, ProvaraMeta) for e in events)


async def test_stream_error_event_aborts() -> None:
    """Groq: ``event: error`` after HTTP 200, then the body ends."""
    error_data = json.dumps(
        {"error": {"message": "Tool call validation failed", "code": "tool_use_failed"}}
    )
    body = sse(chunk("", role="assistant"), chunk(None, reasoning="We")) + (
        f"event: error\ndata: {error_data}\n\n".encode()
    )
    events, error = await run_stream(make_provider(Upstream(body + sse(DONE))))
    assert isinstance(error, StreamAbortedError)
    assert "Tool call validation failed" in str(error)
    assert content_events(events) == [ReasoningDelta("We")]


async def test_stream_error_object_in_a_chunk_aborts_even_if_done_follows() -> None:
    """OpenRouter: a 200 stream whose chunk carries ``error``, then ``data: [DONE]``."""
    bad = chunk("", finish=None, usage=(43, 10))
    bad["error"] = {"code": 400, "message": f"Token limit reached for key {API_KEY}"}
    body = b": OPENROUTER PROCESSING\n\n" + sse(chunk("Hi", finish="length"), bad, DONE)
    events, error = await run_stream(make_provider(Upstream(body), name="openrouter"))
    assert isinstance(error, StreamAbortedError)
    assert "Token limit reached" in str(error)
    assert API_KEY not in str(error) and API_KEY not in repr(error)
    assert content_events(events) == [TextDelta("Hi")]
    assert not any(isinstance(e, ProvaraMeta) for e in events)


@pytest.mark.parametrize(
    "data",
    ["not json", "{'single': 'quotes'}", "[1, 2]", '"text"', '{"choices": [null]}',
     '{"choices": [{"delta": "x"}]}', '{"choices": [{"delta": {"tool_calls": [7]}}]}'],
)  # fmt: skip
async def test_stream_malformed_data_aborts(data: str) -> None:
    events, error = await run_stream(make_provider(Upstream(sse(chunk("a"), data, DONE))))
    assert isinstance(error, StreamAbortedError)
    assert not any(isinstance(e, ProvaraMeta) for e in events)


async def test_stream_connection_error_mid_body_aborts() -> None:
    body = ScriptedBody(sse(chunk("Hel")), httpx.ReadError("connection reset by peer"))
    events, error = await run_stream(make_provider(Upstream(body)))
    assert isinstance(error, StreamAbortedError)
    assert content_events(events) == [TextDelta("Hel")]
    assert not any(isinstance(e, ProvaraMeta) for e in events)
    assert body.closed


# -- streams: the meta event -----------------------------------------------------------------


async def test_stream_meta_event_fields() -> None:
    body = ScriptedBody(
        sse(chunk("", role="assistant")),
        0.01,
        sse(chunk("Hello")),
        sse(chunk(" world", finish="stop"), usage_chunk(12, 2), DONE),
    )
    events = await stream_events(body)
    meta = only_meta(events)
    price = lookup_price("openai", PRICED_MODEL)
    assert price is not None
    assert meta.provider == "openai"
    assert meta.model == PRICED_MODEL
    assert (meta.input_tokens, meta.output_tokens) == (12, 2)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("upstream", "upstream")
    assert isinstance(meta.cost_usd, Decimal) and meta.cost_usd == price.cost(12, 2)
    assert meta.priced is True
    assert meta.finish_reason == "stop"
    assert meta.response_id == "chatcmpl-123"
    assert meta.ttft_ms is not None and meta.ttft_ms >= 9
    assert meta.latency_ms >= meta.ttft_ms
    assert Decimal(meta.to_dict()["cost_usd"]) == meta.cost_usd


async def test_stream_meta_unpriced_model() -> None:
    body = sse({**chunk("x", finish="stop"), "model": "mystery"}, usage_chunk(3, 1), DONE)
    events, error = await run_stream(make_provider(Upstream(body)), make_request(model="mystery"))
    assert error is None
    meta = only_meta(events)
    assert (meta.cost_usd, meta.priced) == (None, False)


async def test_stream_meta_priced_through_the_dated_model_upstream_names() -> None:
    dated = {**chunk("x", finish="stop"), "model": "gpt-4o-mini-2024-07-18"}
    meta = only_meta(await stream_events(sse(dated, usage_chunk(1000, 1000), DONE)))
    assert meta.model == PRICED_MODEL
    assert meta.extra == {"upstream_model": "gpt-4o-mini-2024-07-18"}
    assert meta.cost_usd == Decimal("0.00075")


async def test_stream_stall_times_out() -> None:
    body = ScriptedBody(sse(chunk("Hel")), 30.0, sse(chunk("lo", finish="stop"), DONE))
    provider = make_provider(Upstream(body), stream_timeout=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    events, error = await run_stream(provider)
    assert isinstance(error, StreamTimeoutError)
    assert loop.time() - started < 2
    assert content_events(events) == [TextDelta("Hel")]
    assert not any(isinstance(e, ProvaraMeta) for e in events)
    assert body.closed


async def test_stream_keep_alive_comments_reset_the_idle_timer() -> None:
    keep_alive = b": OPENROUTER PROCESSING\n\n"
    parts: list[bytes | float] = []
    for _ in range(12):  # 0.24 s in all, never more than 0.02 s apart
        parts += [keep_alive, 0.02]
    body = ScriptedBody(*parts, sse(chunk("ok", finish="stop"), DONE))
    events = await stream_events(body, stream_timeout=0.15)
    assert content_events(events) == [TextDelta("ok")]
    only_meta(events)


async def test_stream_early_break_closes_the_response() -> None:
    body = ScriptedBody(sse(chunk("one")), sse(chunk("two")), 30.0, sse(DONE))
    provider = make_provider(Upstream(body))
    stream = provider.complete_stream(make_request())
    async for event in stream:
        assert event == TextDelta("one")
        break
    assert not body.closed
    await stream.aclose()
    assert body.closed
    assert stream.meta is None
    await provider.aclose()


async def test_stream_context_manager_exit_closes_the_response() -> None:
    body = ScriptedBody(sse(chunk("one")), 30.0, sse(DONE))
    provider = make_provider(Upstream(body))
    async with provider.complete_stream(make_request()) as stream:
        assert await anext(stream) == TextDelta("one")
    assert body.closed
    await provider.aclose()


# -- errors ----------------------------------------------------------------------------------

STATUS_CASES = [
    (400, BadRequestError, False),
    (401, AuthenticationError, False),
    (403, PermissionDeniedError, False),
    (404, NotFoundError, False),
    (409, ConflictError, False),
    (413, RequestTooLargeError, False),
    (422, UnprocessableEntityError, False),
    (429, RateLimitError, True),
    (500, UpstreamServerError, True),
    (503, UpstreamServerError, True),
    (529, OverloadedError, True),
]


def error_upstream(status: int, message: str = "upstream says no", **headers: str) -> Upstream:
    body = json.dumps({"error": {"message": message, "type": "some_error", "code": None}})
    return Upstream(body.encode(), status=status, headers=headers, content_type="application/json")


@pytest.mark.parametrize(("status", "cls", "retryable"), STATUS_CASES)
async def test_status_errors_on_complete(
    status: int, cls: type[ProviderStatusError], retryable: bool
) -> None:
    provider = make_provider(error_upstream(status))
    with pytest.raises(ProviderStatusError) as info:
        await provider.complete(make_request())
    await provider.aclose()
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.retryable) == (status, retryable)
    assert error.message == "upstream says no"
    assert error.provider == "openai"
    assert "upstream says no" in str(error)


@pytest.mark.parametrize(("status", "cls", "retryable"), STATUS_CASES)
async def test_status_errors_on_stream(
    status: int, cls: type[ProviderStatusError], retryable: bool
) -> None:
    events, error = await run_stream(make_provider(error_upstream(status)))
    assert events == []
    assert type(error) is cls
    assert isinstance(error, ProviderStatusError)
    assert (error.status_code, error.retryable, error.message) == (
        status,
        retryable,
        "upstream says no",
    )


async def test_retry_after_seconds() -> None:
    provider = make_provider(error_upstream(429, **{"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as info:
        await provider.complete(make_request())
    await provider.aclose()
    assert info.value.retry_after == 7.0


async def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    _, error = await run_stream(make_provider(error_upstream(429, **{"Retry-After": when})))
    assert isinstance(error, RateLimitError)
    assert error.retry_after is not None and 80 <= error.retry_after <= 90


async def test_error_without_retry_after() -> None:
    provider = make_provider(error_upstream(503))
    with pytest.raises(UpstreamServerError) as info:
        await provider.complete(make_request())
    await provider.aclose()
    assert info.value.retry_after is None


def _key_windows(key: str, size: int = 8) -> list[str]:
    return [key[i : i + size] for i in range(len(key) - size + 1)]


@pytest.mark.parametrize(
    "echo",
    [
        API_KEY,
        f"{API_KEY[:6]}...{API_KEY[-4:]}",  # "sk-pro...0xC"-style partial mask
        f"{API_KEY[:8]}{'*' * 20}{API_KEY[-4:]}",  # OpenAI's "sk-proj-****...abcd"
        f"{API_KEY[:10]}...{API_KEY[-10:]}",
        f"Bearer {API_KEY}",
    ],
    ids=["full", "head6-tail4", "openai-mask", "head10-tail10", "bearer"],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_api_key_never_in_error_text(echo: str, streaming: bool) -> None:
    upstream = error_upstream(401, f"Incorrect API key provided: {echo}. See the docs.")
    provider = make_provider(upstream)
    if streaming:
        _, error = await run_stream(provider)
    else:
        try:
            await provider.complete(make_request())
        except AuthenticationError as exc:
            error = exc
        await provider.aclose()
    assert isinstance(error, AuthenticationError)
    for text in (str(error), repr(error), error.message):
        assert API_KEY not in text
        leaked = [w for w in _key_windows(API_KEY) if w in text]
        assert leaked == [], f"key fragments leaked: {leaked}"
    assert "Incorrect API key provided" in error.message


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ConnectError(f"connection refused ({API_KEY})"), "connection refused"),
        (httpx.ConnectTimeout("timed out"), "timed out connecting"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "host name did not resolve"),
        (httpx.ReadError("reset"), "the connection broke"),
    ],
    ids=["refused", "timeout", "dns", "reset"],
)
async def test_connection_errors(exc: Exception, reason: str, streaming: bool) -> None:
    provider = make_provider(Upstream(raises=exc))
    if streaming:
        _, error = await run_stream(provider)
    else:
        try:
            await provider.complete(make_request())
        except ProviderConnectionError as caught:
            error = caught
        await provider.aclose()
    assert isinstance(error, ProviderConnectionError)
    assert error.retryable
    assert API_KEY not in str(error) and API_KEY not in repr(error)
    assert error.reason == reason  # what broke, in words that carry no address


# -- models and repr -------------------------------------------------------------------------


async def test_discover_models() -> None:
    body = {
        "object": "list",
        "data": [{"id": "gpt-4o-mini", "object": "model"}, {"id": "o3"}, {"object": "model"}],
    }
    upstream = Upstream(json.dumps(body).encode(), content_type="application/json")
    provider = make_provider(upstream)
    assert await provider.discover_models() == ["gpt-4o-mini", "o3"]
    await provider.aclose()
    sent = upstream.requests[-1]
    assert (sent.method, str(sent.url)) == ("GET", f"{BASE_URL}/models")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"


async def test_complete_error_body_with_200_keeps_the_message() -> None:
    body = {"error": {"message": f"Provider returned error for {API_KEY}", "code": 502}}
    upstream = Upstream(json.dumps(body).encode(), content_type="application/json")
    provider = make_provider(upstream)
    with pytest.raises(MalformedResponseError, match=r"error body \(502\): Provider returned"):
        await provider.complete(make_request())
    await provider.aclose()


@pytest.mark.parametrize("body", [{"object": "list"}, {"data": "soon"}, "o3", {"error": "no"}])
async def test_discover_models_unexpected_body_is_malformed(body: Any) -> None:
    upstream = Upstream(json.dumps(body).encode(), content_type="application/json")
    provider = make_provider(upstream)
    with pytest.raises(MalformedResponseError):
        await provider.discover_models()
    await provider.aclose()


async def test_discover_models_error_is_typed() -> None:
    provider = make_provider(error_upstream(401, "bad key"))
    with pytest.raises(AuthenticationError):
        await provider.discover_models()
    await provider.aclose()


def test_repr_has_no_key() -> None:
    provider = make_provider(Upstream())
    for text in (repr(provider), str(provider)):
        assert API_KEY not in text
        assert not any(w in text for w in _key_windows(API_KEY))
    assert "openai" in repr(provider)


# -- properties ------------------------------------------------------------------------------

FINISH_REASONS = st.sampled_from(["stop", "length", "tool_calls", "eos"])
SMALL_TEXT = st.text(max_size=12)


@st.composite
def openai_stream_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A generated OpenAI-compatible stream body, with the text it carries."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    ensure_ascii = draw(st.booleans())
    items: list[dict[str, Any] | str] = [chunk("", role="assistant")]
    frames: list[bytes] = []
    text = ""
    for kind in draw(st.lists(st.sampled_from(["text", "reasoning", "tool", "ping"]), max_size=10)):
        if kind == "text":
            piece = draw(SMALL_TEXT)
            text += piece
            items.append(chunk(piece))
        elif kind == "reasoning":
            items.append(chunk(None, reasoning_content=draw(SMALL_TEXT)))
        elif kind == "tool":
            call = {"index": draw(st.integers(0, 2)), "function": {"arguments": draw(SMALL_TEXT)}}
            items.append(chunk(None, tool_calls=[call]))
        else:
            items.append(": keep-alive")
    finish = draw(FINISH_REASONS)
    usage = draw(st.none() | st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))
    if usage is not None and draw(st.booleans()):
        items.append(chunk(finish=finish, usage=usage))
    else:
        items.append(chunk(finish=finish))
        if usage is not None:
            items.append(usage_chunk(*usage))
    if draw(st.booleans()):  # Perplexity-style bodies end after the finish chunk
        items.append(DONE)
    for item in items:
        if isinstance(item, str) and item.startswith(":"):
            frames.append(f"{item}{newline}{newline}".encode())
        else:
            frames.append(sse(item, newline=newline, ensure_ascii=ensure_ascii))
    return b"".join(frames), text


def _split(body: bytes, offsets: list[int]) -> list[bytes]:
    edges = [0, *sorted({o for o in offsets if 0 < o < len(body)}), len(body)]
    return [body[a:b] for a, b in pairwise(edges)]


def _normalized(events: list[StreamEvent]) -> list[Any]:
    return [
        dataclasses.replace(e, ttft_ms=None, latency_ms=0.0) if isinstance(e, ProvaraMeta) else e
        for e in events
    ]


def _replay(parts: list[bytes]) -> tuple[list[StreamEvent], Exception | None]:
    provider = make_provider(Upstream(ScriptedBody(*parts)))
    return asyncio.run(run_stream(provider))


PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(generated=openai_stream_bodies(), data=st.data())
def test_any_rechunking_gives_the_same_events(
    generated: tuple[bytes, str], data: st.DataObject
) -> None:
    body, text = generated
    offsets = data.draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=25))
    whole, whole_error = _replay([body])
    split, split_error = _replay(_split(body, offsets))
    assert whole_error is None and split_error is None
    assert _normalized(split) == _normalized(whole)
    assert "".join(e.text for e in whole if isinstance(e, TextDelta)) == text
    only_meta(whole)


@PROPERTY_SETTINGS
@given(text=st.text(), ensure_ascii=st.booleans(), data=st.data())
def test_unicode_text_round_trips(text: str, ensure_ascii: bool, data: st.DataObject) -> None:
    body = sse(chunk(text), chunk(finish="stop"), DONE, ensure_ascii=ensure_ascii)
    offsets = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=8))
    events, error = _replay(_split(body, offsets))
    assert error is None
    assert content_events(events) == ([TextDelta(text)] if text else [])
    meta = only_meta(events)
    assert meta.output_tokens == ceil4(text)


async def test_text_before_a_malformed_chunk_in_the_same_read_still_arrives() -> None:
    body = sse(chunk(content="Hel"), chunk(content="lo")) + b"data: {not json\n\n" + sse("[DONE]")
    events, error = await run_stream(make_provider(Upstream(body)))
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Hel"), TextDelta("lo")]
    assert isinstance(error, StreamAbortedError)
    assert not [e for e in events if isinstance(e, ProvaraMeta)]


async def test_a_subclass_mapping_its_own_stream_is_used_event_by_event() -> None:
    class Shouting(OpenAICompatibleProvider):
        async def _map_stream(self, events, request):  # type: ignore[no-untyped-def, override]
            async for event in super()._map_stream(events, request):
                yield TextDelta(event.text.upper()) if isinstance(event, TextDelta) else event

    provider = Shouting(
        name="openai",
        base_url=BASE_URL,
        api_key=API_KEY,
        transport=httpx.MockTransport(Upstream(sse(chunk(content="hi"), "[DONE]"))),
        stream_timeout=5.0,
    )
    events, error = await run_stream(provider)
    assert error is None
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("HI")]
