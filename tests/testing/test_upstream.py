"""The SDK's adapters against ScriptedUpstream: each script gives the outcome DESIGN.md requires."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provara_kit.errors import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    StreamAbortedError,
    StreamTimeoutError,
    UpstreamServerError,
)
from provara_kit.providers.base import HTTPProvider
from provara_kit.testing import (
    DEFAULT_REPLY,
    CannedReply,
    ErrorFault,
    OpenAIChatDialect,
    ScriptedUpstream,
    StreamFaults,
    get_dialect,
)
from provara_kit.types import ChatRequest, ProvaraMeta, TextDelta

from .conftest import API_KEY, REQUEST, drain, make_adapter, metas

Adapter = Callable[..., HTTPProvider]
TOOL_REPLY = CannedReply(
    chunks=("Let me check.",),
    finish_reason="tool_calls",
    tool_calls=(("call_1", "weather", '{"city": "Oslo"}'), ("call_2", "time", "{}")),
)


def texts(events: list[Any]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


# -- the happy path ------------------------------------------------------------------------


async def test_complete(wire: str, adapter_for: Adapter) -> None:
    async with adapter_for(ScriptedUpstream(wire)) as provider:
        response = await provider.complete(REQUEST)
    assert response.text == DEFAULT_REPLY.text
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 5)
    assert not response.usage.estimated
    assert response.id == "resp_scripted"


async def test_requests_keep_only_the_most_recent(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire, keep_requests=2)
    async with adapter_for(upstream) as provider:
        for n in range(3):
            await provider.complete(
                ChatRequest(model=REQUEST.model, messages=[{"role": "user", "content": f"n{n}"}])
            )
    assert len(upstream.requests) == 2
    assert ["n0" in json.dumps(r.body) for r in upstream.requests] == [False, False]
    assert "n2" in json.dumps(upstream.last_request.body)


async def test_stream_yields_text_then_one_meta_last(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire)
    async with adapter_for(upstream) as provider:
        events, error = await drain(provider.complete_stream(REQUEST))
    assert error is None
    assert texts(events) == list(DEFAULT_REPLY.chunks)
    assert len(metas(events)) == 1 and isinstance(events[-1], ProvaraMeta)
    meta = events[-1]
    assert (meta.provider, meta.model, meta.finish_reason) == (provider.name, "test-model", "stop")
    assert (meta.input_tokens, meta.output_tokens) == (12, 5)
    assert meta.input_tokens_source == meta.output_tokens_source == "upstream"
    assert meta.response_id == "resp_scripted" and meta.extra == {
        "upstream_model": "scripted-model"
    }
    assert (upstream.opened_streams, upstream.closed_streams, upstream.open_streams) == (1, 1, 0)


async def test_tool_calls(wire: str, adapter_for: Adapter) -> None:
    async with adapter_for(ScriptedUpstream(wire, reply=TOOL_REPLY)) as provider:
        for response in (
            await provider.complete(REQUEST),
            await provider.complete_stream(REQUEST).collect(),
        ):
            assert response.finish_reason == "tool_calls"
            assert response.text == "Let me check."
            calls = [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls]
            assert calls == [("call_1", "weather", {"city": "Oslo"}), ("call_2", "time", {})]


async def test_echo_mode(wire: str, adapter_for: Adapter) -> None:
    async with adapter_for(ScriptedUpstream(wire, reply=None)) as provider:
        streamed = await provider.complete_stream(REQUEST).collect()
        response = await provider.complete(REQUEST)
    for result in (streamed, response):
        assert result.text == "Say hello to the nice people"
        assert result.meta.extra == {}  # the echo answers as the requested model
        prompt = "Be brief.Say hello to the nice people"
        assert result.usage.input_tokens == math.ceil(len(prompt) / 4)
        assert result.usage.output_tokens == math.ceil(len(result.text) / 4)


# -- faults --------------------------------------------------------------------------------


async def test_empty_chunks_are_never_forwarded(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire, faults=StreamFaults(empty_chunks=True))
    async with adapter_for(upstream) as provider:
        events, error = await drain(provider.complete_stream(REQUEST))
    assert error is None
    assert texts(events) == list(DEFAULT_REPLY.chunks)
    assert all(e.text for e in events if isinstance(e, TextDelta))
    assert len(metas(events)) == 1 and events[-1] is metas(events)[0]


def _chunk_frame(wire: str, index: int) -> tuple[int, int]:
    """(start offset, length) of the frame carrying content chunk ``index``."""
    frames = get_dialect(wire).stream_frames(DEFAULT_REPLY, StreamFaults())
    offset = 0
    for frame in frames:
        if frame.chunk == index:
            return offset, len(frame.data)
        offset += len(frame.data)
    raise AssertionError("chunk not found")


def _cut_inside_chunk(wire: str, index: int) -> int:
    start, length = _chunk_frame(wire, index)
    return start + length // 2


@pytest.mark.parametrize(
    "fault",
    [
        "omit_terminal",
        "error_event_after",
        "abort_with_error",
        "abort_clean_eof",
        "abort_at_frame_boundary",
    ],
)
async def test_unfinished_streams_abort_without_meta(
    wire: str, adapter_for: Adapter, fault: str
) -> None:
    faults = {
        "omit_terminal": StreamFaults(omit_terminal=True),
        "error_event_after": StreamFaults(error_event_after=1),
        "abort_with_error": StreamFaults(abort_after_bytes=_cut_inside_chunk(wire, 1)),
        "abort_clean_eof": StreamFaults(
            abort_after_bytes=_cut_inside_chunk(wire, 1), abort_with_error=False
        ),
        "abort_at_frame_boundary": StreamFaults(
            abort_after_bytes=_chunk_frame(wire, 2)[0], abort_with_error=False, split_bytes=1
        ),
    }[fault]
    upstream = ScriptedUpstream(wire, faults=faults)
    async with adapter_for(upstream) as provider:
        events, error = await drain(provider.complete_stream(REQUEST))
    assert isinstance(error, StreamAbortedError), error
    assert metas(events) == []
    assert texts(events) == list(DEFAULT_REPLY.chunks[: len(texts(events))])
    if fault == "error_event_after":
        assert texts(events) == ["Hello"]
        assert "upstream error inside the stream" in str(error)
    assert upstream.closed_streams == 1


async def test_perplexity_style_end_without_done_is_clean() -> None:
    upstream = ScriptedUpstream(OpenAIChatDialect(done_marker=False))
    async with make_adapter(upstream, "openai-chat") as provider:
        events, error = await drain(provider.complete_stream(REQUEST))
    assert error is None and len(metas(events)) == 1


async def test_stall_beyond_the_stream_timeout(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire, faults=StreamFaults(stall_after_chunks=1, stall_seconds=5))
    started = time.perf_counter()
    async with adapter_for(upstream, stream_timeout=0.05) as provider:
        events, error = await drain(provider.complete_stream(REQUEST))
    assert time.perf_counter() - started < 1
    assert isinstance(error, StreamTimeoutError)
    assert texts(events) == ["Hello"] and metas(events) == []
    assert upstream.closed_streams == 1


async def test_short_stall_within_the_timeout(wire: str, adapter_for: Adapter) -> None:
    faults = StreamFaults(stall_after_chunks=9, stall_seconds=0.01)  # before the finish
    async with adapter_for(ScriptedUpstream(wire, faults=faults), stream_timeout=1) as provider:
        events, error = await drain(provider.complete_stream(REQUEST))
    assert error is None and len(metas(events)) == 1


@pytest.mark.parametrize("size", [1, 2, 7, 64])
async def test_split_bytes_does_not_change_the_result(
    wire: str, adapter_for: Adapter, size: int
) -> None:
    reply = CannedReply(chunks=("Grüße", " aus ", "🌍", "!"))
    upstream = ScriptedUpstream(wire, reply=reply, faults=StreamFaults(split_bytes=size))
    async with adapter_for(upstream) as provider:
        response = await provider.complete_stream(REQUEST).collect()
    assert response.text == "Grüße aus 🌍!" and response.usage.output_tokens == 5


async def test_rate_limit_with_retry_after(wire: str, adapter_for: Adapter) -> None:
    fault = ErrorFault(429, "Rate limit reached, slow down", retry_after=7)
    upstream = ScriptedUpstream(wire, error=fault)
    async with adapter_for(upstream) as provider:
        with pytest.raises(RateLimitError) as completed:
            await provider.complete(REQUEST)
        events, streamed = await drain(provider.complete_stream(REQUEST))
    assert isinstance(streamed, RateLimitError) and events == []
    for error in (completed.value, streamed):
        assert error.status_code == 429 and error.retry_after == 7.0 and error.retryable
        assert error.message == "Rate limit reached, slow down"
    assert upstream.opened_streams == 0


@pytest.mark.parametrize(
    ("usage", "input_source", "output_source", "counts"),
    [
        ("null", "estimated", "estimated", None),
        ("absent", "estimated", "estimated", None),
        ("partial", "upstream", "estimated", (12, None)),
        ("zero", "upstream", "upstream", (0, 0)),
    ],
)
async def test_usage_modes(
    wire: str,
    adapter_for: Adapter,
    usage: Any,
    input_source: str,
    output_source: str,
    counts: tuple[int, int | None] | None,
) -> None:
    reply = CannedReply(chunks=("abcdefghij",), usage=usage)  # 10 chars -> 3 tokens
    estimated = (math.ceil(len("Be brief.Say hello to the nice people") / 4), 3)
    async with adapter_for(ScriptedUpstream(wire, reply=reply)) as provider:
        provider.token_counter = None  # the fallback under test is chars/4
        for response in (
            await provider.complete(REQUEST),
            await provider.complete_stream(REQUEST).collect(),
        ):
            found = response.usage
            assert (found.input_tokens_source, found.output_tokens_source) == (
                input_source,
                output_source,
            )
            expected_in = estimated[0] if counts is None else counts[0]
            expected_out = estimated[1] if counts is None or counts[1] is None else counts[1]
            assert (found.input_tokens, found.output_tokens) == (expected_in, expected_out)


async def test_openai_usage_only_when_asked() -> None:
    upstream = ScriptedUpstream("openai-chat")
    async with make_adapter(upstream, "openai-chat", include_usage=False) as provider:
        response = await provider.complete_stream(REQUEST).collect()
    assert "stream_options" not in upstream.last_request.body
    assert response.usage.estimated


# -- requests, auth, queue, lifecycle ------------------------------------------------------


async def test_requests_are_recorded_with_auth_masked(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire, expected_api_key=API_KEY)
    async with adapter_for(upstream) as provider:
        await provider.complete_stream(REQUEST).collect()
    recorded = upstream.last_request
    assert recorded.method == "POST" and recorded.path.endswith(get_dialect(wire).completion_path)
    assert recorded.body["model"] == "test-model" and recorded.body["stream"] is True
    assert recorded.authorized is True
    assert API_KEY not in repr(upstream.requests)
    masked = recorded.headers.get("authorization") or recorded.headers["x-api-key"]
    assert masked in ("Bearer [REDACTED]", "[REDACTED]")


async def test_wrong_key_gets_the_wire_401(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire, expected_api_key="sk-the-real-key-0000000000")
    async with adapter_for(upstream) as provider:
        with pytest.raises(AuthenticationError) as caught:
            await provider.complete(REQUEST)
        _, streamed = await drain(provider.complete_stream(REQUEST))
    assert isinstance(streamed, AuthenticationError)
    for text in (str(caught.value), repr(caught.value), repr(upstream)):
        assert API_KEY not in text and "sk-the-real-key" not in text
    assert caught.value.message == get_dialect(wire).invalid_api_key_message
    assert [r.authorized for r in upstream.requests] == [False, False]
    assert upstream.script.pending == 0 and upstream.opened_streams == 0


async def test_queue_is_used_in_order_then_defaults(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire)
    upstream.queue(error=ErrorFault(503, "try later"))
    upstream.queue(reply=CannedReply(chunks=("second",)), faults=StreamFaults(split_bytes=3))
    upstream.queue(reply=None)
    async with adapter_for(upstream) as provider:
        with pytest.raises(UpstreamServerError, match="try later"):
            await provider.complete(REQUEST)
        assert (await provider.complete_stream(REQUEST).collect()).text == "second"
        assert (await provider.complete(REQUEST)).text == "Say hello to the nice people"
        assert (await provider.complete(REQUEST)).text == DEFAULT_REPLY.text
    assert upstream.script.pending == 0


async def test_early_stop_closes_the_response(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire, faults=StreamFaults(stall_after_chunks=2, stall_seconds=5))
    async with adapter_for(upstream) as provider, provider.complete_stream(REQUEST) as stream:
        async for event in stream:
            assert isinstance(event, TextDelta)
            assert upstream.open_streams == 1
            break
    assert (upstream.opened_streams, upstream.closed_streams, upstream.open_streams) == (1, 1, 0)


async def test_models_and_unknown_paths(wire: str, adapter_for: Adapter) -> None:
    upstream = ScriptedUpstream(wire, models=["model-a", "model-b"])
    async with adapter_for(upstream) as provider:
        assert await provider.discover_models() == ["model-a", "model-b"]
    async with adapter_for(ScriptedUpstream(wire)) as provider:
        with pytest.raises(NotFoundError):
            await provider.discover_models()
    async with httpx.AsyncClient(transport=upstream, base_url="https://upstream.test") as client:
        missing = await client.post("/v1/embeddings", json={})
        wrong_method = await client.get("/v1" + get_dialect(wire).completion_path)
        not_json = await client.post("/v1" + get_dialect(wire).completion_path, content=b"{")
    assert missing.status_code == 404 and "Invalid URL (POST /v1/embeddings)" in missing.text
    assert wrong_method.status_code == 405 and not_json.status_code == 400
    for response in (missing, wrong_method, not_json):
        assert response.headers["content-type"] == "application/json"
        assert json.loads(response.content)["error"]["message"]


# -- the ASGI app --------------------------------------------------------------------------


def asgi_client(upstream: ScriptedUpstream) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=upstream), base_url="https://upstream.test/v1"
    )


async def test_asgi_serves_the_same_script(wire: str) -> None:
    upstream = ScriptedUpstream(wire, faults=StreamFaults(split_bytes=5), models=["m"])
    dialect = get_dialect(wire)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with asgi_client(upstream) as client:
        streamed = await client.post(dialect.completion_path, json=body, headers={"x-api-key": "k"})
        completed = await client.post(dialect.completion_path, json={**body, "stream": False})
        models = await client.get(dialect.models_path)
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.content == b"".join(dialect.render_stream(DEFAULT_REPLY, request=body))
    assert completed.status_code == 200
    assert completed.content == dialect.render_completion(DEFAULT_REPLY)
    assert models.status_code == 200 and models.content == dialect.render_models(["m"])
    assert upstream.requests[0].headers["x-api-key"] == "[REDACTED]"
    assert (upstream.opened_streams, upstream.closed_streams) == (1, 1)


async def test_asgi_errors_and_cuts(wire: str) -> None:
    upstream = ScriptedUpstream(wire)
    upstream.queue(error=ErrorFault(429, "slow down", retry_after=2))
    upstream.queue(faults=StreamFaults(abort_after_bytes=40))
    path = get_dialect(wire).completion_path
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with asgi_client(upstream) as client:
        limited = await client.post(path, json=body)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(path, json=body)  # ASGITransport re-raises the dropped connection
        missing = await client.get("/nowhere")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert json.loads(limited.content)["error"]["message"] == "slow down"
    assert missing.status_code == 404
    assert upstream.closed_streams == 1


async def test_adapter_over_asgi(wire: str) -> None:
    upstream = ScriptedUpstream(wire)
    async with make_adapter(httpx.ASGITransport(app=upstream), wire) as provider:
        response = await provider.complete_stream(REQUEST).collect()
    assert response.text == DEFAULT_REPLY.text


async def test_asgi_stops_when_the_client_disconnects() -> None:
    upstream = ScriptedUpstream(faults=StreamFaults(stall_after_chunks=1, stall_seconds=30))
    request = json.dumps({"model": "m", "messages": [], "stream": True}).encode()
    incoming = [{"type": "http.request", "body": request, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    await asyncio.wait_for(upstream(scope, receive, send), timeout=2)
    assert sent[0]["status"] == 200
    assert all(m.get("more_body") for m in sent[1:])  # never finished: the client left
    assert upstream.closed_streams == 1


async def test_asgi_lifespan() -> None:
    messages = [{"type": "lifespan.shutdown"}, {"type": "lifespan.startup"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return messages.pop()

    async def send(message: Any) -> None:
        sent.append(message["type"])

    await ScriptedUpstream()({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_repr_hides_the_key() -> None:
    upstream = ScriptedUpstream("anthropic-messages", expected_api_key=API_KEY)
    assert API_KEY not in repr(upstream) and "anthropic-messages" in repr(upstream)


async def test_handle_is_the_shared_core() -> None:
    upstream = ScriptedUpstream(reply=CannedReply(chunks=("a", "b")))
    response = await upstream.handle(
        "POST",
        "/chat/completions?x=1",
        [("Authorization", "Bearer sk-x")],
        json.dumps({"model": "m", "messages": [], "stream": True}).encode(),
    )
    pieces = [piece async for piece in response.body]
    await response.body.aclose()
    assert response.status == 200 and b"[DONE]" in pieces[-1]
    assert upstream.last_request.query == "x=1"
    assert upstream.last_request.headers["authorization"] == "Bearer [REDACTED]"
    assert upstream.last_request.authorized is None


async def test_request_model_validates(wire: str, adapter_for: Adapter) -> None:
    request = ChatRequest(
        model="m", messages=[{"role": "user", "content": [{"type": "text", "text": "part"}]}]
    )
    async with adapter_for(ScriptedUpstream(wire, reply=None)) as provider:
        assert (await provider.complete(request)).text == "part"
