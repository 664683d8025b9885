"""The streamed answer of ``POST /v1/chat/completions``: attempts until the first byte, then
the chunks.

Each attempt's first event is awaited in the response's own task, before anything is
sent. A failure there is retried or falls back (:class:`~reference_gateway.attempts.
Attempts`); when nothing is left, the client gets the last failure's own HTTP status. The
200 stream starts with the first event and names the model that sent it
(``x-provara-served-model``, every chunk's ``model``); from then on nothing is retried,
and a failure is an in-stream error event.

**First-token limit and keep-alives.** Keep-alive comments are bytes: once one is sent the
status and the served model are final. So an attempt that still has a retry or a
fallback left sends none: it waits up to ``PROVARA_FIRST_TOKEN_TIMEOUT_MS`` for its first
event, silently, and is abandoned (``first_token_timeout``) after that. The last attempt
(nothing left) has no first-token limit: it starts the 200 stream after
``PROVARA_KEEPALIVE_MS`` and sends ``: keep-alive`` comments until its first event. With
the limit at 0 (the default) every attempt is the latter kind: a first token slower than
the keep-alive interval commits the stream to that attempt's model.

Chunks are written when the stream has to wait for the upstream, not one by one: the
events one upstream read carries (often the whole answer) leave in one ``send``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from provara_kit.errors import ProviderError, StreamTimeoutError
from provara_kit.streaming import ChatStream
from provara_kit.types import ProvaraMeta, ReasoningDelta, StreamEvent, TextDelta
from reference_gateway.api.errors import (
    INTERNAL_ERROR,
    GatewayError,
    from_provider_error,
    internal_error,
)
from reference_gateway.attempts import Attempts, RequestLog
from reference_gateway.providers import Route
from reference_gateway.retry import FirstTokenTimeoutError, classify
from reference_gateway.sse import KEEP_ALIVE, ChunkEncoder, encode_error
from reference_gateway.usage import UsageNotRecordedError

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["SSEResponse", "unrecorded"]

logger = logging.getLogger("reference_gateway")

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def unrecorded(exc: UsageNotRecordedError) -> GatewayError:
    logger.error("a completion was not delivered: %s", exc)
    return GatewayError(
        503,
        "The gateway could not record this completion's usage, so it was not delivered. "
        "Retry shortly.",
        type="server_error",
        code="usage_not_recorded",
    )


class SSEResponse(Response):
    """Streams one completion; stops the upstream if the client disconnects.

    If an attempt's first event takes longer than the keep-alive interval (and it is the
    last attempt), a timer starts the 200 stream and sends ``: keep-alive`` comments until
    it arrives (a fast upstream never arms more than that one timer).
    """

    def __init__(
        self,
        *,
        gateway: Gateway,
        attempts: Attempts,
        route: Route,
        judged: bool,
        include_usage: bool,
    ) -> None:
        settings = gateway.settings
        self.status_code = 200
        self.gateway = gateway
        self.attempts = attempts
        self.log: RequestLog = attempts.log
        self.route = route
        # The answer's text, kept only when the judge drew this completion.
        self._answer: list[str] | None = [] if judged else None
        self.include_usage = include_usage
        self.keepalive = settings.keepalive_ms / 1000
        self.first_token_timeout = settings.first_token_timeout_ms / 1000
        self.background = None
        self.raw_headers = []
        self.stream: ChatStream | None = None
        self.encoder: ChunkEncoder | None = None
        self._held: Route | None = None
        self._pending: list[bytes] = []
        self._started = False
        self._keepalives: asyncio.Task[None] | None = None
        self._watcher: asyncio.Future[None] | None = None
        # The attempt under way: its start, first event, characters sent, open or recorded.
        self._wall = 0.0
        self._t0 = 0.0
        self._first_at: float | None = None
        self._chars = 0
        self._open = False
        self._status = 200
        self._error: str | None = None
        self._receive: Receive
        self._task: asyncio.Task[Any]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Produce in this task; a watcher cancels it if the client goes away while it waits.
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - ASGI servers always run apps in a task
            raise RuntimeError("the SSE response must run inside an asyncio task")
        self._receive = receive
        self._task = task
        try:
            await self._produce(scope, send)
        except asyncio.CancelledError:
            self._gone()
            watcher = self._watcher
            if watcher is None or not watcher.done() or watcher.cancelled():
                raise  # cancelled from outside, not by the watcher
            task.uncancel()  # the client went away: the stream is stopped, nothing to send
        except Exception:
            if not self._started:
                self._status, self._error = 500, "internal_error"
            raise
        finally:
            if self._watcher is not None:
                self._watcher.cancel()
            self.log.finish(self._status, self._error)

    def _gone(self) -> None:
        """The client went away (or the server is stopping): record the open attempt."""
        self._status = 200 if self._started else 499
        self._error = "client_disconnected"
        if self._open:
            self._open = False
            self.attempts.broke(
                self.route,
                200 if self._started else 499,
                "client_disconnected",
                self._wall,
                self._t0,
                output_chars=self._chars,
                first_token_at=self._first_at,
            )

    def _watch_disconnect(self) -> None:
        """Start the disconnect watcher, before the first wait on the upstream.

        Only a stream that has to wait can outlive its client, so a stream whose events
        all arrived with the first read (a short answer) never pays for a second task.
        """
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(_cancel_on_disconnect(self._receive, self._task))

    async def _start(self, send: Send) -> None:
        route = self.route
        log = self.log
        if self.encoder is None:
            log.served_model = route.public_model
            self.encoder = ChunkEncoder(log.request_id, int(time.time()), route.public_model)
            self.gateway.router.track(
                log.request_id, self.attempts.tenant.id, self.attempts.cell, route.public_model
            )
        headers = [(b"x-request-id", log.request_id.encode())]
        headers += [(k.encode(), v.encode()) for k, v in log.headers(serving=True).items()]
        await send(
            {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS + headers}
        )
        self._started = True  # after the await: a send cancelled before writing sent nothing

    def _slow_first_event(self, send: Send) -> None:
        """Timer callback: the first event is late, so start the stream and keep it alive."""
        self._watch_disconnect()
        self._keepalives = asyncio.ensure_future(self._keep_alive(send))

    async def _keep_alive(self, send: Send) -> None:
        await self._start(send)
        while True:
            await send({"type": "http.response.body", "body": KEEP_ALIVE, "more_body": True})
            await asyncio.sleep(self.keepalive)

    async def _first_events(self, stream: ChatStream, send: Send) -> list[StreamEvent]:
        loop = asyncio.get_running_loop()
        limit = self.first_token_timeout
        if limit and self.attempts.has_next():
            # Somewhere to go next: no keep-alive (it would commit the stream), a limit.
            watch = loop.call_later(self.keepalive, self._watch_disconnect)
            try:
                async with asyncio.timeout(limit):
                    return await stream.next_batch()
            except TimeoutError:
                raise FirstTokenTimeoutError(
                    f"no first token within {limit * 1000:.0f} ms (PROVARA_FIRST_TOKEN_TIMEOUT_MS)",
                    provider=self.route.provider_name,
                ) from None
            finally:
                watch.cancel()
        timer = loop.call_later(self.keepalive, self._slow_first_event, send)
        try:
            return await stream.next_batch()
        finally:
            timer.cancel()
            keepalives = self._keepalives
            if keepalives is not None:
                keepalives.cancel()
                await asyncio.gather(keepalives, return_exceptions=True)

    async def _attempt(self, scope: Scope, send: Send) -> list[StreamEvent] | None:
        """Attempts until one sends its first events (returned), or the answer is an
        error response (sent; ``None``)."""
        attempts = self.attempts
        while True:
            route = self.route
            self._held = route
            self._wall, self._t0 = time.time(), time.perf_counter()
            self._open = True
            try:
                stream = self.stream = route.provider.complete_stream(
                    attempts.upstream_request(route)
                )
                batch = await self._first_events(stream, send)
            except Exception as exc:
                if self._started:
                    raise
                # Nothing was sent: retry, fall back, or answer with the failure's status.
                await self._close()
                if not isinstance(exc, ProviderError | ValueError):
                    self._open = False
                    attempts.crashed(route, self._wall, self._t0, stream=True)
                    raise
                self._open = False
                self._watch_disconnect()
                try:
                    if isinstance(exc, ProviderError):
                        self.route = await attempts.after(
                            route, exc, self._wall, self._t0, stream=True
                        )
                    else:
                        self.route = await attempts.refused(route, exc)
                    continue
                except GatewayError as answer:
                    error = answer
                self._status, self._error = error.status, self.log.error or error.code
                await error.response()(scope, self._receive, send)
                return None
            self._first_at = time.perf_counter()
            return batch

    async def _produce(self, scope: Scope, send: Send) -> None:
        tail = b""
        try:
            batch = await self._attempt(scope, send)
            if batch is None:
                return
            if not self._started:
                await self._start(send)
            tail = await self._events(send, batch)
        except ProviderError as exc:
            tail = encode_error(self._broke(exc).body())
        except Exception:
            if not self._started:  # nothing sent yet: the generic 500, naming the request
                logger.exception("request %s failed", self.log.request_id)
                self._status, self._error = 500, "internal_error"
                await self._close()
                await internal_error(self.log.request_id).response()(scope, self._receive, send)
                return
            logger.exception("unhandled error while streaming %s", self.log.request_id)
            self._error = "internal_error"
            if self._open:
                self._open = False
                self.attempts.broke(
                    self.route,
                    200,
                    "internal_error",
                    self._wall,
                    self._t0,
                    output_chars=self._chars,
                    first_token_at=self._first_at,
                )
            tail = encode_error(INTERNAL_ERROR.body())
        finally:
            await self._close()
        pending = self._pending
        if pending:
            tail = b"".join(pending) + tail
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    def _broke(self, exc: ProviderError) -> GatewayError:
        """Record a failure after the stream started; the in-stream error for it."""
        route = self.route
        if self._open:
            self._open = False
            if self._first_at is None:  # after keep-alives, before any content
                failure = classify(exc)
                self._error = failure.error
                self.attempts.failed(route, failure, self._wall, self._t0, stream=True)
            else:
                self._error = (
                    "stream_timeout" if isinstance(exc, StreamTimeoutError) else "stream_aborted"
                )
                self.attempts.broke(
                    route,
                    200,
                    self._error,
                    self._wall,
                    self._t0,
                    output_chars=self._chars,
                    first_token_at=self._first_at,
                )
        return from_provider_error(
            exc, provider=route.provider_name, request_id=self.log.request_id
        )

    async def _close(self) -> None:
        """Close the upstream stream and give the route back (once each)."""
        stream, self.stream = self.stream, None
        held, self._held = self._held, None
        try:
            if stream is not None:
                await stream.aclose()
        finally:
            if held is not None:
                await held.release()

    async def _events(self, send: Send, batch: list[StreamEvent]) -> bytes:
        """Send every content event from ``batch`` on; return the bytes that end the stream."""
        encoder = self.encoder
        stream = self.stream
        assert encoder is not None and stream is not None
        pending = self._pending

        async def flush() -> None:
            self._watch_disconnect()
            body = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            await send({"type": "http.response.body", "body": body, "more_body": True})

        answer = self._answer
        next_batch = _NextBatch(stream, flush)
        while True:
            for event in batch:
                if isinstance(event, TextDelta):
                    chunk = encoder.text(event.text)
                    self._chars += len(event.text)
                    if answer is not None:
                        answer.append(event.text)
                elif isinstance(event, ProvaraMeta):
                    return await self._end(event, flush)
                elif isinstance(event, ReasoningDelta):
                    chunk = encoder.reasoning(event.text)
                    self._chars += len(event.text)
                else:
                    chunk = encoder.tool_call(event)
                    self._chars += len(event.arguments) + len(event.name or "")
                pending.append(chunk)
            batch = await next_batch

    async def _end(self, meta: ProvaraMeta, flush: Callable[[], Awaitable[None]]) -> bytes:
        """The clean end: the served row committed, then the closing chunks."""
        self._open = False
        recorded = self.attempts.served(self.route, meta, self._wall, stream=True)
        if not recorded.done():
            # The content goes out while the row is being written; the clean end waits.
            if self._pending:
                await flush()
            try:
                await recorded
            except UsageNotRecordedError as exc:
                self._error = "usage_not_recorded"
                return encode_error(unrecorded(exc).body())
        if self._answer is not None:
            attempts = self.attempts
            self.gateway.judge.submit(
                self.log.request_id, attempts.tenant, attempts.request, "".join(self._answer)
            )
        assert self.encoder is not None
        return self.encoder.end(meta, include_usage=self.include_usage, provara=self.log.meta(meta))


class _NextBatch:
    """``await stream.next_batch()``, calling ``flush()`` first if that has to wait (once
    per ``await``: one instance serves a whole stream).

    The stream's next step is started at once; when it completes without suspending (the
    events were already read from the upstream) its result is returned and nothing is
    flushed. When it suspends, ``flush()`` runs, then the suspended step is driven to its
    end exactly as ``await`` would drive it (a cancellation or an error from ``flush()`` is
    thrown into it, so the stream unwinds as if it had been cancelled while waiting).
    """

    __slots__ = ("_flush", "_stream")

    def __init__(self, stream: ChatStream, flush: Callable[[], Awaitable[None]]) -> None:
        self._stream = stream
        self._flush = flush

    def __await__(self) -> Generator[Any, Any, list[StreamEvent]]:
        step = self._stream.next_batch().__await__()
        try:
            waiting = step.send(None)
        except StopIteration as done:
            batch: list[StreamEvent] = done.value
            return batch
        error: BaseException | None = None
        try:
            yield from self._flush().__await__()
        except BaseException as exc:
            error = exc
        while True:
            try:
                if error is not None:
                    thrown, error = error, None
                    waiting = step.throw(thrown)
                else:
                    try:
                        value = yield waiting
                    except BaseException as exc:
                        error = exc
                        continue
                    waiting = step.send(value)
            except StopIteration as done:
                batch = done.value
                return batch


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()
