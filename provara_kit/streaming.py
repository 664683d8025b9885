"""The one stream pipeline every adapter uses.

An adapter maps its wire to :data:`UpstreamEvent` values and hands the iterator to
:func:`normalize_stream`, which

* never yields an event without content (empty text, role-only deltas, keep-alives);
* raises :class:`StreamAbortedError` when the upstream stops without a :class:`StreamDone`
  (dropped, truncated, or ended by an error the adapter raised) and yields no meta;
* raises :class:`StreamTimeoutError` when nothing arrives for ``PROVARA_STREAM_TIMEOUT_MS``;
* on a clean end yields exactly one :class:`ProvaraMeta`, last, its missing counts from
  the adapter's token counter (asked after the last content event) or ``chars / 4``;
* closes the upstream whenever it stops, including when the consumer stops early.

:class:`ChatStream` wraps the result so the stream is owned by a context manager and can be
collected into a :class:`ChatResponse`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeAlias

import httpx

from provara_kit.accounting import build_meta
from provara_kit.counters import TokenCounter
from provara_kit.errors import (
    ConfigurationError,
    ProviderError,
    StreamAbortedError,
    StreamTimeoutError,
)
from provara_kit.tokens import count_usage
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

__all__ = [
    "DEFAULT_STREAM_TIMEOUT_MS",
    "ChatStream",
    "Finish",
    "KeepAlive",
    "ResponseStarted",
    "StreamDone",
    "UpstreamEvent",
    "UsageUpdate",
    "normalize_batches",
    "normalize_stream",
    "stream_timeout_from_env",
]

DEFAULT_STREAM_TIMEOUT_MS = 60_000


@dataclass(slots=True, frozen=True)
class ResponseStarted:
    """The upstream named its response id and/or the model it used."""

    id: str | None = None
    model: str | None = None


@dataclass(slots=True, frozen=True)
class UsageUpdate:
    """Token counts the upstream reported so far. ``None`` = not reported.

    Counts replace earlier ones (wires report cumulative totals), they are never added.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(slots=True, frozen=True)
class Finish:
    """The upstream said why generation stopped."""

    reason: str


@dataclass(slots=True, frozen=True)
class KeepAlive:
    """Bytes arrived that carry nothing (ping, comment, partial event): resets the idle timer."""


@dataclass(slots=True, frozen=True)
class StreamDone:
    """The wire's terminal marker: the upstream finished cleanly."""


UpstreamEvent: TypeAlias = (
    TextDelta
    | ReasoningDelta
    | ToolCallDelta
    | ResponseStarted
    | UsageUpdate
    | Finish
    | KeepAlive
    | StreamDone
)

_KEEP_ALIVE = KeepAlive()
_Step: TypeAlias = "UpstreamEvent | list[UpstreamEvent]"


def stream_timeout_from_env(environ: Mapping[str, str] = os.environ) -> float:
    """Idle timeout in seconds from ``PROVARA_STREAM_TIMEOUT_MS`` (default 60000 ms)."""
    raw = environ.get("PROVARA_STREAM_TIMEOUT_MS", "").strip()
    if not raw:
        return DEFAULT_STREAM_TIMEOUT_MS / 1000
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"PROVARA_STREAM_TIMEOUT_MS must be a whole number of milliseconds, got {raw!r}"
        ) from None
    if value <= 0:
        raise ConfigurationError(f"PROVARA_STREAM_TIMEOUT_MS must be positive, got {value}")
    return value / 1000


async def normalize_stream(
    upstream: AsyncIterator[UpstreamEvent],
    *,
    provider: str,
    request: ChatRequest,
    stream_timeout: float | None,
    started: float | None = None,
    pricing: Mapping[str, tuple[object, object]] | None = None,
    token_counter: TokenCounter | None = None,
) -> AsyncGenerator[StreamEvent, None]:
    """Run an adapter's upstream events through the shared rules (see the module doc)."""
    batches = normalize_batches(
        upstream,
        provider=provider,
        request=request,
        stream_timeout=stream_timeout,
        started=started,
        pricing=pricing,
        token_counter=token_counter,
    )
    try:
        async for batch in batches:
            for event in batch:
                yield event
    finally:
        await batches.aclose()


