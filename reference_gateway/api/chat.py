"""``POST /v1/chat/completions``: OpenAI-compatible, streaming and not.

A request is authenticated, read under the body cap, validated (``stream`` and
``stream_options`` here, the rest by the SDK's :class:`~provara_kit.ChatRequest`), routed
(``auto`` through the router, then :meth:`ProviderPool.route`) and answered by the
provider. Usage goes to the batched recorder; nothing on this path waits for the database.

Streaming waits up to ``PROVARA_KEEPALIVE_MS`` for the first event before answering, so an
upstream that fails at once (a 401, a 429, a refused connection) gets its proper HTTP
status. If the first token is slower than that, the 200 stream starts and carries
``: keep-alive`` comments until it arrives; a failure after that point is an in-stream
error event. A client that goes away stops the upstream request.

Chunks are written when the stream has to wait for the upstream, not one by one: the
events one upstream read carries (often the whole answer) leave in one ``send``, and
nothing is ever held back while the gateway waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from provara_kit.errors import ProviderError
from provara_kit.streaming import ChatStream
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
)
from reference_gateway.api.errors import (
    INTERNAL_ERROR,
    GatewayError,
    from_provider_error,
    from_validation_error,
)
from reference_gateway.api.http import read_json_object
from reference_gateway.local import FAULT_HEADER
from reference_gateway.providers import Route as ProviderRoute
from reference_gateway.router import AUTO, CELL_HEADER
from reference_gateway.sse import KEEP_ALIVE, ChunkEncoder, encode_error, usage_object
from reference_gateway.types import Tenant
from reference_gateway.usage import UsageNotRecordedError

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

logger = logging.getLogger("reference_gateway")

__all__ = ["PATH", "ChatCompletions", "routes"]

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def _stream_flags(data: dict[str, Any]) -> tuple[bool, bool]:
    """Pop ``stream`` and ``stream_options`` from the body: ``(stream, include_usage)``."""
    stream = data.pop("stream", None)
    if stream is None:
        stream = False
    elif not isinstance(stream, bool):
        raise GatewayError(
            400,
            "Invalid value for 'stream': expected a boolean.",
            param="stream",
            code="invalid_type",
        )
    options = data.pop("stream_options", None)
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise GatewayError(
            400,
            "Invalid value for 'stream_options': expected an object.",
            param="stream_options",
            code="invalid_type",
        )
    if not stream:
        raise GatewayError(
            400,
            "'stream_options' is only allowed when 'stream' is true.",
            param="stream_options",
            code="invalid_value",
        )
    include_usage = options.get("include_usage", False)
    if include_usage is None:
        include_usage = False
    if not isinstance(include_usage, bool):
        raise GatewayError(
            400,
            "Invalid value for 'stream_options.include_usage': expected a boolean.",
            param="stream_options.include_usage",
            code="invalid_type",
        )
    return stream, include_usage


def _unsupported(exc: ValueError) -> GatewayError:
    return GatewayError(
        400, f"The provider cannot take this request: {exc}", code="unsupported_request"
    )


def _unrecorded(exc: UsageNotRecordedError) -> GatewayError:
    logger.error("a completion was not delivered: %s", exc)
    return GatewayError(
        503,
        "The gateway could not record this completion's usage, so it was not delivered. "
        "Retry shortly.",
        type="server_error",
        code="usage_not_recorded",
    )


def _completion_body(
    completion_id: str, created: int, model: str, response: ChatResponse
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": response.text if response.text or not response.tool_calls else None,
    }
    if response.reasoning:
        message["reasoning_content"] = response.reasoning
    if response.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in response.tool_calls
        ]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": response.finish_reason,
            }
        ],
        "usage": usage_object(response.meta),
        "provara": response.meta.to_dict(),
    }


class ChatCompletions:
    """The endpoint, bound to one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.keepalive = gateway.settings.keepalive_ms / 1000

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a bare ASGI app: what the gateway's fast path dispatches to.

        A :class:`GatewayError` becomes its OpenAI-shaped response here; anything else is
        left to the caller's :class:`~reference_gateway.api.errors.ErrorMiddleware`.
        """
        try:
            response = await self.handle(Request(scope, receive))
        except GatewayError as exc:
            response = exc.response()
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        gateway = self.gateway
        headers = request.headers
        tenant = await gateway.auth.authenticate(headers.get("authorization"))
        data = await read_json_object(request, gateway.settings.max_body_bytes)
        stream, include_usage = _stream_flags(data)
        try:
            chat = ChatRequest.model_validate(data)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        cell = gateway.router.cell_of(chat, headers.get(CELL_HEADER))
        model = chat.model
        if model == AUTO:
            model = gateway.router.choose_model(chat, tenant, cell=cell)
        route = await gateway.providers.route(tenant, model, local_fault=headers.get(FAULT_HEADER))
        upstream_request = chat.model_copy(update={"model": route.model})
        completion_id = "chatcmpl-" + os.urandom(12).hex()
        gateway.router.track(completion_id, tenant.id, cell, route.public_model)
        if stream:
            return await self._stream(
                tenant, route, chat, upstream_request, completion_id, cell, include_usage
            )
        try:
            try:
                response = await route.provider.complete(upstream_request)
            except ProviderError as exc:
                raise from_provider_error(
                    exc, provider=route.provider_name, request_id=completion_id
                ) from None
            except ValueError as exc:
                raise _unsupported(exc) from None
        finally:
            await route.release()
        recorded = gateway.usage.commit(
            request_id=completion_id,
            tenant_id=tenant.id,
            meta=response.meta,
            key_source=route.key_source,
            stream=False,
            cell=cell,
        )
        try:
            await recorded
        except UsageNotRecordedError as exc:
            raise _unrecorded(exc) from None
        gateway.judge.offer(completion_id, tenant, chat, response.text)
        body = _completion_body(completion_id, int(time.time()), route.public_model, response)
        return Response(
            orjson.dumps(body),
            media_type="application/json",
            headers={"x-request-id": completion_id},
        )

    async def _stream(
        self,
        tenant: Tenant,
        route: ProviderRoute,
        chat: ChatRequest,
        upstream_request: ChatRequest,
        completion_id: str,
        cell: str,
        include_usage: bool,
    ) -> Response:
        """The streaming response; it decides its own status once the first event is in."""
        try:
            stream = route.provider.complete_stream(upstream_request)
        except ProviderError as exc:
            await route.release()
            raise from_provider_error(
                exc, provider=route.provider_name, request_id=completion_id
            ) from None
        except ValueError as exc:
            await route.release()
            raise _unsupported(exc) from None
        return _SSEResponse(
            gateway=self.gateway,
            tenant=tenant,
            route=route,
            request=chat,
            judged=self.gateway.judge.sample(),
            stream=stream,
            encoder=ChunkEncoder(completion_id, int(time.time()), route.public_model),
            completion_id=completion_id,
            cell=cell,
            include_usage=include_usage,
            keepalive=self.keepalive,
        )


class _SSEResponse(Response):
    """Streams one completion; stops the upstream if the client disconnects.

    The first event is awaited in the response's own task. If it fails before anything
    was sent, the client gets the error's own HTTP status; if it takes longer than the
    keep-alive interval, a timer starts the 200 stream and sends ``: keep-alive`` comments
    until it arrives (a fast upstream never arms more than that one timer).
    """

    def __init__(
        self,
        *,
        gateway: Gateway,
        tenant: Tenant,
        route: ProviderRoute,
        request: ChatRequest,
        judged: bool,
        stream: ChatStream,
        encoder: ChunkEncoder,
        completion_id: str,
        cell: str,
        include_usage: bool,
        keepalive: float,
    ) -> None:
        self.status_code = 200
        self.gateway = gateway
        self.tenant = tenant
        self.route = route
        self.request = request
        # The answer's text, kept only when the judge drew this completion.
        self._answer: list[str] | None = [] if judged else None
        self.stream = stream
        self.encoder = encoder
        self.completion_id = completion_id
        self.cell = cell
        self.include_usage = include_usage
        self.keepalive = keepalive
        self.background = None
        self.raw_headers = []
        self._pending: list[bytes] = []
        self._started = False
        self._closed = False
        self._keepalives: asyncio.Task[None] | None = None
        self._watcher: asyncio.Future[None] | None = None
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
            watcher = self._watcher
            if watcher is None or not watcher.done() or watcher.cancelled():
                raise  # cancelled from outside, not by the watcher
            task.uncancel()  # the client went away: the stream is stopped, nothing to send
        finally:
            if self._watcher is not None:
                self._watcher.cancel()

    def _watch_disconnect(self) -> None:
        """Start the disconnect watcher, before the first wait on the upstream.

        Only a stream that has to wait can outlive its client, so a stream whose events
        all arrived with the first read (a short answer) never pays for a second task.
        """
        if self._watcher is None:
            self._watcher = asyncio.ensure_future(_cancel_on_disconnect(self._receive, self._task))

    async def _start(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_SSE_HEADERS, (b"x-request-id", self.completion_id.encode())],
            }
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

    async def _first_events(self, send: Send) -> list[StreamEvent]:
        timer = asyncio.get_running_loop().call_later(self.keepalive, self._slow_first_event, send)
        try:
            return await self.stream.next_batch()
        finally:
            timer.cancel()
            keepalives = self._keepalives
            if keepalives is not None:
                keepalives.cancel()
                await asyncio.gather(keepalives, return_exceptions=True)

    async def _produce(self, scope: Scope, send: Send) -> None:
        tail = b""
        try:
            try:
                batch = await self._first_events(send)
            except Exception as exc:
                if self._started:
                    raise
                # Nothing was sent: the failure gets its own status, not a 200 stream.
                await self._close()
                if isinstance(exc, ProviderError):
                    error = self._upstream_error(exc)
                elif isinstance(exc, ValueError):
                    error = _unsupported(exc)
                else:
                    raise
                await error.response()(scope, self._receive, send)
                return
            if not self._started:
                await self._start(send)
            tail = await self._events(send, batch)
        except ProviderError as exc:
            tail = encode_error(self._upstream_error(exc).body())
        except Exception:
            if not self._started:
                raise  # the error middleware answers a 500
            logger.exception("unhandled error while streaming %s", self.completion_id)
            tail = encode_error(INTERNAL_ERROR.body())
        finally:
            await self._close()
        pending = self._pending
        if pending:
            tail = b"".join(pending) + tail
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    def _upstream_error(self, exc: ProviderError) -> GatewayError:
        return from_provider_error(
            exc, provider=self.route.provider_name, request_id=self.completion_id
        )

    async def _close(self) -> None:
        """Close the upstream stream and give the route back (once)."""
        if self._closed:
            return
        self._closed = True
        await self.stream.aclose()
        await self.route.release()

    async def _events(self, send: Send, batch: list[StreamEvent]) -> bytes:
        """Send every content event from ``batch`` on; return the bytes that end the stream."""
        encoder = self.encoder
        stream = self.stream
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
                    if answer is not None:
                        answer.append(event.text)
                elif isinstance(event, ProvaraMeta):
                    gateway = self.gateway
                    recorded = gateway.usage.commit(
                        request_id=self.completion_id,
                        tenant_id=self.tenant.id,
                        meta=event,
                        key_source=self.route.key_source,
                        stream=True,
                        cell=self.cell,
                    )
                    if not recorded.done():
                        # The content goes out while the row is being written; the clean
                        # end waits for the commit.
                        if pending:
                            await flush()
                        try:
                            await recorded
                        except UsageNotRecordedError as exc:
                            return encode_error(_unrecorded(exc).body())
                    if answer is not None:
                        gateway.judge.submit(
                            self.completion_id, self.tenant, self.request, "".join(answer)
                        )
                    return encoder.end(event, include_usage=self.include_usage)
                elif isinstance(event, ReasoningDelta):
                    chunk = encoder.reasoning(event.text)
                else:
                    chunk = encoder.tool_call(event)
                pending.append(chunk)
            batch = await next_batch


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


PATH = "/v1/chat/completions"


def routes(endpoint: ChatCompletions) -> list[Route]:
    return [Route(PATH, endpoint.handle, methods=["POST"])]
