"""Known-bad adapters for ``stream-reuse`` and ``stream-pacing``: state kept on the adapter
instance across streams, and streams that are not passed on as they arrive."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from provara_kit.errors import StreamTimeoutError
from provara_kit.providers.anthropic import AnthropicProvider, _EventMapper
from provara_kit.providers.base import StreamMapper
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider, _ChunkMapper
from provara_kit.sse import ServerSentEvent
from provara_kit.streaming import ChatStream, UpstreamEvent
from provara_kit.types import ChatRequest, StreamEvent
from tests.conformance.bad_adapters import _restream
from tests.conformance.case import Case


class MapperCreatedOnce(OpenAICompatibleProvider):
    """Builds its stream mapper once and keeps it on the instance "to save an allocation":
    the second stream starts with the first one's finished state."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        mapper: StreamMapper | None = getattr(self, "_mapper", None)
        if mapper is None:
            mapper = self._mapper = _ChunkMapper(self)
        return mapper


class ToolIdsOnInstance(OpenAICompatibleProvider):
    """Remembers which tool-call indexes already had their id and name yielded in a set on
    the provider, never reset: every later stream's tool calls lose their id and name."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        mapper = _ChunkMapper(self)
        seen_ids: set[int] = self.__dict__.setdefault("_seen_ids", set())
        seen_names: set[int] = self.__dict__.setdefault("_seen_names", set())
        mapper._state.tool_ids = seen_ids
        mapper._state.tool_names = seen_names
        return mapper


class _ClearsOnStop(_EventMapper):
    __slots__ = ()

    def feed(self, sse: ServerSentEvent) -> list[UpstreamEvent]:
        events = super().feed(sse)
        if self.done:
            self._no_args_yet.clear()
        return events


class ToolStateClearedOnStop(AnthropicProvider):
    """Keeps the set of tool blocks still waiting for arguments on the provider and
    clears it at ``message_stop``: a stream that never gets there leaves a stale entry,
    and the next stream grows a phantom ``{}`` tool call."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        mapper = _ClearsOnStop(self)
        mapper._no_args_yet = self.__dict__.setdefault("_pending_tools", set())
        return mapper


class _CurrentMapper:
    """Feeds whichever mapper the provider calls current."""

    def __init__(self, provider: MapperPerStreamOnInstance) -> None:
        self._provider = provider

    @property
    def done(self) -> bool:
        return self._provider.current.done

    @done.setter
    def done(self, value: bool) -> None:
        self._provider.current.done = value

    def feed(self, sse: ServerSentEvent) -> list[UpstreamEvent]:
        return self._provider.current.feed(sse)

    def end(self) -> list[UpstreamEvent]:
        return self._provider.current.end()


class MapperPerStreamOnInstance(OpenAICompatibleProvider):
    """Resets ``self.current = Mapper()`` when a stream starts: right one stream at a
    time, but concurrent streams feed each other's mapper and end early."""

    current: _ChunkMapper

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        self.current = _ChunkMapper(self)
        return _CurrentMapper(self)


class BuffersWholeStream(OpenAICompatibleProvider):
    """Collects the whole stream before yielding anything "so the totals are known
    first": the client sees nothing until the model has finished."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)

        async def events() -> AsyncGenerator[StreamEvent, None]:
            buffered = [event async for event in inner]
            for event in buffered:
                yield event

        return _restream(inner, events())


class WholeStreamDeadline(OpenAICompatibleProvider):
    """Applies ``PROVARA_STREAM_TIMEOUT_MS`` as a deadline for the whole response: a long
    answer that streams steadily is cut off as if it had stalled."""

    async def _upstream_batches(
        self, request: ChatRequest, payload: dict[str, Any]
    ) -> AsyncGenerator[list[UpstreamEvent], None]:
        deadline = time.monotonic() + (self.stream_timeout or 0)
        inner = super()._upstream_batches(request, payload)
        try:
            async for batch in inner:
                if time.monotonic() > deadline:
                    raise StreamTimeoutError("the response took too long", provider=self.name)
                yield batch
        finally:
            await inner.aclose()


CASES: tuple[Case, ...] = (
    Case("stream-reuse", MapperCreatedOnce, r"sequential stream 1: raised StreamAbortedError"),
    Case("stream-reuse", ToolIdsOnInstance, r"sequential stream 1: tool calls \[\(None, None, "),
    Case(
        "stream-reuse",
        ToolStateClearedOnStop,
        r"stream after one abandoned by the consumer \(text\): tool calls "
        r"\[\(None, None, '\{\}'\)\] != \[\]",
    ),
    Case(
        "stream-reuse",
        MapperPerStreamOnInstance,
        r"concurrent stream \d of 8: raised StreamAbortedError",
    ),
    Case("stream-pacing", BuffersWholeStream, r"events were held back until the end"),
    Case(
        "stream-pacing",
        WholeStreamDeadline,
        r"raised StreamTimeoutError: the limit must apply to each silence",
    ),
)
