"""``POST /v1/chat/completions``: OpenAI-compatible, streaming and not.

A request is authenticated, read under the body cap, validated (``stream`` and
``stream_options`` here, the rest by the SDK's :class:`~provara_kit.ChatRequest`), routed
(``auto`` through the router, then :meth:`ProviderPool.route`) and answered by the
provider. Usage goes to the batched recorder; nothing on this path waits for the database.

A failure before the first byte (a 429, a 5xx, a refused connection, no first token in
time) is retried and falls back along ``Settings.fallbacks``
(:mod:`reference_gateway.attempts`, :mod:`reference_gateway.retry`); the answer names the
model that served it (``x-provara-served-model``, ``x-provara-attempts``, the ``provara``
object's ``served_model`` and ``path``, the ``model`` field). Streamed answers are
:class:`~reference_gateway.api.chat_stream.SSEResponse`. Every chat request's outcome goes
to ``gateway.observer`` exactly once, errors before routing and client disconnects
included.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from provara_kit.errors import ProviderError
from provara_kit.types import ChatRequest, ChatResponse
from reference_gateway.api.chat_stream import SSEResponse, unrecorded
from reference_gateway.api.errors import GatewayError, from_validation_error, internal_error
from reference_gateway.api.http import read_json_object
from reference_gateway.attempts import Attempts, RequestLog
from reference_gateway.local import FAULT_HEADER
from reference_gateway.router import AUTO, CELL_HEADER
from reference_gateway.sse import usage_object
from reference_gateway.usage import UsageNotRecordedError

logger = logging.getLogger("reference_gateway")

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["PATH", "ChatCompletions", "routes"]

_TRACE_HEADERS = ("traceparent", "tracestate")
"""The W3C trace context a client's request may carry (the request span continues it)."""


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


def _completion_body(
    completion_id: str, created: int, model: str, response: ChatResponse, provara: dict[str, Any]
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
        "provara": provara,
    }


class ChatCompletions:
    """The endpoint, bound to one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a bare ASGI app: what the gateway's fast path dispatches to.

        A :class:`GatewayError` becomes its OpenAI-shaped response here; anything else is
        left to the caller's :class:`~reference_gateway.api.errors.ErrorMiddleware`. The
        request's outcome is reported once its answer is sent (a stream reports its own).
        """
        log = RequestLog(self.gateway.observer, "chatcmpl-" + os.urandom(12).hex())
        try:
            try:
                response = await self.handle(Request(scope, receive), log)
                status, error = response.status_code, None
            except GatewayError as exc:
                response = exc.response()
                status, error = exc.status, log.error or exc.code
            except Exception:
                # A bug (the gateway's or an adapter's): the traceback to the log under
                # the request's id, the id to the client with the generic 500.
                logger.exception("request %s failed", log.request_id)
                response = internal_error(log.request_id).response()
                status, error = 500, "internal_error"
            await response(scope, receive, send)
        except asyncio.CancelledError:
            log.finish(499, "client_disconnected")
            raise
        except Exception:
            log.finish(500, "internal_error")
            raise
        log.finish(status, error)

    async def handle(self, request: Request, log: RequestLog) -> Response:
        gateway = self.gateway
        headers = request.headers
        if log.observing:
            log.trace_context = tuple(
                (name, headers[name]) for name in _TRACE_HEADERS if name in headers
            )
        tenant = log.tenant = await gateway.auth.authenticate(headers.get("authorization"))
        data = await read_json_object(request, gateway.settings.max_body_bytes)
        requested = data.get("model")
        log.requested_model = requested if isinstance(requested, str) else None
        if gateway.settings.log_prompts:
            log.prompt = data.get("messages")
        stream, include_usage = _stream_flags(data)
        log.stream = stream
        try:
            chat = ChatRequest.model_validate(data)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        cell = gateway.router.cell_of(chat, headers.get(CELL_HEADER))
        model = chat.model
        if model == AUTO:
            model = gateway.router.choose_model(chat, tenant, cell=cell)
        attempts = Attempts(gateway, log, tenant, chat, cell, local_fault=headers.get(FAULT_HEADER))
        route = await attempts.first(model)
        if stream:
            return SSEResponse(
                gateway=gateway,
                attempts=attempts,
                route=route,
                judged=gateway.judge.sample(),
                include_usage=include_usage,
            )
        while True:
            started, t0 = time.time(), time.perf_counter()
            try:
                response = await route.provider.complete(attempts.upstream_request(route))
            except ProviderError as exc:
                await route.release()
                route = await attempts.after(route, exc, started, t0, stream=False)
                continue
            except ValueError as exc:
                await route.release()
                route = await attempts.refused(route, exc)
                continue
            except Exception:
                await route.release()
                attempts.crashed(route, started, t0, stream=False)
                raise
            except BaseException:
                await route.release()
                raise
            await route.release()
            break
        served = log.served_model = route.public_model
        gateway.router.track(log.request_id, tenant.id, cell, served)
        try:
            await attempts.served(route, response.meta, started, stream=False)
        except UsageNotRecordedError as exc:
            raise unrecorded(exc) from None
        gateway.judge.offer(log.request_id, tenant, chat, response.text)
        body = _completion_body(
            log.request_id, int(time.time()), served, response, log.meta(response.meta)
        )
        return Response(
            orjson.dumps(body),
            media_type="application/json",
            headers={"x-request-id": log.request_id, **log.headers()},
        )


class _Endpoint:
    """:meth:`ChatCompletions.asgi` as a Starlette route's ASGI app."""

    def __init__(self, endpoint: ChatCompletions) -> None:
        self._endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._endpoint.asgi(scope, receive, send)


PATH = "/v1/chat/completions"


def routes(endpoint: ChatCompletions) -> list[Route]:
    return [Route(PATH, _Endpoint(endpoint), methods=["POST"])]
