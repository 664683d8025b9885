"""The Anthropic Messages adapter: request mapping, parsing, streaming, errors, real recordings."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provara_kit.errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderStatusError,
    RateLimitError,
    RequestTooLargeError,
    StreamAbortedError,
    UnsupportedParameterError,
    UpstreamServerError,
    error_from_response,
)
from provara_kit.provider import Provider
from provara_kit.providers.anthropic import (
    ANTHROPIC_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_TOKENS,
    AnthropicProvider,
)
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)

API_KEY = "sk-ant-api03-TESTKEY-abcdefghijklmnopqrstuvwxyz-0123456789"
MODEL = "claude-test-1"

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "wire-corpus"
ANTHROPIC_CORPUS = CORPUS / "anthropic"
EXTRACTED = ANTHROPIC_CORPUS / "extracted"
NO_CORPUS = f"wire corpus not found at {ANTHROPIC_CORPUS} (it lives in the shared checkout)"


# -- helpers ------------------------------------------------------------------------------


class ChunkStream(httpx.AsyncByteStream):
    """A response body sent in the given chunks; records whether it was closed."""

    def __init__(self, chunks: Iterable[bytes], *, error: Exception | None = None) -> None:
        self.chunks = list(chunks)
        self.error = error
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


class EndlessStream(httpx.AsyncByteStream):
    """A stream that never ends on its own: only closing it stops it."""

    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield sse_event({"type": "message_start", "message": {"id": "msg_1", "model": MODEL}})
        while True:
            await asyncio.sleep(0)
            yield sse_event(text_delta("tick"))

    async def aclose(self) -> None:
        self.closed = True


def sse_event(payload: dict[str, Any], *, name: str | None = None) -> bytes:
    event = payload.get("type") if name is None else name
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n".encode()


def sse_body(*payloads: dict[str, Any]) -> bytes:
    return b"".join(sse_event(p) for p in payloads)


def message_start(input_tokens: Any = 7, output_tokens: Any = 1, **usage: Any) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, **usage},
        },
    }


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, **fields}}


def text_delta(text: str, index: int = 0) -> dict[str, Any]:
    return block_delta(index, "text_delta", text=text)


def block_stop(index: int = 0) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str | None = "end_turn", **usage: Any) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage,
    }


PING = {"type": "ping"}
MESSAGE_STOP = {"type": "message_stop"}


def simple_stream(*texts: str, output_tokens: int = 5) -> bytes:
    return sse_body(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        *(text_delta(t) for t in texts),
        block_stop(0),
        message_delta("end_turn", output_tokens=output_tokens),
        MESSAGE_STOP,
    )


def make_request(**overrides: Any) -> ChatRequest:
    data: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    data.update(overrides)
    return ChatRequest.model_validate(data)


Handler = Callable[[httpx.Request], httpx.Response]


def make_provider(handler: Handler, **kwargs: Any) -> AnthropicProvider:
    kwargs.setdefault("stream_timeout", 10.0)
    return AnthropicProvider(api_key=API_KEY, transport=httpx.MockTransport(handler), **kwargs)


def stream_response(body: bytes | ChunkStream | EndlessStream, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        stream = body if not isinstance(body, bytes) else ChunkStream([body])
        return httpx.Response(status, headers={"content-type": "text/event-stream"}, stream=stream)

    return handler


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


class Recorder:
    """A handler that answers with ``reply`` and keeps every request it saw."""

    def __init__(self, reply: Handler) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    @property
    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


async def drain(
    provider: Provider, request: ChatRequest, into: list[StreamEvent] | None = None
) -> list[StreamEvent]:
    """Every event of the stream; ``into`` keeps those that came before an exception."""
    events: list[StreamEvent] = [] if into is None else into
    async with provider.complete_stream(request) as stream:
        async for event in stream:
            events.append(event)
    return events


def only_meta(events: list[StreamEvent]) -> ProvaraMeta:
    metas = [e for e in events if isinstance(e, ProvaraMeta)]
    assert len(metas) == 1
    assert events[-1] is metas[0]
    return metas[0]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


OK_BODY: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


# -- headers and request mapping ----------------------------------------------------------


async def test_headers_use_x_api_key_and_version_never_authorization() -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        await provider.complete(make_request())
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == f"{DEFAULT_BASE_URL}/messages"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers


async def test_custom_base_url_and_name() -> None:
    recorder = Recorder(json_response(OK_BODY))
    provider = AnthropicProvider(
        api_key=API_KEY,
        base_url="http://localhost:9999/v1/",
        transport=httpx.MockTransport(recorder),
        name="claude-proxy",
    )
    async with provider:
        response = await provider.complete(make_request())
    assert str(recorder.requests[0].url) == "http://localhost:9999/v1/messages"
    assert response.provider == "claude-proxy"
    assert provider.wire == "anthropic-messages"
    assert provider.default_models


async def test_minimal_payload_defaults_max_tokens_and_no_stream_flag() -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        await provider.complete(make_request())
    assert recorder.payload == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "hi"}],
    }


async def test_system_and_developer_messages_go_to_top_level_system() -> None:
    recorder = Recorder(json_response(OK_BODY))
    request = make_request(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "salut"},
            {"role": "system", "content": "No emoji."},
            {"role": "user", "content": "encore"},
        ]
    )
    async with make_provider(recorder) as provider:
        await provider.complete(request)
    payload = recorder.payload
    assert payload["system"] == "Be brief.\n\nUse French.\n\nNo emoji."
    assert payload["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "salut"},
        {"role": "user", "content": "encore"},
    ]


async def test_content_parts_become_content_blocks() -> None:
    recorder = Recorder(json_response(OK_BODY))
    request = make_request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ]
    )
    async with make_provider(recorder) as provider:
        await provider.complete(request)
    assert recorder.payload["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


async def test_sampling_fields_stop_and_passthrough() -> None:
    recorder = Recorder(json_response(OK_BODY))
    request = make_request(
        max_tokens=256,
        temperature=0.3,
        stop="\n\nHuman:",
        top_p=0.9,
        top_k=40,
        metadata={"user_id": "u-1"},
        n=1,  # no effect on a Messages answer: not sent
    )
    async with make_provider(recorder) as provider:
        await provider.complete(request)
    payload = recorder.payload
    assert payload["max_tokens"] == 256
    assert payload["temperature"] == 0.3
    assert payload["stop_sequences"] == ["\n\nHuman:"]
    assert payload["top_p"] == 0.9
    assert payload["top_k"] == 40
    assert payload["metadata"] == {"user_id": "u-1"}
    assert "n" not in payload
    assert "stop" not in payload


async def test_user_becomes_metadata_user_id() -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        await provider.complete(make_request(user="tenant-7", temperature=0))
    assert recorder.payload["metadata"] == {"user_id": "tenant-7"}
    assert recorder.payload["temperature"] == 0


@pytest.mark.parametrize(
    "field", [{"seed": 0}, {"response_format": {"type": "json_object"}}, {"logprobs": True}]
)
@pytest.mark.parametrize("stream", [False, True])
async def test_what_the_wire_cannot_express_is_refused_before_sending(
    field: dict[str, Any], stream: bool
) -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        with pytest.raises(UnsupportedParameterError, match=repr(next(iter(field)))):
            if stream:
                await drain(provider, make_request(**field))
            else:
                await provider.complete(make_request(**field))
    assert recorder.requests == []


async def test_stop_list_is_kept_as_list() -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        await provider.complete(make_request(stop=["END", "STOP"]))
    assert recorder.payload["stop_sequences"] == ["END", "STOP"]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_tools_are_mapped_to_input_schema() -> None:
    recorder = Recorder(json_response(OK_BODY))
    no_params = {"type": "function", "function": {"name": "now"}}
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    request = make_request(tools=[WEATHER_TOOL, no_params, server_tool])
    async with make_provider(recorder) as provider:
        await provider.complete(request)
    assert recorder.payload["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        server_tool,
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
        ({"type": "any"}, {"type": "any"}),
    ],
)
async def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        await provider.complete(make_request(tools=[WEATHER_TOOL], tool_choice=choice))
    assert recorder.payload["tool_choice"] == expected


async def test_tool_choice_without_tools_is_not_sent() -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        await provider.complete(make_request(tool_choice="none", parallel_tool_calls=False))
    assert "tool_choice" not in recorder.payload
    assert "tools" not in recorder.payload


async def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    recorder = Recorder(json_response(OK_BODY))
    request = make_request(tools=[WEATHER_TOOL], tool_choice="required", parallel_tool_calls=False)
    async with make_provider(recorder) as provider:
        await provider.complete(request)
    assert recorder.payload["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert "parallel_tool_calls" not in recorder.payload


async def test_unknown_tool_choice_string_is_a_clear_error() -> None:
    async with make_provider(json_response(OK_BODY)) as provider:
        with pytest.raises(ValueError, match="tool_choice"):
            await provider.complete(make_request(tools=[WEATHER_TOOL], tool_choice="sometimes"))


async def test_tool_calls_and_tool_results_round_trip() -> None:
    recorder = Recorder(json_response(OK_BODY))
    request = make_request(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "24C"}],
            },
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER_TOOL],
    )
    async with make_provider(recorder) as provider:
        await provider.complete(request)
    assert recorder.payload["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "24C"}],
                },
            ],
        },
        {"role": "user", "content": "Thanks"},
    ]


async def test_assistant_tool_call_without_content_or_arguments() -> None:
    recorder = Recorder(json_response(OK_BODY))
    request = make_request(
        messages=[
            {"role": "user", "content": "time?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "now"}}],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "noon"},
        ]
    )
    async with make_provider(recorder) as provider:
        await provider.complete(request)
    assert recorder.payload["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "now", "input": {}}],
    }


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}", "not valid JSON"),  # no RecursionError
    ],
)
async def test_invalid_tool_call_arguments_are_a_clear_error(arguments: str, match: str) -> None:
    request = make_request(
        messages=[
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": arguments},
                    }
                ],
            },
        ]
    )
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        with pytest.raises(ValueError, match=match):
            await provider.complete(request)
    assert recorder.requests == []  # nothing was sent


async def test_invalid_request_on_stream_is_a_value_error_not_an_abort() -> None:
    request = make_request(
        messages=[
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{"}}
                ],
            },
        ]
    )
    recorder = Recorder(stream_response(simple_stream("never")))
    async with make_provider(recorder) as provider:
        with pytest.raises(ValueError, match="not valid JSON"):
            await drain(provider, request)
    assert recorder.requests == []


async def test_max_completion_tokens_is_used_when_max_tokens_is_absent() -> None:
    recorder = Recorder(json_response(OK_BODY))
    async with make_provider(recorder) as provider:
        await provider.complete(make_request(max_completion_tokens=99))
    assert recorder.payload["max_tokens"] == 99
    assert "max_completion_tokens" not in recorder.payload


async def test_non_object_body_is_a_malformed_response() -> None:
    async with make_provider(json_response(["not", "a", "message"])) as provider:
        with pytest.raises(MalformedResponseError, match="unexpected body shape"):
            await provider.complete(make_request())


async def test_error_body_with_status_200_is_a_malformed_response() -> None:
    body = leaky_error(200, "api_error")
    async with make_provider(json_response(body)) as provider:
        with pytest.raises(MalformedResponseError, match="api_error") as info:
            await provider.complete(make_request())
    assert API_KEY not in str(info.value)


async def test_tool_message_without_tool_call_id_is_a_clear_error() -> None:
    request = make_request(messages=[{"role": "tool", "content": "orphan"}])
    async with make_provider(json_response(OK_BODY)) as provider:
        with pytest.raises(ValueError, match="tool_call_id"):
            await provider.complete(request)


async def test_stream_request_sets_stream_true() -> None:
    recorder = Recorder(stream_response(simple_stream("ok")))
    async with make_provider(recorder) as provider:
        await drain(provider, make_request())
    assert recorder.payload["stream"] is True
    assert recorder.requests[0].headers["x-api-key"] == API_KEY


# -- non-streamed responses ---------------------------------------------------------------


async def test_complete_parses_text_thinking_tool_use_and_cache_usage() -> None:
    body = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-1-20250101",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Sure, "},
            {"type": "text", "text": "checking the weather."},
            {
                "type": "tool_use",
                "id": "toolu_9",
                "name": "get_weather",
                "input": {"city": "Zürich"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "output_tokens": 42,
        },
    }
    async with make_provider(json_response(body)) as provider:
        response = await provider.complete(make_request())
    assert response.id == "msg_2"
    assert response.text == "Sure, checking the weather."
    assert response.reasoning == "Let me think."
    assert response.finish_reason == "tool_calls"
    assert len(response.tool_calls) == 1
    call = response.tool_calls[0]
    assert (call.id, call.name) == ("toolu_9", "get_weather")
    assert json.loads(call.arguments) == {"city": "Zürich"}
    # Cached prompt tokens are billed input too.
    assert response.usage.input_tokens == 1110
    assert response.usage.output_tokens == 42
    assert not response.usage.estimated
    assert response.meta.extra == {"upstream_model": "claude-test-1-20250101"}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        ("pause_turn", "pause_turn"),
        (None, None),
    ],
)
async def test_stop_reason_mapping(stop_reason: str | None, finish: str | None) -> None:
    body = {**OK_BODY, "stop_reason": stop_reason}
    async with make_provider(json_response(body)) as provider:
        response = await provider.complete(make_request())
    assert response.finish_reason == finish


class _MessagesShaped(AnthropicProvider):
    """An Anthropic-shaped provider with its own default max_tokens and stop reasons."""

    default_max_tokens: ClassVar[int] = 1024
    stop_reasons: ClassVar[Mapping[str, str]] = {
        **AnthropicProvider.stop_reasons,
        "complete": "stop",
        "end_turn": "eos",
    }


async def test_a_subclass_sets_its_default_max_tokens_and_stop_reasons() -> None:
    recorder = Recorder(json_response({**OK_BODY, "stop_reason": "complete"}))
    transport = httpx.MockTransport(recorder)
    async with _MessagesShaped(api_key=API_KEY, transport=transport) as provider:
        response = await provider.complete(make_request())
        assert recorder.payload["max_tokens"] == 1024
        assert response.finish_reason == "stop"
        streamed = simple_stream("Hi")
        recorder.reply = stream_response(streamed)
        meta = only_meta(await drain(provider, make_request()))
    assert meta.finish_reason == "eos"
    assert AnthropicProvider.default_max_tokens == DEFAULT_MAX_TOKENS
    assert AnthropicProvider.stop_reasons["end_turn"] == "stop"


async def test_complete_keeps_a_real_zero() -> None:
    body = {**OK_BODY, "content": [], "usage": {"input_tokens": 0, "output_tokens": 0}}
    async with make_provider(json_response(body)) as provider:
        response = await provider.complete(make_request())
    assert response.text == ""
    assert (response.usage.input_tokens, response.usage.output_tokens) == (0, 0)
    assert response.usage.input_tokens_source == "upstream"
    assert response.usage.output_tokens_source == "upstream"


@pytest.mark.parametrize(
    "usage",
    [None, {}, {"input_tokens": None, "output_tokens": None}],
    ids=["null", "empty", "null-fields"],
)
async def test_complete_null_usage_is_estimated(usage: Any) -> None:
    body = {**OK_BODY, "content": [{"type": "text", "text": "abcde"}], "usage": usage}
    request = make_request(messages=[{"role": "user", "content": "hello world!!"}])  # 13 chars
    async with make_provider(json_response(body)) as provider:
        response = await provider.complete(request)
    assert response.usage.input_tokens == 4  # ceil(13 / 4)
    assert response.usage.output_tokens == 2  # ceil(5 / 4)
    assert response.usage.input_tokens_source == "estimated"
    assert response.usage.output_tokens_source == "estimated"


async def test_complete_prices_the_request() -> None:
    pricing = {f"anthropic/{MODEL}": ("3", "15")}
    body = {**OK_BODY, "usage": {"input_tokens": 1_000_000, "output_tokens": 2_000_000}}
    async with make_provider(json_response(body), pricing=pricing) as provider:
        response = await provider.complete(make_request())
    assert response.meta.priced
    assert response.meta.cost_usd == Decimal("33")


# -- streaming ----------------------------------------------------------------------------


async def test_stream_text_with_pings_and_meta_last() -> None:
    body = sse_body(
        message_start(input_tokens=12, output_tokens=1),
        block_start(0, {"type": "text", "text": ""}),
        PING,
        text_delta("Hello"),
        PING,
        text_delta(", world"),
        block_stop(0),
        message_delta("end_turn", output_tokens=4),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    assert events[:-1] == [TextDelta("Hello"), TextDelta(", world")]
    meta = only_meta(events)
    assert meta.provider == "anthropic"
    assert meta.model == MODEL
    assert meta.response_id == "msg_test"
    assert meta.finish_reason == "stop"
    assert (meta.input_tokens, meta.output_tokens) == (12, 4)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("upstream", "upstream")
    assert meta.ttft_ms is not None


async def test_stream_collects_into_a_response() -> None:
    async with make_provider(stream_response(simple_stream("a", "b", "c"))) as provider:
        response = await provider.complete_stream(make_request()).collect()
    assert isinstance(response, ChatResponse)
    assert response.text == "abc"
    assert response.finish_reason == "stop"
    assert response.usage.output_tokens == 5


async def test_stream_thinking_is_reasoning_and_signature_ignored() -> None:
    body = sse_body(
        message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        block_delta(0, "thinking_delta", thinking="Hmm"),
        block_delta(0, "thinking_delta", thinking=""),
        block_delta(0, "signature_delta", signature="EuY="),
        block_stop(0),
        block_start(1, {"type": "redacted_thinking", "data": "opaque"}),
        block_stop(1),
        block_start(2, {"type": "text", "text": ""}),
        text_delta("Answer", index=2),
        block_stop(2),
        message_delta("end_turn", output_tokens=9),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    assert events[:-1] == [ReasoningDelta("Hmm"), TextDelta("Answer")]
    only_meta(events)


async def test_stream_tool_use_with_input_json_delta() -> None:
    body = sse_body(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta("Let me check."),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        block_delta(1, "input_json_delta", partial_json=""),
        block_delta(1, "input_json_delta", partial_json='{"city": '),
        PING,
        block_delta(1, "input_json_delta", partial_json='"Paris"}'),
        block_stop(1),
        message_delta("tool_use", output_tokens=30),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request(tools=[WEATHER_TOOL]))
    assert events[:-1] == [
        TextDelta("Let me check."),
        ToolCallDelta(index=1, id="toolu_1", name="get_weather"),
        ToolCallDelta(index=1, arguments='{"city": '),
        ToolCallDelta(index=1, arguments='"Paris"}'),
    ]
    assert only_meta(events).finish_reason == "tool_calls"


async def test_stream_tool_use_without_arguments_gets_empty_object() -> None:
    body = sse_body(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}),
        block_delta(0, "input_json_delta", partial_json=""),
        block_stop(0),
        message_delta("tool_use", output_tokens=3),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        response = await provider.complete_stream(make_request()).collect()
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("toolu_1", "now", "{}")]


async def test_stream_usage_is_set_not_added() -> None:
    body = sse_body(
        message_start(input_tokens=7, output_tokens=1),
        block_start(0, {"type": "text", "text": ""}),
        text_delta("partial"),
        message_delta(None, output_tokens=10),
        text_delta(" more"),
        message_delta("max_tokens", output_tokens=25),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    meta = only_meta(events)
    assert (meta.input_tokens, meta.output_tokens) == (7, 25)
    assert meta.finish_reason == "length"


async def test_stream_input_usage_from_message_start_including_cache() -> None:
    body = sse_body(
        message_start(
            input_tokens=5,
            output_tokens=1,
            cache_creation_input_tokens=20,
            cache_read_input_tokens=300,
        ),
        text_delta("x"),
        message_delta("end_turn", output_tokens=2),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        meta = only_meta(await drain(provider, make_request()))
    assert (meta.input_tokens, meta.output_tokens) == (325, 2)


async def test_stream_message_delta_input_tokens_replace_message_start() -> None:
    body = sse_body(
        message_start(input_tokens=5, output_tokens=1),
        text_delta("x"),
        message_delta("end_turn", input_tokens=9, cache_read_input_tokens=1, output_tokens=2),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        meta = only_meta(await drain(provider, make_request()))
    assert (meta.input_tokens, meta.output_tokens) == (10, 2)


async def test_stream_empty_text_is_never_yielded() -> None:
    body = sse_body(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(""),
        text_delta("A"),
        text_delta(""),
        PING,
        text_delta("B"),
        block_stop(0),
        message_delta("end_turn", output_tokens=2),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    assert events[:-1] == [TextDelta("A"), TextDelta("B")]
    assert all(e.text for e in events if isinstance(e, TextDelta | ReasoningDelta))


async def test_stream_text_in_block_start_is_yielded() -> None:
    body = sse_body(
        message_start(),
        block_start(0, {"type": "text", "text": "Pre"}),
        text_delta("fix"),
        message_delta("end_turn", output_tokens=2),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    assert text_of(events) == "Prefix"


async def test_stream_null_usage_is_estimated() -> None:
    body = sse_body(
        message_start(input_tokens=None, output_tokens=None),
        text_delta("abcde"),
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": None},
        MESSAGE_STOP,
    )
    request = make_request(messages=[{"role": "user", "content": "hello world!!"}])  # 13 chars
    async with make_provider(stream_response(body)) as provider:
        meta = only_meta(await drain(provider, request))
    assert (meta.input_tokens, meta.output_tokens) == (4, 2)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("estimated", "estimated")


async def test_stream_real_zero_usage_is_kept() -> None:
    body = sse_body(
        message_start(input_tokens=0, output_tokens=0),
        message_delta("end_turn", output_tokens=0),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        meta = only_meta(await drain(provider, make_request()))
    assert (meta.input_tokens, meta.output_tokens) == (0, 0)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("upstream", "upstream")


async def test_stream_events_identified_by_json_type_or_sse_name() -> None:
    body = (
        # No SSE event names at all: the JSON type decides.
        b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in (message_start(), text_delta("a")))
        # A mismatched SSE name: the JSON type still wins.
        + sse_event(text_delta("b"), name="ping")
        # No JSON type: the SSE name decides.
        + sse_event(
            {"index": 0, "delta": {"type": "text_delta", "text": "c"}}, name="content_block_delta"
        )
        + sse_event({}, name="message_stop")
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    assert text_of(events) == "abc"
    only_meta(events)


async def test_stream_unknown_events_and_deltas_are_ignored() -> None:
    body = sse_body(
        message_start(),
        {"type": "future_event", "payload": 1},
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, "citations_delta", citation={}),
        text_delta("ok"),
        block_start(1, {"type": "brand_new_block"}),
        block_stop(1),
        message_delta("end_turn", output_tokens=1),
        MESSAGE_STOP,
    )
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    assert events[:-1] == [TextDelta("ok")]


async def test_stream_stops_reading_at_message_stop() -> None:
    body = simple_stream("done") + sse_body(text_delta("after the end"))
    async with make_provider(stream_response(body)) as provider:
        events = await drain(provider, make_request())
    assert text_of(events) == "done"
    only_meta(events)


OVERLOADED = {
    "type": "error",
    "error": {"details": None, "type": "overloaded_error", "message": "Overloaded"},
}


async def test_stream_error_event_aborts_without_meta() -> None:
    stream = ChunkStream(
        [
            sse_body(
                message_start(), block_start(0, {"type": "text", "text": ""}), text_delta("Hel")
            ),
            sse_event(OVERLOADED),
        ]
    )
    events: list[StreamEvent] = []
    async with make_provider(stream_response(stream)) as provider:
        with pytest.raises(StreamAbortedError) as info:
            await drain(provider, make_request(), events)
    assert events == [TextDelta("Hel")]
    assert "overloaded_error" in str(info.value)
    assert "Overloaded" in str(info.value)
    assert info.value.retryable
    assert info.value.provider == "anthropic"
    assert stream.closed


async def test_stream_error_event_message_is_scrubbed_of_the_key() -> None:
    leak = {"type": "error", "error": {"type": "api_error", "message": f"bad key {API_KEY}"}}
    body = sse_body(message_start()) + sse_event(leak)
    async with make_provider(stream_response(body)) as provider:
        with pytest.raises(StreamAbortedError) as info:
            await drain(provider, make_request())
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value)


async def test_stream_without_message_stop_aborts_without_meta() -> None:
    body = sse_body(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        text_delta("Hello"),
        block_stop(0),
        message_delta("end_turn", output_tokens=2),
    )
    stream = ChunkStream([body])
    events: list[StreamEvent] = []
    async with make_provider(stream_response(stream)) as provider:
        with pytest.raises(StreamAbortedError):
            await drain(provider, make_request(), events)
    assert events == [TextDelta("Hello")]
    assert stream.closed


@pytest.mark.parametrize(
    "tail",
    [
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"del',
        b"event: message_stop\n",
        b'event: message_stop\ndata: {"type":"message_stop"}',
        b'event: message_stop\ndata: {"type":"message_stop"}\n',
    ],
    ids=["mid-json", "name-only", "no-line-end", "no-blank-line"],
)
async def test_stream_truncated_mid_event_aborts(tail: bytes) -> None:
    body = sse_body(message_start(), text_delta("Hi")) + tail
    async with make_provider(stream_response(body)) as provider:
        events: list[StreamEvent] = []
        with pytest.raises(StreamAbortedError):
            await drain(provider, make_request(), events)
    assert not any(isinstance(e, ProvaraMeta) for e in events)


async def test_stream_connection_drop_aborts() -> None:
    stream = ChunkStream(
        [sse_body(message_start(), text_delta("Hi"))], error=httpx.ReadError("reset")
    )
    async with make_provider(stream_response(stream)) as provider:
        with pytest.raises(StreamAbortedError, match="connection broke"):
            await drain(provider, make_request())
    assert stream.closed


async def test_stream_malformed_json_aborts() -> None:
    body = sse_body(message_start()) + b"event: content_block_delta\ndata: {not json\n\n"
    async with make_provider(stream_response(body)) as provider:
        with pytest.raises(StreamAbortedError, match="malformed"):
            await drain(provider, make_request())


async def test_stream_event_of_wrong_shape_aborts() -> None:
    body = sse_body(message_start(), {"type": "content_block_delta", "index": 0})
    async with make_provider(stream_response(body)) as provider:
        with pytest.raises(StreamAbortedError, match="content_block_delta"):
            await drain(provider, make_request())


async def test_early_consumer_stop_closes_the_response() -> None:
    endless = EndlessStream()
    async with make_provider(stream_response(endless)) as provider:
        chat = provider.complete_stream(make_request())
        async with chat:
            async for event in chat:
                assert event == TextDelta("tick")
                break
    assert endless.closed


async def test_stream_idle_timeout() -> None:
    class Stall(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield sse_event(message_start())
            await asyncio.sleep(10)
            yield b""  # pragma: no cover

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Stall())

    from provara_kit.errors import StreamTimeoutError

    async with make_provider(handler, stream_timeout=0.05) as provider:
        with pytest.raises(StreamTimeoutError):
            await drain(provider, make_request())


# -- error statuses -----------------------------------------------------------------------


def leaky_error(status: int, error_type: str) -> dict[str, Any]:
    """An error body that echoes the key, whole and masked, as some proxies do."""
    masked = f"{API_KEY[:8]}...{API_KEY[-8:]}"
    return {
        "type": "error",
        "error": {"type": error_type, "message": f"{error_type}: key {API_KEY} ({masked})"},
    }


STATUS_CASES = [
    (400, "invalid_request_error", BadRequestError, False),
    (401, "authentication_error", AuthenticationError, False),
    (403, "permission_error", PermissionDeniedError, False),
    (404, "not_found_error", NotFoundError, False),
    (413, "request_too_large", RequestTooLargeError, False),
    (429, "rate_limit_error", RateLimitError, True),
    (500, "api_error", UpstreamServerError, True),
    (529, "overloaded_error", OverloadedError, True),
]


def assert_error(
    error: ProviderStatusError,
    status: int,
    error_type: str,
    cls: type[ProviderStatusError],
    retryable: bool,
) -> None:
    assert type(error) is cls
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.retryable is retryable
    assert error.provider == "anthropic"
    assert error_type in error.message
    for text in (str(error), repr(error), error.message):
        assert API_KEY not in text
        assert API_KEY[-8:] not in text
        assert API_KEY[:8] not in text


@pytest.mark.parametrize(("status", "error_type", "cls", "retryable"), STATUS_CASES)
async def test_error_status_mapping_complete(
    status: int, error_type: str, cls: type[ProviderStatusError], retryable: bool
) -> None:
    headers = {"retry-after": "7"} if status == 429 else None
    async with make_provider(
        json_response(leaky_error(status, error_type), status, headers)
    ) as provider:
        with pytest.raises(ProviderStatusError) as info:
            await provider.complete(make_request())
        assert API_KEY not in repr(provider)
        assert API_KEY not in str(provider)
    assert_error(info.value, status, error_type, cls, retryable)
    assert info.value.retry_after == (7.0 if status == 429 else None)


@pytest.mark.parametrize(("status", "error_type", "cls", "retryable"), STATUS_CASES)
async def test_error_status_mapping_stream(
    status: int, error_type: str, cls: type[ProviderStatusError], retryable: bool
) -> None:
    headers = {"retry-after": "7"} if status == 429 else None
    async with make_provider(
        json_response(leaky_error(status, error_type), status, headers)
    ) as provider:
        with pytest.raises(ProviderStatusError) as info:
            await drain(provider, make_request())
    assert_error(info.value, status, error_type, cls, retryable)
    assert info.value.retry_after == (7.0 if status == 429 else None)


async def test_provider_repr_hides_the_key() -> None:
    provider = AnthropicProvider(api_key=API_KEY)
    assert API_KEY not in repr(provider)
    assert "api_key=<set>" in repr(provider)
    assert "<missing>" in repr(AnthropicProvider(api_key=None))


async def test_missing_key_sends_no_key_header() -> None:
    recorder = Recorder(json_response(OK_BODY))
    provider = AnthropicProvider(api_key=None, transport=httpx.MockTransport(recorder))
    async with provider:
        await provider.complete(make_request())
    assert "x-api-key" not in recorder.requests[0].headers


# -- model discovery ----------------------------------------------------------------------


async def test_discover_models_paginates() -> None:
    pages = {
        None: {
            "data": [{"type": "model", "id": "claude-a"}, {"type": "model", "id": "claude-b"}],
            "has_more": True,
            "first_id": "claude-a",
            "last_id": "claude-b",
        },
        "claude-b": {
            "data": [{"type": "model", "id": "claude-c"}],
            "has_more": True,
            "last_id": "claude-c",
        },
        "claude-c": {
            "data": [{"type": "model", "id": "claude-d"}],
            "has_more": False,
            "last_id": "claude-d",
        },
    }
    recorder = Recorder(
        lambda request: httpx.Response(200, json=pages[request.url.params.get("after_id")])
    )
    async with make_provider(recorder) as provider:
        models = await provider.discover_models()
    assert models == ["claude-a", "claude-b", "claude-c", "claude-d"]
    assert [r.url.path for r in recorder.requests] == ["/v1/models"] * 3
    assert all(r.headers["x-api-key"] == API_KEY for r in recorder.requests)
    assert all(r.method == "GET" for r in recorder.requests)


async def test_discover_models_errors_are_typed() -> None:
    async with make_provider(
        json_response(leaky_error(401, "authentication_error"), 401)
    ) as provider:
        with pytest.raises(AuthenticationError) as info:
            await provider.discover_models()
    assert API_KEY not in str(info.value)


# -- real recordings ----------------------------------------------------------------------


def dechunk(body: bytes) -> bytes:
    """Undo HTTP/1.1 chunked transfer-encoding."""
    out = bytearray()
    pos = 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol].split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            return bytes(out)
        out += body[pos : pos + size]
        pos += size + 2


def parse_http(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a raw HTTP response, as stored in an httprr trace."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = dechunk(body)
    return status, headers, body


def test_dechunk_helper() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    assert parse_http(raw) == (200, {"transfer-encoding": "chunked"}, b"hello world")


def recorded_streams() -> list[Any]:
    if not EXTRACTED.is_dir():
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=NO_CORPUS))]
    params: list[Any] = []
    for path in sorted(EXTRACTED.glob("messages-stream-*.sse")):
        params.append(pytest.param(path.read_bytes(), id=path.name))
    for path in sorted(EXTRACTED.glob("messages-stream-*.http")):
        status, headers, body = parse_http(path.read_bytes())
        assert status == 200
        assert headers["content-type"].startswith("text/event-stream")
        params.append(pytest.param(body, id=path.name))
    # vercel/ai fixtures are de-framed (one JSON payload a line): re-frame them, with no
    # `event:` names, which also proves the JSON `type` alone is enough.
    for path in sorted(ANTHROPIC_CORPUS.glob("messages-stream-*.chunks.txt")):
        lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
        params.append(
            pytest.param(b"".join(f"data: {line}\n\n".encode() for line in lines), id=path.name)
        )
    return params


RECORDED_STREAMS = recorded_streams()

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


@dataclass
class Expected:
    text: str = ""
    reasoning: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    tools: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, args]


def expected_from_wire(body: bytes) -> Expected:
    """What the recording says, read with nothing but ``json`` (not the adapter's code)."""
    expected = Expected()
    text = body.decode("utf-8").replace("\r\n", "\n")
    for block in text.split("\n\n"):
        data = [
            line[len("data:") :].strip() for line in block.split("\n") if line.startswith("data:")
        ]
        if not data:
            continue
        payload = json.loads("\n".join(data))
        kind = payload["type"]
        if kind == "message_start":
            usage = payload["message"]["usage"]
            expected.input_tokens = (
                usage["input_tokens"]
                + usage.get("cache_creation_input_tokens", 0)
                + usage.get("cache_read_input_tokens", 0)
            )
        elif kind == "content_block_start" and payload["content_block"]["type"] == "tool_use":
            block_ = payload["content_block"]
            expected.tools[payload["index"]] = [block_["id"], block_["name"], ""]
        elif kind == "content_block_delta":
            delta = payload["delta"]
            if delta["type"] == "text_delta":
                expected.text += delta["text"]
            elif delta["type"] == "thinking_delta":
                expected.reasoning += delta["thinking"]
            elif delta["type"] == "input_json_delta":
                expected.tools[payload["index"]][2] += delta["partial_json"]
        elif kind == "message_delta":
            expected.output_tokens = payload["usage"]["output_tokens"]
            reason = payload["delta"]["stop_reason"]
            expected.finish_reason = _FINISH.get(reason, reason)
        elif kind == "message_stop":
            break
    return expected


def rechunk(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(body)})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]