async def normalize_batches(
    upstream: AsyncIterator[UpstreamEvent | list[UpstreamEvent]],
    *,
    provider: str,
    request: ChatRequest,
    stream_timeout: float | None,
    started: float | None = None,
    pricing: Mapping[str, tuple[object, object]] | None = None,
    token_counter: TokenCounter | None = None,
) -> AsyncGenerator[list[StreamEvent], None]:
    """:func:`normalize_stream`, a batch at a time: the events of one upstream step.

    ``upstream`` yields events or lists of events (an adapter that maps a whole network
    read at once); each step's events that pass the rules leave as one list, never
    empty, and the meta ends the last one. The rules are the same, event by event: a
    batch only saves the per-event hand-offs between generators.

    When the upstream left a count out and ``token_counter`` is given, the last content
    leaves first, then the counter is asked (:func:`~provara_kit.tokens.count_usage`) and
    the meta follows alone: counting never holds back content.
    """
    started = time.perf_counter() if started is None else started
    first_token_at: float | None = None
    output_chars = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    upstream_model: str | None = None
    done = False
    out: list[StreamEvent] = []
    produced: list[str] | None = None if token_counter is None else []
    limited = None if stream_timeout is None else _IdleLimited(upstream, stream_timeout)
    try:
        while True:
            try:
                if limited is None:
                    item = await anext(upstream)
                else:
                    item = await limited
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise StreamTimeoutError(
                    f"no data from upstream for {(stream_timeout or 0) * 1000:.0f} ms "
                    "(PROVARA_STREAM_TIMEOUT_MS)",
                    provider=provider,
                ) from None
            except httpx.TimeoutException as exc:
                raise StreamTimeoutError(
                    f"upstream read timed out: {type(exc).__name__}", provider=provider
                ) from None
            except httpx.TransportError as exc:
                raise StreamAbortedError(
                    f"upstream connection broke mid-stream: {type(exc).__name__}",
                    provider=provider,
                ) from None
            except ValueError as exc:  # an event body that is not what the wire promises
                raise StreamAbortedError(
                    f"upstream sent a malformed stream event: {exc}", provider=provider
                ) from None
            except RecursionError:  # an adapter's own recursive parser on a hostile event
                raise StreamAbortedError(
                    "upstream sent a stream event nested too deeply to read", provider=provider
                ) from None

            for event in item if type(item) is list else (item,):
                if isinstance(event, (TextDelta, ReasoningDelta)):
                    if not event.text:
                        continue
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    output_chars += len(event.text)
                    if produced is not None:
                        produced.append(event.text)
                    out.append(event)
                elif isinstance(event, ToolCallDelta):
                    if not (event.arguments or event.id or event.name):
                        continue
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                    output_chars += len(event.arguments) + len(event.name or "")
                    if produced is not None:
                        produced.append((event.name or "") + event.arguments)
                    out.append(event)
                elif isinstance(event, KeepAlive):
                    continue
                elif isinstance(event, UsageUpdate):
                    if event.input_tokens is not None:
                        input_tokens = event.input_tokens
                    if event.output_tokens is not None:
                        output_tokens = event.output_tokens
                elif isinstance(event, Finish):
                    finish_reason = event.reason
                elif isinstance(event, ResponseStarted):
                    response_id = event.id or response_id
                    upstream_model = event.model or upstream_model
                elif isinstance(event, StreamDone):
                    done = True
                    break
            if done:
                break
            if out:
                yield out
                out = []
    finally:
        aclose = getattr(upstream, "aclose", None)
        if aclose is not None:
            await aclose()
    if not done:
        raise StreamAbortedError(
            "upstream stream ended before its terminal marker (connection dropped or body "
            "truncated)",
            provider=provider,
        )
    ended = time.perf_counter()
    usage = None
    if produced is not None and (input_tokens is None or output_tokens is None):
        if out:
            yield out
            out = []
        usage = await count_usage(
            input_tokens,
            output_tokens,
            request=request,
            output_text="".join(produced),
            counter=token_counter,
            provider=provider,
        )
    out.append(
        build_meta(
            provider=provider,
            request=request,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            output_chars=output_chars,
            finish_reason=finish_reason,
            started=started,
            first_token_at=first_token_at,
            upstream_model=upstream_model,
            response_id=response_id,
            pricing=pricing,
            usage=usage,
            ended=ended,
        )
    )
    yield out


class _IdleLimited:
    """``await anext(upstream)`` under an idle limit of ``seconds``, once per ``await``.

    The step is started at once: an event the upstream already has (one network read
    usually carries several) is returned without arming a timer. Only a step that has to
    wait is finished under ``asyncio.timeout(seconds)``, which raises ``TimeoutError``.
    """

    __slots__ = ("_seconds", "_upstream")

    def __init__(self, upstream: AsyncIterator[_Step], seconds: float) -> None:
        self._upstream = upstream
        self._seconds = seconds

    def __await__(self) -> Generator[Any, Any, _Step]:
        step = self._upstream.__anext__().__await__()
        try:
            waiting = step.send(None)
        except StopIteration as done:
            event: _Step = done.value
            return event
        return (yield from self._finish(step, waiting).__await__())

    async def _finish(self, step: Generator[Any, Any, _Step], waiting: Any) -> _Step:
        async with asyncio.timeout(self._seconds):
            return await _Resumed(step, waiting)


