"""Known-bad adapters with streaming off: hand-rolled "fake streams" made from a completion.

Each adapter declares ``streaming = False`` (its upstream stream is not trusted) and builds
its ``complete_stream`` from ``complete`` itself instead of leaving it to the kit, making
one mistake such code really makes. Every case runs with streaming off; the unbroken
parent, built the same way, gets the kit's stream from a completion and passes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator

from provara_kit.accounting import build_meta
from provara_kit.errors import ProviderError, StreamAbortedError
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.streaming import ChatStream
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from tests.conformance.case import Case


def _content(response: ChatResponse) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    if response.reasoning:
        events.append(ReasoningDelta(response.reasoning))
    if response.text:
        events.append(TextDelta(response.text))
    for index, call in enumerate(response.tool_calls):
        events.append(ToolCallDelta(index, call.id, call.name, call.arguments))
    return events


class _FakeStream(OpenAICompatibleProvider):
    """Streaming off by hand: ``complete_stream`` yields ``_events`` of one completion."""

    streaming = False

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        return ChatStream(self._stream(request))

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        response = await self.complete(request)
        for event in self._events(response, request):
            yield event

    def _events(self, response: ChatResponse, request: ChatRequest) -> list[StreamEvent]:
        return [*_content(response), response.meta]


class MetaBeforeContent(_FakeStream):
    """Yields the completion's meta first "since it is already known", then the content:
    the meta is no longer last, and a relay ends the stream before any text."""

    def _events(self, response: ChatResponse, request: ChatRequest) -> list[StreamEvent]:
        return [response.meta, *_content(response)]


class MetaTwice(_FakeStream):
    """Yields the meta once for the answer and once more "to close the stream", so the
    gateway records and bills the request twice."""

    def _events(self, response: ChatResponse, request: ChatRequest) -> list[StreamEvent]:
        return [*_content(response), response.meta, response.meta]


class TextOnly(_FakeStream):
    """Turns the completion into text events only, dropping its tool calls: a client
    asking for tools through a stream never receives the calls the model made."""

    def _events(self, response: ChatResponse, request: ChatRequest) -> list[StreamEvent]:
        return [*(e for e in _content(response) if not isinstance(e, ToolCallDelta)), response.meta]


class RecountsUsage(_FakeStream):
    """Builds a fresh meta from the text alone instead of carrying the completion's, so
    the upstream's token counts are lost and replaced by estimates."""

    def _events(self, response: ChatResponse, request: ChatRequest) -> list[StreamEvent]:
        meta = build_meta(
            provider=self.name,
            request=request,
            input_tokens=None,
            output_tokens=None,
            output_chars=len(response.text),
            finish_reason=response.finish_reason,
            started=time.perf_counter(),
            first_token_at=time.perf_counter(),
            pricing=self._pricing,
        )
        return [*_content(response), meta]


class NoTimeToFirstToken(_FakeStream):
    """Passes the completion's meta on unchanged, whose time to first token is unset: a
    stream with content then reports it never produced a first token."""

    def _events(self, response: ChatResponse, request: ChatRequest) -> list[StreamEvent]:
        return [*_content(response), dataclasses.replace(response.meta, ttft_ms=None)]


class EmptyFirstText(_FakeStream):
    """Yields an empty text event first "so the client sees the stream start", the
    first-chunk mistake the pipeline exists to prevent."""

    def _events(self, response: ChatResponse, request: ChatRequest) -> list[StreamEvent]:
        return [TextDelta(""), *_content(response), response.meta]


class ErrorsAsAborts(_FakeStream):
    """Wraps every failure of the completion in a stream abort: an upstream 429 reaches
    the gateway as a broken stream, not as a retryable rate limit with its Retry-After."""

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        try:
            response = await self.complete(request)
        except ProviderError as exc:
            raise StreamAbortedError(f"stream failed: {exc}", provider=self.name) from None
        for event in self._events(response, request):
            yield event


class EndsCleanOnFailure(_FakeStream):
    """Swallows a failed completion and ends the stream with an estimated meta "to close
    the client's stream gracefully": a request that got no answer looks finished."""

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        try:
            response = await self.complete(request)
        except ProviderError:
            yield _estimated_meta(self, request)
            return
        for event in self._events(response, request):
            yield event


def _estimated_meta(provider: OpenAICompatibleProvider, request: ChatRequest) -> ProvaraMeta:
    return build_meta(
        provider=provider.name,
        request=request,
        input_tokens=None,
        output_tokens=None,
        output_chars=0,
        finish_reason=None,
        started=time.perf_counter(),
        first_token_at=None,
        pricing=provider._pricing,
    )


class StillStreams(OpenAICompatibleProvider):
    """Declares ``streaming = False`` but keeps the inherited streaming ``complete_stream``:
    the stream the operator turned off is still requested and read."""

    streaming = False


CASES: tuple[Case, ...] = (
    Case(
        "meta-event",
        MetaBeforeContent,
        r"stream \(text\): the meta is not the last event",
        streaming=False,
    ),
    Case("early-close", MetaBeforeContent, r"the first event was the meta", streaming=False),
    Case(
        "meta-event",
        MetaTwice,
        r"stream \(text\): 2 meta events, expected exactly 1",
        streaming=False,
    ),
    Case("status-200", MetaTwice, r"stream: 2 meta events", streaming=False),
    Case(
        "stream-reuse",
        TextOnly,
        r"sequential stream \d: tool calls \[\] != \[\('call_",
        streaming=False,
    ),
    Case(
        "outcome-fidelity",
        TextOnly,
        r"one tool call \(stream\): 0 tool calls != 1",
        streaming=False,
    ),
    Case(
        "status-200",
        RecountsUsage,
        r"stream: usage \(\d+, \d+\) != upstream's \(21, 4\)",
        streaming=False,
    ),
    Case("token-fallback", RecountsUsage, r"a real zero \(stream\): input", streaming=False),
    Case(
        "meta-event",
        NoTimeToFirstToken,
        r"stream \(text\): ttft_ms None not within latency_ms",
        streaming=False,
    ),
    Case(
        "empty-chunk-filter",
        EmptyFirstText,
        r"event 0 is empty content TextDelta\(text=''\)",
        streaming=False,
    ),
    Case(
        "status-4xx",
        ErrorsAsAborts,
        r"HTTP 429 \(stream\): raised StreamAbortedError, expected RateLimitError",
        streaming=False,
    ),
    Case(
        "status-5xx",
        ErrorsAsAborts,
        r"HTTP 529 \(stream\): raised StreamAbortedError, expected OverloadedError",
        streaming=False,
    ),
    Case(
        "stream-aborted",
        ErrorsAsAborts,
        r"dropped after the first byte of the completion \(streaming off\): ended with "
        r"StreamAbortedError",
        streaming=False,
    ),
    Case(
        "stream-aborted",
        EndsCleanOnFailure,
        r"dropped after the first byte of the completion \(streaming off\): ended with a "
        r"clean end.*1 events were yielded",
        streaming=False,
    ),
    Case(
        "request-shape",
        StillStreams,
        r"stream: the body asks for a stream \(stream: true\)",
        streaming=False,
    ),
)