async def replay(chunks: list[bytes]) -> list[StreamEvent]:
    async with make_provider(stream_response(ChunkStream(chunks))) as provider:
        return await drain(provider, make_request())


def check_replay(body: bytes, events: list[StreamEvent]) -> None:
    expected = expected_from_wire(body)
    meta = only_meta(events)
    content = events[:-1]
    assert not any(isinstance(e, ProvaraMeta) for e in content)
    assert all(e.text for e in content if isinstance(e, TextDelta | ReasoningDelta))
    assert all(e.arguments or e.id or e.name for e in content if isinstance(e, ToolCallDelta))
    assert text_of(content) == expected.text
    assert "".join(e.text for e in content if isinstance(e, ReasoningDelta)) == expected.reasoning
    calls: dict[int, list[str]] = {}
    for event in content:
        if isinstance(event, ToolCallDelta):
            call = calls.setdefault(event.index, ["", "", ""])
            call[0] = call[0] or event.id or ""
            call[1] = call[1] or event.name or ""
            call[2] += event.arguments
    # A tool call with no streamed arguments is completed as "{}" (OpenAI clients parse it).
    assert calls == {i: [c[0], c[1], c[2] or "{}"] for i, c in expected.tools.items()}
    for _, _, arguments in calls.values():
        assert isinstance(json.loads(arguments), dict)
    assert expected.input_tokens is not None and expected.output_tokens is not None
    assert (meta.input_tokens, meta.output_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("upstream", "upstream")
    assert meta.finish_reason == expected.finish_reason


@pytest.mark.parametrize("body", RECORDED_STREAMS)
async def test_recorded_stream_whole(body: bytes) -> None:
    check_replay(body, await replay([body]))


@pytest.mark.parametrize("body", RECORDED_STREAMS)
async def test_recorded_stream_byte_by_byte(body: bytes) -> None:
    check_replay(body, await replay([body[i : i + 1] for i in range(len(body))]))


@pytest.mark.parametrize("body", RECORDED_STREAMS)
async def test_recorded_stream_random_chunks_fixed_seed(body: bytes) -> None:
    rng = random.Random(20250818)
    for _ in range(20):
        cuts = [rng.randrange(1, len(body)) for _ in range(rng.randrange(1, 40))]
        check_replay(body, await replay(rechunk(body, cuts)))


@pytest.mark.parametrize("body", RECORDED_STREAMS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_recorded_stream_hypothesis_chunks(body: bytes, data: st.DataObject) -> None:
    cuts = data.draw(
        st.lists(st.integers(min_value=1, max_value=max(1, len(body) - 1)), max_size=60)
    )
    check_replay(body, asyncio.run(replay(rechunk(body, cuts))))


@pytest.mark.parametrize("body", RECORDED_STREAMS)
async def test_recorded_stream_cut_short_aborts(body: bytes) -> None:
    """The same recording without its message_stop, or cut mid-event, never yields a meta."""
    stop = body.rindex(b"message_stop")
    cut_points = [body.rindex(b"\n\n", 0, stop) + 2, stop, len(body) // 2]
    for cut in cut_points:
        events: list[StreamEvent] = []
        async with make_provider(stream_response(body[:cut])) as provider:
            with pytest.raises(StreamAbortedError):
                await drain(provider, make_request(), events)
        assert not any(isinstance(e, ProvaraMeta) for e in events)


def recorded_nonstream() -> list[Any]:
    if not EXTRACTED.is_dir():
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=NO_CORPUS))]
    paths = sorted(EXTRACTED.glob("messages-nonstream*.http"))
    return [pytest.param(p.read_bytes(), id=p.name) for p in paths]