class _Resumed:
    """Drives a step that already yielded ``waiting`` to its end, as ``await`` would."""

    __slots__ = ("_step", "_waiting")

    def __init__(self, step: Generator[Any, Any, _Step], waiting: Any) -> None:
        self._step = step
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, _Step]:
        step = self._step
        waiting = self._waiting
        while True:
            try:
                try:
                    value = yield waiting
                except BaseException as exc:
                    waiting = step.throw(exc)
                else:
                    waiting = step.send(value)
            except StopIteration as done:
                event: _Step = done.value
                return event


class ChatStream:
    """A provider's stream of :data:`StreamEvent`, owning the upstream connection.

    Iterate it with ``async for``; use it as ``async with`` (or call :meth:`aclose`) so the
    upstream response is closed even when you stop early. :meth:`collect` drains it into
    a :class:`ChatResponse`. After a clean end :attr:`meta` holds the ``_provara`` meta.
    :meth:`next_batch` hands over every event that is already in at once (a relay that
    forwards what one upstream read carried).

    Build it from an async generator of events, or with :meth:`from_batches` from one of
    lists of events (what :func:`normalize_batches` yields).
    """

    __slots__ = ("_batches", "_buffer", "_events", "_index", "meta")

    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events: AsyncGenerator[StreamEvent, None] | None = events
        self._batches: AsyncGenerator[list[StreamEvent], None] | None = None
        self._buffer: list[StreamEvent] = []
        self._index = 0
        self.meta: ProvaraMeta | None = None

    @classmethod
    def from_batches(cls, batches: AsyncGenerator[list[StreamEvent], None]) -> ChatStream:
        """A stream over non-empty lists of events, as :func:`normalize_batches` yields."""
        stream = cls.__new__(cls)
        stream._events = None
        stream._batches = batches
        stream._buffer = []
        stream._index = 0
        stream.meta = None
        return stream

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        buffer = self._buffer
        index = self._index
        if index < len(buffer):
            self._index = index + 1
            return buffer[index]
        if self._events is not None:
            event = await self._events.__anext__()
            if type(event) is ProvaraMeta:
                self.meta = event
            return event
        batch = await self._next_batch()
        self._buffer = batch
        self._index = 1
        return batch[0]

    async def next_batch(self) -> list[StreamEvent]:
        """Every event already in (at least one), waiting only if none is.

        Raises ``StopAsyncIteration`` at the end, like ``anext``.
        """
        buffer = self._buffer
        index = self._index
        if index < len(buffer):
            self._buffer = []
            self._index = 0
            return buffer[index:] if index else buffer
        if self._events is not None:
            event = await self._events.__anext__()
            if type(event) is ProvaraMeta:
                self.meta = event
            return [event]
        return await self._next_batch()

    async def _next_batch(self) -> list[StreamEvent]:
        assert self._batches is not None
        batch = await self._batches.__anext__()
        last = batch[-1]
        if type(last) is ProvaraMeta:
            self.meta = last
        return batch

    async def aclose(self) -> None:
        """Stop the stream and close the upstream response."""
        self._buffer = []
        self._index = 0
        if self._events is not None:
            await self._events.aclose()
        if self._batches is not None:
            await self._batches.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def collect(self) -> ChatResponse:
        """Drain the stream into one response (raises what the stream raises)."""
        text: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, ToolCall] = {}
        async with self:
            async for event in self:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, ReasoningDelta):
                    reasoning.append(event.text)
                elif isinstance(event, ToolCallDelta):
                    call = calls.setdefault(event.index, ToolCall())
                    call.id = call.id or event.id
                    call.name = call.name or event.name
                    call.arguments += event.arguments
        meta = self.meta
        if meta is None:  # pragma: no cover - normalize_stream raises before this
            raise ProviderError("stream ended without its _provara meta event")
        return ChatResponse(
            id=meta.response_id,
            provider=meta.provider,
            model=meta.model,
            text="".join(text),
            reasoning="".join(reasoning),
            finish_reason=meta.finish_reason,
            usage=meta.usage,
            tool_calls=[calls[i] for i in sorted(calls)],
            meta=meta,
        )
