"""Replay real OpenAI-compatible recordings from the wire corpus through the adapter.

For every stream the expected outcome is computed here, straight from the recorded bytes
(our own small SSE reading and ``json.loads``), and the adapter must agree with it: the
text, reasoning and tool calls, the finish reason, the usage numbers and where they came
from, exactly one ``_provara`` meta last on a clean stream, and ``StreamAbortedError``
with no meta when the upstream reported an error inside the 200 stream.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from provara_kit.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    ProviderStatusError,
    RateLimitError,
    StreamAbortedError,
    error_for_status,
    error_from_response,
)
from provara_kit.pricing import lookup_price
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.tokens import estimate_input_tokens
from provara_kit.types import (
    ChatRequest,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from tests.wire_corpus import (
    CORPUS_DIR,
    HttpRecording,
    corpus_dir,
    corpus_files,
    corpus_params,
    dechunk,
    parse_http,
    read_recording,
    recorded_status,
    reframe_chunks,
)

# Folders whose recordings speak OpenAI Chat Completions; from gemini only the files of
# its OpenAI-compatible endpoint. The vercel Responses-API chunks are out of scope.
OPENAI_FOLDERS = (
    "openai",
    "deepseek",
    "groq",
    "mistral",
    "openrouter",
    "perplexity",
    "together",
    "xai",
    "zai",
    "misc-openai-compatible",
)
PATTERNS = (
    *("*.sse", "*.json", "*.chunks.txt"),
    *("extracted/*.sse", "extracted/*.json", "extracted/*.http"),
)


def _in_scope(path: Path) -> bool:
    name = path.name
    if name.startswith("responses-"):
        return False  # OpenAI Responses API, a different wire
    if path.relative_to(CORPUS_DIR).parts[0] == "gemini":
        return name.startswith(("openai-compat-", "error-"))
    return True


ALL_FILES = [p for p in corpus_files((*OPENAI_FOLDERS, "gemini"), PATTERNS) if _in_scope(p)]


@cache
def _recording(path: Path) -> HttpRecording:
    return read_recording(path)


def _is_stream(path: Path) -> bool:
    if path.name.endswith((".sse", ".chunks.txt")):
        return True
    if path.name.endswith(".http"):
        recording = _recording(path)
        return recording.status == 200 and "text/event-stream" in recording.content_type
    return False


def _status(path: Path) -> int | None:
    return _recording(path).status


STREAM_FILES = [p for p in ALL_FILES if _is_stream(p)]
NONSTREAM_FILES = [
    p
    for p in ALL_FILES
    if not _is_stream(p) and _status(p) == 200 and b'"chat.completion"' in _recording(p).body
]
ERROR_FILES = [p for p in ALL_FILES if not _is_stream(p) and (_status(p) or 0) >= 400]

# Small enough to replay one byte at a time.
BYTEWISE_FILES = [
    p
    for p in STREAM_FILES
    if p.name.startswith(("chat-stream-finish-length", "stream-basic", "stream-crlf-no-done"))
    or p.name.startswith(("stream-x-groq-usage-duplicated-utf8", "chat-stream-utf8-portuguese"))
    or "keepalive-comments-error" in p.name
    or "error-event-tool-use-failed.pydantic-ai.i0" in p.name
]
BYTEWISE_FILES = [p for p in BYTEWISE_FILES if len(_recording(p).body) <= 40_000]

API_KEY = "sk-corpus-test-0123456789abcdefghijklmnop"


# -- our own, independent reading of a recorded stream -------------------------------------


@dataclass
class Expected:
    clean: bool
    upstream_error: bool = False  # an error event or error object inside the 200 stream
    text: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    usage: tuple[int | None, int | None] | None = None  # last usage object, if any
    tool_calls: dict[int, dict[str, str]] = field(default_factory=dict)
    first_id: str | None = None
    first_model: str | None = None

    @property
    def output_chars(self) -> int:
        tools = sum(len(c["name"]) + len(c["arguments"]) for c in self.tool_calls.values())
        return len(self.text) + len(self.reasoning) + tools


def wire_events(body: bytes) -> tuple[list[tuple[str, str]], bool]:
    """``(event type, data)`` pairs, and whether the body ended on an event boundary."""
    text = body.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    blocks = text.split("\n\n")
    complete = blocks[-1].strip("\n") == ""
    events: list[tuple[str, str]] = []
    for block in blocks[:-1]:
        kind, data = "message", []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                kind = value
        if data:
            events.append((kind, "\n".join(data)))
    return events, complete


def _parts_text(parts: list[Any], kind: str) -> str:
    out = []
    for part in parts:
        if part.get("type") != kind:
            continue
        if kind == "text":
            out.append(part.get("text") or "")
        else:  # Mistral thinking: a string or a list of text parts
            thinking = part.get("thinking")
            if isinstance(thinking, str):
                out.append(thinking)
            else:
                out.extend(p.get("text") or "" for p in thinking or ())
    return "".join(out)


def expected_outcome(body: bytes) -> Expected:
    events, complete = wire_events(body)
    chunks: list[dict[str, Any]] = []
    saw_done = False
    exp = Expected(clean=False)
    for kind, data in events:
        if data == "[DONE]":
            saw_done = True
            break
        chunk = json.loads(data)
        if kind == "error" or chunk.get("error"):
            exp.upstream_error = True
            break
        chunks.append(chunk)
    if chunks:
        exp.first_id, exp.first_model = chunks[0].get("id"), chunks[0].get("model")
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str):
                exp.text += content
            elif isinstance(content, list):
                exp.reasoning += _parts_text(content, "thinking")
                exp.text += _parts_text(content, "text")
            if isinstance(delta.get("refusal"), str):
                exp.text += delta["refusal"]  # the adapter surfaces a refusal as text
            for key in ("reasoning_content", "reasoning"):
                if isinstance(delta.get(key), str):
                    exp.reasoning += delta[key]
                    break
            for position, call in enumerate(delta.get("tool_calls") or []):
                slot = exp.tool_calls.setdefault(
                    call.get("index", position), {"id": "", "name": "", "arguments": ""}
                )
                function = call.get("function") or {}
                slot["id"] = slot["id"] or call.get("id") or ""
                slot["name"] = slot["name"] or function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                exp.finish_reason = choice["finish_reason"]
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            exp.usage = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    exp.clean = not exp.upstream_error and complete and (saw_done or exp.finish_reason is not None)
    return exp


# -- replay ----------------------------------------------------------------------------------


class ReplayStream(httpx.AsyncByteStream):
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks = chunks
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


_HOP_HEADERS = {"content-length", "content-encoding", "transfer-encoding"}


def replay_provider(
    recording: HttpRecording, chunks: Sequence[bytes], *, name: str
) -> tuple[OpenAICompatibleProvider, list[ReplayStream]]:
    streams: list[ReplayStream] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stream = ReplayStream(chunks)
        streams.append(stream)
        headers = [(k, v) for k, v in recording.headers if k.lower() not in _HOP_HEADERS]
        return httpx.Response(recording.status, headers=headers, stream=stream)

    provider = OpenAICompatibleProvider(
        name=name,
        base_url="https://replay.invalid/v1",
        api_key=API_KEY,
        transport=httpx.MockTransport(handler),
        stream_timeout=5.0,
    )
    return provider, streams


def split_at(body: bytes, offsets: Iterable[int]) -> list[bytes]:
    cuts = sorted({o for o in offsets if 0 < o < len(body)})
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in pairwise(edges)]


def _request(model: str) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say something, then stop. Olá 😄"},
        ],
    )


def _provider_name(path: Path) -> str:
    return path.relative_to(CORPUS_DIR).parts[0]


async def replay(
    path: Path, chunks: Sequence[bytes] | None = None
) -> tuple[list[StreamEvent], Exception | None, Expected, ChatRequest, list[ReplayStream]]:
    recording = read_recording(path)
    expected = expected_outcome(recording.body)
    request = _request(expected.first_model or "unknown-model")
    provider, streams = replay_provider(
        recording, [recording.body] if chunks is None else chunks, name=_provider_name(path)
    )
    events: list[StreamEvent] = []
    error: Exception | None = None
    try:
        async with provider.complete_stream(request) as stream:
            async for event in stream:
                events.append(event)
    except StreamAbortedError as exc:
        error = exc
    finally:
        await provider.aclose()
    return events, error, expected, request, streams


def check(
    events: list[StreamEvent],
    error: Exception | None,
    expected: Expected,
    request: ChatRequest,
    provider: str,
) -> None:
    metas = [e for e in events if isinstance(e, ProvaraMeta)]
    for event in events:
        if isinstance(event, TextDelta | ReasoningDelta):
            assert event.text, "an empty delta was yielded"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    if not expected.clean:
        assert isinstance(error, StreamAbortedError)
        assert metas == []
        # Everything before the error was still delivered, in order.
        assert (text, reasoning) == (expected.text, expected.reasoning)
        return
    assert error is None
    assert len(metas) == 1 and events[-1] is metas[0]
    meta = metas[0]
    assert text == expected.text
    assert reasoning == expected.reasoning
    calls: dict[int, dict[str, str]] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            slot = calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
            # id and name come once per call even where the wire repeats them (OpenRouter):
            # OpenAI clients concatenate every name fragment they are sent.
            assert not (slot["id"] and event.id), f"tool call {event.index}: id sent twice"
            assert not (slot["name"] and event.name), f"tool call {event.index}: name sent twice"
            slot["id"] += event.id or ""
            slot["name"] += event.name or ""
            slot["arguments"] += event.arguments
    assert calls == expected.tool_calls
    for call in calls.values():
        if call["arguments"]:
            json.loads(call["arguments"])  # the fragments join into the JSON the model wrote
    assert meta.finish_reason == expected.finish_reason
    assert meta.provider == provider
    assert meta.model == request.model
    assert meta.response_id == expected.first_id

    up_in, up_out = expected.usage or (None, None)
    if up_in is None:
        assert meta.input_tokens_source == "estimated"
        assert meta.input_tokens == estimate_input_tokens(request.messages)
    else:
        assert (meta.input_tokens, meta.input_tokens_source) == (up_in, "upstream")
    if up_out is None:
        assert meta.output_tokens_source == "estimated"
        assert meta.output_tokens == -(-expected.output_chars // 4)
    else:
        assert (meta.output_tokens, meta.output_tokens_source) == (up_out, "upstream")

    price = lookup_price(provider, request.model)
    if price is None:
        assert (meta.cost_usd, meta.priced) == (None, False)
    else:
        assert meta.priced
        assert meta.cost_usd == price.cost(meta.input_tokens, meta.output_tokens)
    assert meta.latency_ms >= 0
    if text or reasoning or calls:
        assert meta.ttft_ms is not None and 0 <= meta.ttft_ms <= meta.latency_ms


# -- streams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params(STREAM_FILES))
async def test_stream_replay(path: Path) -> None:
    events, error, expected, request, streams = await replay(path)
    check(events, error, expected, request, _provider_name(path))
    assert streams and all(s.closed for s in streams)


@pytest.mark.parametrize("path", corpus_params(STREAM_FILES))
async def test_stream_replay_rechunked(path: Path) -> None:
    body = read_recording(path).body
    rng = random.Random(f"{path.name}:{len(body)}")
    for _ in range(3):
        offsets = rng.sample(range(1, max(2, len(body))), k=min(len(body) - 1, 40))
        events, error, expected, request, _ = await replay(path, split_at(body, offsets))
        check(events, error, expected, request, _provider_name(path))


@pytest.mark.parametrize("path", corpus_params(BYTEWISE_FILES))
async def test_stream_replay_byte_by_byte(path: Path) -> None:
    body = read_recording(path).body
    whole, whole_error, expected, request, _ = await replay(path)
    events, error, _, _, _ = await replay(path, [body[i : i + 1] for i in range(len(body))])
    check(events, error, expected, request, _provider_name(path))
    strip = [e for e in events if not isinstance(e, ProvaraMeta)]
    assert strip == [e for e in whole if not isinstance(e, ProvaraMeta)]
    assert type(error) is type(whole_error)


def test_corpus_has_both_outcomes() -> None:
    """The replay would be weak if every recording were clean: make sure both kinds exist."""
    corpus_dir()
    outcomes = {p.name: expected_outcome(_recording(p).body) for p in STREAM_FILES}
    aborted = {name for name, exp in outcomes.items() if not exp.clean}
    assert {
        "stream-keepalive-comments-error-in-chunk.pydantic-ai.i0.sse",  # OpenRouter, then [DONE]
        "stream-error-event-tool-use-failed.pydantic-ai.i0.sse",  # Groq event: error
    } <= aborted
    assert all(outcomes[name].upstream_error for name in aborted)
    no_done = [p for p in STREAM_FILES if b"[DONE]" not in _recording(p).body]
    assert any(outcomes[p.name].clean for p in no_done)  # Perplexity: clean without [DONE]


# -- non-streamed bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("path", corpus_params(NONSTREAM_FILES))
async def test_nonstream_replay(path: Path) -> None:
    recording = read_recording(path)
    body = json.loads(recording.body)
    choice = body["choices"][0]
    message = choice["message"]
    request = _request(body.get("model") or "unknown-model")
    provider, _ = replay_provider(recording, [recording.body], name=_provider_name(path))
    try:
        response = await provider.complete(request)
    finally:
        await provider.aclose()
    content = message.get("content")
    assert response.text == (content if isinstance(content, str) else "")
    assert response.finish_reason == choice.get("finish_reason")
    assert response.id == body.get("id")
    expected_calls = [
        (c.get("id"), c["function"]["name"], c["function"].get("arguments") or "")
        for c in message.get("tool_calls") or []
    ]
    if message.get("function_call"):
        legacy = message["function_call"]
        expected_calls.append((None, legacy["name"], legacy.get("arguments") or ""))
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == expected_calls
    usage = body.get("usage") or {}
    if "prompt_tokens" in usage:
        assert response.usage.input_tokens == usage["prompt_tokens"]
        assert response.usage.output_tokens == usage["completion_tokens"]
        assert not response.usage.estimated
    else:
        assert response.usage.estimated
    assert response.meta.provider == _provider_name(path)


# -- error bodies ----------------------------------------------------------------------------


def _expected_message(body: bytes) -> str:
    data = json.loads(body)
    if isinstance(data, list):
        data = data[0]
    error = data["error"]
    return error if isinstance(error, str) else str(error["message"])


@pytest.mark.parametrize("path", corpus_params(ERROR_FILES))
def test_error_body(path: Path) -> None:
    status = _status(path)
    assert status is not None and status >= 400
    recording = read_recording(path)
    headers = dict(recording.headers)
    error = error_from_response(status, recording.body, headers, provider=_provider_name(path))
    assert type(error) is error_for_status(status)
    expected_class: type[ProviderStatusError] = {
        400: BadRequestError,
        401: AuthenticationError,
        404: NotFoundError,
        429: RateLimitError,
    }.get(status, ProviderStatusError)
    assert isinstance(error, expected_class)
    assert error.status_code == status
    assert error.message == _expected_message(recording.body)
    assert error.retryable is (status == 429 or status >= 500)
    assert error.message in str(error)


@pytest.mark.parametrize("path", corpus_params([p for p in ERROR_FILES if "401" in p.name]))
def test_error_body_scrubs_the_key_it_echoes(path: Path) -> None:
    """OpenAI echoes a masked key ("invalid-*****2345"); our key's pieces never survive."""
    recording = read_recording(path)
    key = "invalid-api-key-0000000012345"
    error = error_from_response(401, recording.body, provider="openai", secrets=(key,))
    for text in (str(error), repr(error)):
        assert key not in text
        assert key[:8] not in text


