"""A provider with no HTTP at all: it plays a script through the real stream pipeline.

Use :class:`ScriptedProvider` where a test needs *a* provider (a router, a gateway, a
consumer of streams) rather than a particular wire. Its stream is built from upstream events
and run through :func:`~provara_kit.streaming.normalize_stream`, so filtering, abort and
timeout rules, token fallback (with the ``token_counter`` set on it, if any), pricing and
the meta event behave exactly as for an adapter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import ClassVar

import httpx

from provara_kit.accounting import ParsedCompletion, finish_completion
from provara_kit.errors import (
    ProviderError,
    StreamAbortedError,
    error_for_status,
    parse_retry_after,
)
from provara_kit.provider import Provider
from provara_kit.streaming import (
    ChatStream,
    Finish,
    KeepAlive,
    ResponseStarted,
    StreamDone,
    UpstreamEvent,
    UsageUpdate,
    normalize_stream,
    stream_timeout_from_env,
)
from provara_kit.testing.script import (
    UNSET,
    CannedReply,
    ErrorFault,
    Script,
    ScriptStep,
    StreamFaults,
    Unset,
    echo_reply,
)
from provara_kit.tokens import count_usage
from provara_kit.types import ChatRequest, ChatResponse, TextDelta, ToolCall, ToolCallDelta

__all__ = ["ScriptedProvider"]

_KEEP_ALIVE = KeepAlive()


class ScriptedProvider(Provider):
    """A :class:`~provara_kit.Provider` whose answers come from a script, not a network."""

    wire: ClassVar[str] = "custom"

    def __init__(
        self,
        name: str = "scripted",
        *,
        reply: CannedReply | None = None,
        faults: StreamFaults | None = None,
        error: ProviderError | ErrorFault | None = None,
        models: Sequence[str] | None = ("scripted-model",),
        stream_timeout: float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        """Answer every request with ``reply`` (``None``: echo the last user message),
        streamed with ``faults``, or raise ``error`` instead; :meth:`queue` scripts single
        requests. An :class:`ErrorFault` becomes the typed error for its status.

        Faults shape streams only, as a wire would show them: ``abort_after_bytes`` counts
        UTF-8 bytes of text (a cut at or past the whole text comes before the finish), an
        error event is the :class:`StreamAbortedError` an adapter raises for one, and
        ``split_bytes`` has no meaning without bytes.

        ``models`` is what :meth:`discover_models` returns; ``stream_timeout`` is the idle
        limit in seconds (default: ``PROVARA_STREAM_TIMEOUT_MS``); ``pricing`` replaces
        the global price table.
        """
        self.name = name
        self.script: Script[ProviderError | ErrorFault] = Script(
            ScriptStep(reply=reply, faults=faults or StreamFaults(), error=error)
        )
        self.models = None if models is None else list(models)
        self.default_models = tuple(self.models or ())
        self.stream_timeout = (
            stream_timeout_from_env() if stream_timeout is None else stream_timeout
        )
        self._pricing = pricing
        self.requests: list[ChatRequest] = []
        self.opened_streams = 0
        self.closed_streams = 0

    def __repr__(self) -> str:
        return f"ScriptedProvider(name={self.name!r})"

    @property
    def open_streams(self) -> int:
        """Streams started and not closed yet."""
        return self.opened_streams - self.closed_streams

    def queue(
        self,
        *,
        reply: CannedReply | Unset | None = UNSET,
        faults: StreamFaults | Unset = UNSET,
        error: ProviderError | ErrorFault | Unset | None = UNSET,
    ) -> None:
        """Script the next request; what is not given comes from the defaults."""
        self.script.queue(reply=reply, faults=faults, error=error)

    async def discover_models(self) -> list[str] | None:
        return None if self.models is None else list(self.models)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        reply, _ = self._start(request)
        input_tokens, output_tokens = reply.reported_tokens()
        calls = [
            ToolCall(id=id_, name=name, arguments=args) for id_, name, args in reply.tool_calls
        ]
        parsed = ParsedCompletion(
            text=reply.text,
            finish_reason=reply.finish_reason,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            id=reply.id,
            model=reply.model,
            tool_calls=calls,
        )
        usage = None
        if self.token_counter is not None and None in (input_tokens, output_tokens):
            usage = await count_usage(
                input_tokens,
                output_tokens,
                request=request,
                output_text=parsed.output_text,
                counter=self.token_counter,
                provider=self.name,
            )
        return finish_completion(
            parsed,
            provider=self.name,
            request=request,
            started=started,
            pricing=self._pricing,
            usage=usage,
        )

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        return ChatStream(
            normalize_stream(
                self._events(request),
                provider=self.name,
                request=request,
                stream_timeout=self.stream_timeout,
                pricing=self._pricing,
                token_counter=self.token_counter,
            )
        )

    def _start(self, request: ChatRequest) -> tuple[CannedReply, StreamFaults]:
        """Record ``request``, take its step, raise the step's error, resolve the echo."""
        self.requests.append(request)
        step = self.script.next()
        if step.error is not None:
            raise self._as_error(step.error)
        if step.reply is not None:
            return step.reply, step.faults
        user = [m for m in request.messages if m.role == "user"]
        reply = echo_reply(
            "".join(m.text() for m in request.messages),
            user[-1].text() if user else "",
            model=request.model,
        )
        return reply, step.faults

    def _as_error(self, error: ProviderError | ErrorFault) -> ProviderError:
        if isinstance(error, ProviderError):
            return error
        retry_after = error.retry_after_header()
        return error_for_status(error.status)(
            error.message,
            status_code=error.status,
            provider=self.name,
            error_type=error.error_type,
            retry_after=parse_retry_after(retry_after),
        )

    async def _events(self, request: ChatRequest) -> AsyncGenerator[UpstreamEvent, None]:
        """The script as upstream events, with the faults a wire would show."""
        reply, faults = self._start(request)
        self.opened_streams += 1
        try:
            yield ResponseStarted(id=reply.id, model=reply.model)
            if faults.empty_chunks:
                yield _KEEP_ALIVE
                yield TextDelta("")
            chunks = reply.chunks
            stall = faults.stall_after_chunks
            budget = faults.abort_after_bytes
            for i in range(len(chunks) + 1):
                if stall is not None and min(stall, len(chunks)) == i:
                    await asyncio.sleep(faults.stall_seconds)
                if faults.error_event_after is not None and faults.error_event_after <= i:
                    raise StreamAbortedError(
                        "upstream error inside the stream (overloaded_error): Overloaded",
                        provider=self.name,
                    )
                if i == len(chunks):
                    break
                if faults.empty_chunks and i:
                    yield TextDelta("")
                    yield _KEEP_ALIVE
                data = chunks[i].encode()
                if budget is not None and len(data) >= budget:
                    yield TextDelta(data[:budget].decode(errors="ignore"))
                    budget = 0
                    break
                if budget is not None:
                    budget -= len(data)
                yield TextDelta(chunks[i])
            if budget is not None:
                # Cut after abort_after_bytes of text (before the finish, at the latest).
                if faults.abort_with_error:
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body "
                        "(scripted abort)"
                    )
                return
            for j, (id_, name, args) in enumerate(reply.tool_calls):
                yield ToolCallDelta(index=j, id=id_, name=name)
                yield ToolCallDelta(index=j, arguments=args)
            if faults.omit_terminal:
                return
            yield Finish(reply.finish_reason)
            input_tokens, output_tokens = reply.reported_tokens()
            if input_tokens is not None or output_tokens is not None:
                yield UsageUpdate(input_tokens=input_tokens, output_tokens=output_tokens)
            yield StreamDone()
        finally:
            self.closed_streams += 1
