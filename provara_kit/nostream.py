"""Streaming off: a provider whose stream is not trusted serves ``complete_stream`` from one
plain completion.

An operator turns streaming off for a provider (``register(..., streaming=False)`` or
``<NAME>_STREAMING=0``) until its stream is debugged; the registry then builds it through
:func:`without_streaming`. Its ``complete_stream`` makes one ``complete`` call and yields
the answer as a stream that keeps the whole stream contract: the content events (reasoning,
text, each tool call with its id, name and arguments; never an empty one), then exactly one
``_provara`` meta, last, carrying the completion's usage, token sources, cost, priced flag,
finish reason, response id and model, with the time to first token set to when the
completion arrived. An upstream error is raised as the completion's typed error before any
event, never as a stream abort: nothing was sent. The idle stream timeout does not apply
(no stream is read); the completion's own HTTP timeouts do.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncGenerator, Mapping
from contextvars import ContextVar
from typing import TypeVar

from provara_kit.errors import ConfigurationError
from provara_kit.provider import Provider
from provara_kit.streaming import ChatStream
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)

__all__ = [
    "completion_events",
    "stream_from_completion",
    "streaming_env_var",
    "streaming_setting",
    "without_streaming",
]

P = TypeVar("P", bound=Provider)

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"0", "false", "no", "off"})

# The provider whose ``complete`` is running for a stream served from it: an adapter whose
# ``complete`` collects its own stream then gets its real stream, not this one again.
_COMPLETING: ContextVar[Provider | None] = ContextVar("provara_completing", default=None)


def streaming_env_var(name: str) -> str:
    """The variable that turns streaming on or off for provider ``name``:
    ``<NAME>_STREAMING``, upper-cased, ``-`` as ``_``."""
    return name.upper().replace("-", "_") + "_STREAMING"


def streaming_setting(
    name: str, default: bool = True, environ: Mapping[str, str] = os.environ
) -> bool:
    """Whether provider ``name`` streams: ``<NAME>_STREAMING`` when set (``0``/``1``,
    ``false``/``true``, ``no``/``yes``, ``off``/``on``, any case), else ``default``.

    Any other value raises :class:`~provara_kit.errors.ConfigurationError` naming the
    variable; an empty one counts as not set.
    """
    variable = streaming_env_var(name)
    raw = environ.get(variable)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigurationError(
        f"{variable} must be 0 or 1 (also false/true, no/yes, off/on, any case), got {raw[:40]!r}"
    )


def completion_events(response: ChatResponse) -> list[StreamEvent]:
    """The content events of a whole answer, in stream order: reasoning, text, then each
    tool call in one delta (id, name and arguments). Nothing empty is yielded."""
    events: list[StreamEvent] = []
    if response.reasoning:
        events.append(ReasoningDelta(response.reasoning))
    if response.text:
        events.append(TextDelta(response.text))
    for index, call in enumerate(response.tool_calls):
        if call.id or call.name or call.arguments:
            events.append(
                ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
            )
    return events


def stream_from_completion(provider: Provider, request: ChatRequest) -> ChatStream:
    """``provider.complete(request)`` served as a :class:`ChatStream` (see the module doc).

    Nothing is sent until the stream is first iterated; the first ``next_batch`` returns
    the whole answer and its meta at once.
    """
    return ChatStream.from_batches(_batches(provider, request))


async def _batches(
    provider: Provider, request: ChatRequest
) -> AsyncGenerator[list[StreamEvent], None]:
    started = time.perf_counter()
    token = _COMPLETING.set(provider)
    try:
        response = await provider.complete(request)
    finally:
        _COMPLETING.reset(token)
    arrived = time.perf_counter()
    batch = completion_events(response)
    meta = dataclasses.replace(
        response.meta,
        ttft_ms=round((arrived - started) * 1000, 3) if batch else None,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    batch.append(meta)
    yield batch


def without_streaming(provider: P) -> P:
    """Turn streaming off for ``provider`` (in place; returned for chaining).

    Its ``streaming`` becomes ``False`` and its ``complete_stream`` is served by
    :func:`stream_from_completion`. A provider whose ``streaming`` is already ``False``
    serves its own non-streamed stream and is returned as it is.
    """
    if not provider.streaming:
        return provider
    streamed = provider.complete_stream

    def complete_stream(request: ChatRequest) -> ChatStream:
        if _COMPLETING.get() is provider:
            return streamed(request)
        return stream_from_completion(provider, request)

    provider.streaming = False
    # An instance attribute shadows the class's method: every caller, the gateway and the
    # conformance suite included, gets the completion-backed stream.
    vars(provider)["complete_stream"] = complete_stream
    return provider
