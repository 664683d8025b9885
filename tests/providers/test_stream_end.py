"""The stream plumbing ends a stream where its framing says the body is complete (a JSON
array's ``]``), not when the connection closes: a server that keeps the connection open
after the array must not stall the stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from provara_kit.providers.gemini import GeminiProvider
from provara_kit.streaming import UpstreamEvent
from provara_kit.types import ChatRequest, TextDelta

_ARRAY = (
    b'[{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]}}]}\n',
    b',{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},'
    b'"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,'
    b'"candidatesTokenCount":2,"totalTokenCount":5}}\n',
    b"]",
)


class _HeldOpen(httpx.AsyncByteStream):
    """The array, then a connection that stays open: a read past ``]`` fails the test."""

    def __init__(self) -> None:
        self.read_past_end = False
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in _ARRAY:
            yield chunk
        self.read_past_end = True
        raise AssertionError("the stream was read past the end of the array")

    async def aclose(self) -> None:
        self.closed = True


class _Serving(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.body = _HeldOpen()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=self.body)


class _PerEvent(GeminiProvider):
    """Maps the stream with ``_map_stream`` (the per-event path through ``frames``)."""

    def _map_stream(
        self, events: AsyncIterator[Any], request: ChatRequest
    ) -> AsyncIterator[UpstreamEvent]:
        return super()._map_stream(events, request)


@pytest.mark.parametrize("adapter", [GeminiProvider, _PerEvent])
async def test_a_json_array_stream_ends_at_its_bracket(adapter: type[GeminiProvider]) -> None:
    transport = _Serving()
    provider = adapter(api_key="AIzaSy-test", transport=transport, stream_framing="json-array")
    request = ChatRequest(model="gemini-2.5-flash", messages=[{"role": "user", "content": "Hi"}])
    assert provider._batches_mapped() is (adapter is not _PerEvent)
    async with provider, provider.complete_stream(request) as stream:
        events = [event async for event in stream]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    meta = events[-1]
    assert text == "Hello"
    assert (meta.finish_reason, meta.input_tokens, meta.output_tokens) == ("stop", 3, 2)
    assert not transport.body.read_past_end
    assert transport.body.closed


def test_the_batched_path_is_taken_unless_a_subclass_rewrites_the_per_event_path() -> None:
    class MapperOnly(GeminiProvider):
        def _stream_mapper(self, request: ChatRequest) -> Any:
            return super()._stream_mapper(request)

    class OwnEvents(GeminiProvider):
        async def _upstream_events(self, request: ChatRequest, payload: Any) -> Any:
            yield  # pragma: no cover - only the choice of path is asked

    assert GeminiProvider._batches_mapped() and MapperOnly._batches_mapped()
    assert not _PerEvent._batches_mapped() and not OwnEvents._batches_mapped()