@pytest.mark.parametrize(
    "path",
    corpus_params([p for p in ALL_FILES if p.name.endswith(".http") and _status(p) != 200]),
)
async def test_http_error_response_through_the_adapter(path: Path) -> None:
    """A recorded error response (OpenRouter's 429 after a stream) raises the typed error."""
    recording = read_recording(path)
    provider, _ = replay_provider(recording, [recording.body], name=_provider_name(path))
    with pytest.raises(ProviderStatusError) as info:
        async with provider.complete_stream(_request("m")) as stream:
            async for _ in stream:
                pass
    await provider.aclose()
    assert info.value.status_code == recording.status
    assert info.value.message == _expected_message(recording.body)
    assert info.value.retryable is (recording.status == 429 or recording.status >= 500)


# -- the loader itself -------------------------------------------------------------------------


def test_parse_http_dechunks_chunked_bodies() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"7\r\ndata: {\r\n4;ext=1\r\n}\n\n\n\r\n0\r\nTrailer: x\r\n\r\n"
    )
    recording = parse_http(raw)
    assert (recording.status, recording.reason) == (200, "OK")
    assert recording.header("transfer-encoding") == "chunked"
    assert recording.body == b"data: {}\n\n\n"
    with pytest.raises(ValueError):
        dechunk(b"zz\r\n")


def test_reframe_chunks() -> None:
    assert reframe_chunks('{"a":1}\n\n{"b":2}\n') == (
        b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    )
    assert reframe_chunks('{"a":1}', done=False) == b'data: {"a":1}\n\n'


def test_recorded_status_comes_from_the_recording_not_the_name() -> None:
    """``error-400-...i1.json`` is the 200 retry that followed the 400 (per the README)."""
    corpus = corpus_dir()
    retry = corpus / "openai/extracted/error-400-unsupported-parameter.mirascope.i1.json"
    first = corpus / "openai/extracted/error-400-unsupported-parameter.mirascope.i0.json"
    quota = corpus / "openai/error-429-insufficient-quota.vercel.json"
    assert (recorded_status(retry), recorded_status(first), recorded_status(quota)) == (
        200,
        400,
        429,
    )
    http = corpus / "openrouter/extracted/stream-keepalive-then-429.raw-http.i1.http"
    assert recorded_status(http) == 429
