"""The wire dialects render what the real APIs send (checked against the wire corpus)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provara_kit.errors import extract_upstream_message
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.bedrock import BedrockProvider
from provara_kit.providers.gemini import GeminiProvider
from provara_kit.providers.ollama import OllamaProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.sse import ServerSentEvent, SSEDecoder
from provara_kit.testing import (
    DIALECTS,
    AnthropicMessagesDialect,
    CannedReply,
    OpenAIChatDialect,
    StreamFaults,
    get_dialect,
)

from .conftest import corpus_body

OPENAI = OpenAIChatDialect()
ANTHROPIC = AnthropicMessagesDialect()
REPLY = CannedReply(chunks=("Hello", ", ", "world"))
TOOL_REPLY = CannedReply(
    chunks=(), finish_reason="tool_calls", tool_calls=(("call_1", "weather", '{"city":"Oslo"}'),)
)
ASKS_USAGE = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}


def decode(body: bytes) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events = decoder.feed(body)
    decoder.end()
    return events, decoder


def decode_frames(frames: list[bytes]) -> list[ServerSentEvent]:
    events, decoder = decode(b"".join(frames))
    assert not decoder.truncated
    return events


def openai_kind(event: ServerSentEvent) -> str:
    if event.data == "[DONE]":
        return "done"
    chunk = json.loads(event.data)
    if "error" in chunk:
        return "error"
    if chunk["choices"] == []:
        return "usage"
    choice = chunk["choices"][0]
    if choice["finish_reason"]:
        return "finish"
    delta = choice["delta"]
    if "role" in delta:
        return "role"
    if "tool_calls" in delta:
        return "tool"
    return "content" if delta.get("content") else "empty"


def collapse(kinds: list[str]) -> list[str]:
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def anthropic_types(events: list[ServerSentEvent]) -> list[str]:
    return collapse([e.event for e in events if e.event != "ping"])


# -- OpenAI Chat Completions ---------------------------------------------------------------


def test_openai_stream_has_the_recorded_shape() -> None:
    real = decode(corpus_body("openai/extracted/chat-stream-include-usage.raw-http.i0.http"))[0]
    ours = decode_frames(OPENAI.render_stream(REPLY, request=ASKS_USAGE))
    expected = ["role", "content", "finish", "usage", "done"]
    assert collapse([openai_kind(e) for e in real]) == expected
    assert collapse([openai_kind(e) for e in ours]) == expected

    real_chunks = [json.loads(e.data) for e in real[:-1]]
    our_chunks = [json.loads(e.data) for e in ours[:-1]]
    for our, recorded in zip(our_chunks, real_chunks, strict=False):
        assert set(our) <= set(recorded)
    assert our_chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert set(our_chunks[0]["choices"][0]) == set(real_chunks[0]["choices"][0])
    assert all(c["usage"] is None for c in our_chunks[:-1])  # like the recording
    finish = our_chunks[-2]["choices"][0]
    assert finish["delta"] == {} and finish["finish_reason"] == "stop"
    assert set(our_chunks[-1]["usage"]) <= set(real_chunks[-1]["usage"])
    assert [c["choices"][0]["delta"]["content"] for c in our_chunks[1:4]] == list(REPLY.chunks)


def test_openai_tool_stream_has_the_recorded_shape() -> None:
    real = decode(
        corpus_body("openai/extracted/chat-stream-tool-call-args-fragmented.fantasy.i0.sse")
    )[0]
    real_calls = [
        json.loads(e.data)["choices"][0]["delta"]["tool_calls"][0]
        for e in real
        if e.data != "[DONE]" and openai_kind(e) in ("tool", "role") and "tool_calls" in e.data
    ]
    ours = decode_frames(OPENAI.render_stream(TOOL_REPLY, request=ASKS_USAGE))
    our_calls = [
        json.loads(e.data)["choices"][0]["delta"]["tool_calls"][0]
        for e in ours
        if openai_kind(e) == "tool"
    ]
    assert set(our_calls[0]) == set(real_calls[0])
    assert set(our_calls[0]["function"]) == set(real_calls[0]["function"])
    assert set(our_calls[1]) == set(real_calls[1])
    assert set(our_calls[1]["function"]) == set(real_calls[1]["function"])
    assert "".join(c["function"]["arguments"] for c in our_calls) == '{"city":"Oslo"}'


def test_openai_completion_has_the_recorded_shape() -> None:
    real = json.loads(corpus_body("openai/extracted/chat-nonstream.raw-http.i0.http"))
    ours = json.loads(OPENAI.render_completion(REPLY))
    assert set(ours) == set(real)
    assert set(ours["choices"][0]) == set(real["choices"][0])
    assert set(ours["choices"][0]["message"]) == set(real["choices"][0]["message"])
    assert set(ours["usage"]) <= set(real["usage"])
    assert ours["choices"][0]["message"]["content"] == "Hello, world"

    tools = json.loads(OPENAI.render_completion(TOOL_REPLY))["choices"][0]
    real_tools = json.loads(
        corpus_body("openai/extracted/chat-nonstream-tool-calls.raw-http.i0.http")
    )
    real_call = real_tools["choices"][0]["message"]["tool_calls"][0]
    assert tools["message"]["content"] is None
    assert tools["finish_reason"] == "tool_calls"
    assert set(tools["message"]["tool_calls"][0]) == set(real_call)


def test_openai_error_bodies_have_the_recorded_shape() -> None:
    real = json.loads(corpus_body("openai/extracted/error-401-invalid-api-key.mirascope.i0.json"))
    ours = json.loads(OPENAI.render_error(401, "Incorrect API key provided"))
    assert set(ours) == set(real) and set(ours["error"]) == set(real["error"])
    assert ours["error"]["code"] == "invalid_api_key"
    assert extract_upstream_message(OPENAI.render_error(429, "slow down")) == (
        "slow down",
        "requests",
    )
    event = decode(OPENAI.render_stream_error("boom", "server_error"))[0][0]
    assert event.event == "message" and json.loads(event.data)["error"]["message"] == "boom"


@pytest.mark.parametrize(
    ("usage", "asks", "field", "usage_chunk"),
    [
        ("present", True, True, {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}),
        ("present", False, False, None),
        ("partial", True, True, {"prompt_tokens": 12}),
        ("zero", True, True, {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}),
        ("null", True, True, None),
        ("null", False, True, None),
        ("absent", True, False, None),
    ],
)
def test_openai_usage_modes(
    usage: Any, asks: bool, field: bool, usage_chunk: dict[str, int] | None
) -> None:
    request = ASKS_USAGE if asks else {"model": "m", "stream": True}
    reply = CannedReply(chunks=("a",), usage=usage)
    chunks = [
        json.loads(e.data) for e in decode_frames(OPENAI.render_stream(reply, request=request))[:-1]
    ]
    with_choices = [c for c in chunks if c["choices"]]
    assert all(("usage" in c) is field for c in with_choices)
    assert all(c.get("usage") is None for c in with_choices)
    usage_chunks = [c["usage"] for c in chunks if not c["choices"]]
    assert usage_chunks == ([] if usage_chunk is None else [usage_chunk])


def test_openai_completion_usage_modes() -> None:
    def usage_of(mode: Any) -> Any:
        body = json.loads(OPENAI.render_completion(CannedReply(chunks=("a",), usage=mode)))
        return body.get("usage", "missing")

    assert usage_of("null") is None
    assert usage_of("absent") == "missing"
    assert usage_of("partial") == {"prompt_tokens": 12}
    assert usage_of("zero")["completion_tokens"] == 0


def test_openai_done_marker_can_be_left_out() -> None:
    kinds = [
        openai_kind(e)
        for e in decode_frames(OpenAIChatDialect(done_marker=False).render_stream(REPLY))
    ]
    assert kinds[-2:] == ["finish", "usage"]


# -- Anthropic Messages --------------------------------------------------------------------

ANTHROPIC_TEXT = [
    "anthropic/extracted/messages-stream-text.llm-anthropic.i0.sse",
    "anthropic/extracted/messages-stream-ping-padding.raw-http.i0.http",
]


@pytest.mark.parametrize("recording", ANTHROPIC_TEXT)
def test_anthropic_stream_has_the_recorded_shape(recording: str) -> None:
    real = decode(corpus_body(recording))[0]
    ours = decode_frames(ANTHROPIC.render_stream(REPLY))
    assert (
        anthropic_types(ours)
        == anthropic_types(real)
        == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    )
    assert "ping" in [e.event for e in ours]
    for event in ours:
        assert json.loads(event.data)["type"] == event.event
    real_by_type = {e.event: json.loads(e.data) for e in real}
    ours_by_type = {e.event: json.loads(e.data) for e in ours}
    for kind, data in ours_by_type.items():
        assert set(data) == set(real_by_type[kind]), kind
    start, real_start = (
        ours_by_type["message_start"]["message"],
        real_by_type["message_start"]["message"],
    )
    assert set(start) <= set(real_start)
    assert set(start["usage"]) <= set(real_start["usage"])
    assert start["usage"]["output_tokens"] == 1 and start["usage"]["input_tokens"] == 12
    delta = ours_by_type["message_delta"]
    assert set(delta["delta"]) <= set(real_by_type["message_delta"]["delta"])
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == 5
    texts = [json.loads(e.data)["delta"]["text"] for e in ours if e.event == "content_block_delta"]
    assert texts == list(REPLY.chunks)


def test_anthropic_tool_stream_has_the_recorded_shape() -> None:
    real = decode(
        corpus_body(
            "anthropic/extracted/messages-stream-tool-use-input-json-delta.llm-anthropic.i0.sse"
        )
    )[0]
    ours = decode_frames(ANTHROPIC.render_stream(TOOL_REPLY))
    assert anthropic_types(ours) == anthropic_types(real)
    real_block = next(json.loads(e.data) for e in real if e.event == "content_block_start")
    our_block = next(json.loads(e.data) for e in ours if e.event == "content_block_start")
    assert set(our_block["content_block"]) <= set(real_block["content_block"])
    assert our_block["content_block"]["input"] == {}
    parts = [json.loads(e.data)["delta"] for e in ours if e.event == "content_block_delta"]
    assert {p["type"] for p in parts} == {"input_json_delta"}
    assert "".join(p["partial_json"] for p in parts) == '{"city":"Oslo"}'
    stop = next(json.loads(e.data) for e in ours if e.event == "message_delta")
    assert stop["delta"]["stop_reason"] == "tool_use"


def test_anthropic_completion_has_the_recorded_shape() -> None:
    real = json.loads(corpus_body("anthropic/extracted/messages-nonstream.raw-http.i0.http"))
    ours = json.loads(ANTHROPIC.render_completion(REPLY))
    assert set(ours) == set(real)
    assert set(ours["usage"]) <= set(real["usage"])
    assert ours["content"] == [{"type": "text", "text": "Hello, world"}]
    tools = json.loads(ANTHROPIC.render_completion(TOOL_REPLY))
    assert tools["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}}
    ]


def test_anthropic_errors_have_the_recorded_shape() -> None:
    real = json.loads(
        corpus_body("anthropic/extracted/error-401-authentication-error.mirascope.i0.json")
    )
    ours = json.loads(ANTHROPIC.render_error(401, "invalid x-api-key"))
    assert set(ours) == set(real) and ours["error"] == real["error"]
    assert (
        json.loads(ANTHROPIC.render_error(529, "Overloaded"))["error"]["type"] == "overloaded_error"
    )
    quoted = corpus_body("anthropic/error-overloaded.QUOTED-payloads.txt")
    payload = json.loads(
        next(line for line in quoted.decode().splitlines() if line.startswith("{"))
    )
    event = decode(ANTHROPIC.render_stream_error("Overloaded"))[0][0]
    assert event.event == "error"
    assert json.loads(event.data) == payload


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_anthropic_stop_reasons(finish: str, stop: str) -> None:
    reply = CannedReply(chunks=("a",), finish_reason=finish)
    assert json.loads(ANTHROPIC.render_completion(reply))["stop_reason"] == stop


def test_anthropic_usage_modes() -> None:
    def usages(mode: Any) -> list[Any]:
        events = decode_frames(ANTHROPIC.render_stream(CannedReply(chunks=("a",), usage=mode)))
        data = [json.loads(e.data) for e in events if e.event in ("message_start", "message_delta")]
        return [(d.get("message", d)).get("usage", "missing") for d in data]

    assert usages("null") == [None, None]
    assert usages("absent") == ["missing", "missing"]
    assert all("output_tokens" not in u for u in usages("partial"))
    assert [u["output_tokens"] for u in usages("zero")] == [0, 0]


# -- faults, both dialects -----------------------------------------------------------------


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=lambda d: d.name)
def test_empty_chunks_add_only_contentless_frames(dialect: Any) -> None:
    clean = decode_frames(dialect.render_stream(REPLY))
    frames = dialect.render_stream(REPLY, StreamFaults(empty_chunks=True))
    events, decoder = decode(b"".join(frames))
    assert not decoder.truncated and decoder.comments >= len(REPLY.chunks)
    assert len(events) > len(clean)
    assert texts_of(events) == texts_of(clean) == list(REPLY.chunks)


def texts_of(events: list[ServerSentEvent]) -> list[str]:
    out = []
    for event in events:
        if event.data == "[DONE]":
            continue
        data = json.loads(event.data)
        text = (
            data["choices"][0]["delta"].get("content")
            if data.get("choices")
            else (data.get("delta") or {}).get("text")
        )
        if text:
            out.append(text)
    return out


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=lambda d: d.name)
def test_omit_terminal_drops_the_terminal_marker(dialect: Any) -> None:
    events = decode_frames(dialect.render_stream(REPLY, StreamFaults(omit_terminal=True)))
    assert texts_of(events) == list(REPLY.chunks)
    if dialect is OPENAI:
        assert [openai_kind(e) for e in events][-1] == "content"  # no finish, usage or [DONE]
    else:
        assert [e.event for e in events][-1] == "message_delta"


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=lambda d: d.name)
@pytest.mark.parametrize("after", [0, 2, 9])
def test_error_event_after_n_chunks_ends_the_body(dialect: Any, after: int) -> None:
    events = decode_frames(dialect.render_stream(REPLY, StreamFaults(error_event_after=after)))
    if events[-1].data == "[DONE]":  # OpenRouter's form: the error, then [DONE]
        events = events[:-1]
    assert texts_of(events[:-1]) == list(REPLY.chunks[:after])
    message, _ = extract_upstream_message(events[-1].data)
    assert message and (events[-1].event == "error" or "error" in json.loads(events[-1].data))


@pytest.mark.parametrize("dialect", [OPENAI, ANTHROPIC], ids=lambda d: d.name)
def test_streams_decode_at_every_split(dialect: Any) -> None:
    body = b"".join(
        dialect.render_stream(CannedReply(chunks=("héllo", " 🌍")), StreamFaults(empty_chunks=True))
    )
    whole = decode(body)[0]
    for cut in range(1, len(body)):
        decoder = SSEDecoder()
        events = decoder.feed(body[:cut]) + decoder.feed(body[cut:])
        decoder.end()
        assert events == whole and not decoder.truncated


def test_frames_tag_their_content_chunk() -> None:
    for dialect in (OPENAI, ANTHROPIC):
        frames = dialect.stream_frames(REPLY, StreamFaults(empty_chunks=True))
        assert [f.chunk for f in frames if f.chunk is not None] == [0, 1, 2]


# -- registry and requests -----------------------------------------------------------------


def test_registry_matches_the_adapters_wires() -> None:
    assert set(DIALECTS) == {
        OpenAICompatibleProvider.wire,
        AnthropicProvider.wire,
        BedrockProvider.wire,
        OllamaProvider.wire,
        GeminiProvider.wire,
    }
    assert get_dialect("anthropic-messages") is DIALECTS["anthropic-messages"]
    assert get_dialect(OPENAI) is OPENAI
    with pytest.raises(ValueError, match=r"unknown wire dialect 'gemini'.*openai-chat"):
        get_dialect("gemini")
    assert (
        OPENAI.completion_path == "/chat/completions" and ANTHROPIC.completion_path == "/messages"
    )
    assert OPENAI.models_path == ANTHROPIC.models_path == "/models"


def test_request_readers() -> None:
    body = {
        "system": [{"type": "text", "text": "Sys. "}],
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "last"}, {"type": "image"}]},
        ],
        "stream": True,
    }
    assert ANTHROPIC.prompt_text(body) == "Sys. firstoklast"
    assert OPENAI.last_user_text(body) == "last"
    assert OPENAI.last_user_text({"messages": "nonsense"}) == ""
    assert OPENAI.is_stream_request(body) and not OPENAI.is_stream_request({"stream": "yes"})


def test_models_bodies() -> None:
    assert [m["id"] for m in json.loads(OPENAI.render_models(["a", "b"]))["data"]] == ["a", "b"]
    anthropic = json.loads(ANTHROPIC.render_models(["a", "b"]))
    assert anthropic["has_more"] is False and anthropic["last_id"] == "b"