@pytest.mark.parametrize("raw", recorded_nonstream())
async def test_recorded_nonstream(raw: bytes) -> None:
    status, headers, body = parse_http(raw)
    recorded = json.loads(body)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, headers={"content-type": headers["content-type"]}, content=body
        )

    async with make_provider(handler) as provider:
        response = await provider.complete(make_request())
    text = "".join(b["text"] for b in recorded["content"] if b["type"] == "text")
    assert response.text == text
    assert response.id == recorded["id"]
    assert response.finish_reason == _FINISH.get(recorded["stop_reason"], recorded["stop_reason"])
    usage = recorded["usage"]
    assert response.usage.input_tokens == (
        usage["input_tokens"]
        + usage["cache_creation_input_tokens"]
        + usage["cache_read_input_tokens"]
    )
    assert response.usage.output_tokens == usage["output_tokens"]
    assert not response.usage.estimated


ERROR_CLASSES: dict[int, type[ProviderStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
}


def recorded_errors() -> list[Any]:
    if not EXTRACTED.is_dir():
        return [pytest.param("", b"", id="no-corpus", marks=pytest.mark.skip(reason=NO_CORPUS))]
    paths = sorted(EXTRACTED.glob("error-*.json"))
    return [pytest.param(p.name, p.read_bytes(), id=p.name) for p in paths]


@pytest.mark.parametrize(("name", "body"), recorded_errors())
async def test_recorded_error_bodies(name: str, body: bytes) -> None:
    match = re.match(r"error-(\d{3})-", name)
    assert match, name
    status = int(match.group(1))
    recorded = json.loads(body)["error"]
    cls = ERROR_CLASSES[status]

    error = error_from_response(status, body, provider="anthropic")
    assert type(error) is cls
    assert error.message == recorded["message"]
    assert error.error_type == recorded["type"]
    assert not error.retryable

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": "application/json"}, content=body)

    async with make_provider(handler) as provider:
        with pytest.raises(cls) as info:
            await provider.complete(make_request())
        with pytest.raises(cls):
            await drain(provider, make_request())
    assert info.value.message == recorded["message"]
    assert info.value.status_code == status


def quoted_overloaded_payloads() -> list[Any]:
    path = ANTHROPIC_CORPUS / "error-overloaded.QUOTED-payloads.txt"
    if not path.is_file():
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=NO_CORPUS))]
    lines = [
        line
        for line in path.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    usable = [line for line in lines if json.loads(line).get("type") == "error"]
    if not usable:
        return [
            pytest.param(None, id="none-usable", marks=pytest.mark.skip(reason="no error payload"))
        ]
    return [pytest.param(line, id=f"payload-{i}") for i, line in enumerate(usable, 1)]


@pytest.mark.parametrize("payload", quoted_overloaded_payloads())
async def test_quoted_overloaded_payload_mid_stream(payload: str) -> None:
    body = (
        sse_body(message_start(), block_start(0, {"type": "text", "text": ""}), text_delta("Hi"))
        + f"event: error\ndata: {payload}\n\n".encode()
    )
    events: list[StreamEvent] = []
    async with make_provider(stream_response(body)) as provider:
        with pytest.raises(StreamAbortedError) as info:
            await drain(provider, make_request(), events)
    assert events == [TextDelta("Hi")]
    assert "overloaded_error" in str(info.value)
    assert "Overloaded" in str(info.value)
    assert info.value.retryable


@pytest.mark.parametrize("payload", quoted_overloaded_payloads())
async def test_quoted_overloaded_payload_as_529(payload: str) -> None:
    headers = {"retry-after": "30"}
    async with make_provider(json_response(json.loads(payload), 529, headers)) as provider:
        with pytest.raises(OverloadedError) as info:
            await provider.complete(make_request())
    assert info.value.status_code == 529
    assert info.value.retryable
    assert info.value.retry_after == 30.0
    assert info.value.message == "Overloaded"
    assert info.value.error_type == "overloaded_error"


async def test_a_body_nested_too_deep_is_a_malformed_response() -> None:
    deep = b'{"content": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=deep, headers={"content-type": "application/json"})

    async with make_provider(handler) as provider:
        with pytest.raises(MalformedResponseError, match="not JSON"):
            await provider.complete(make_request())
