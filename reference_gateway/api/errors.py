"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

:class:`GatewayError` is raised anywhere in a request and rendered by the app's handler;
:func:`from_provider_error` maps the SDK's error tree onto statuses a client of the OpenAI
API expects (an upstream 4xx keeps its status, a 429 keeps ``Retry-After``, an upstream
failure is a 502/503/504 from the gateway, whose message names the provider and the kind of
failure but never the upstream's address); :func:`from_validation_error` turns pydantic's
report into a 400 naming the field; :class:`ErrorMiddleware` makes any unexpected exception
a generic 500 body, with the traceback only in the server log.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provara_kit.errors import (
    MalformedResponseError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    StreamAbortedError,
    StreamTimeoutError,
)
from reference_gateway.retry import FirstTokenTimeoutError

__all__ = [
    "INTERNAL_ERROR",
    "ErrorMiddleware",
    "GatewayError",
    "error_body",
    "from_provider_error",
    "from_validation_error",
    "gateway_error_handler",
    "http_exception_handler",
    "internal_error",
    "unsupported",
]

logger = logging.getLogger("reference_gateway")

_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type_for(status: int) -> str:
    """The OpenAI error ``type`` for a status."""
    return _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")


def error_body(
    message: str,
    *,
    type: str,
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The JSON error object, in an ``{"error": ...}`` envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class GatewayError(Exception):
    """An error answered to the client as an OpenAI-shaped body with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or error_type_for(status)
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.message!r}, code={self.code!r})"

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)

    def encode(self) -> bytes:
        return orjson.dumps(self.body())

    def response(self) -> Response:
        return Response(
            self.encode(),
            status_code=self.status,
            headers=self.headers,
            media_type="application/json",
        )


def _retry_after(seconds: float | None) -> dict[str, str]:
    return {} if seconds is None else {"retry-after": str(math.ceil(seconds))}


def _mapped(exc: ProviderError) -> GatewayError:
    """The status and code for ``exc``, with the error's own text."""
    text = str(exc)
    if isinstance(exc, ProviderStatusError):
        status = exc.status_code
        if status == 429:
            return GatewayError(
                429, text, code="rate_limit_exceeded", headers=_retry_after(exc.retry_after)
            )
        if isinstance(exc, OverloadedError) or status == 503:
            return GatewayError(
                503, text, code="upstream_overloaded", headers=_retry_after(exc.retry_after)
            )
        if status in (408, 504):
            return GatewayError(504, text, code="upstream_timeout")
        if 400 <= status < 500:
            return GatewayError(status, text, code="upstream_error")
        return GatewayError(502, text, code="upstream_error")
    if isinstance(exc, StreamTimeoutError):
        return GatewayError(504, text, code="upstream_timeout")
    if isinstance(exc, StreamAbortedError):
        return GatewayError(502, text, code="upstream_stream_aborted")
    if isinstance(exc, ProviderConnectionError):
        return GatewayError(502, text, code="upstream_unreachable")
    if isinstance(exc, MalformedResponseError):
        return GatewayError(502, text, code="upstream_malformed_response")
    return GatewayError(502, text, code="upstream_error")


def _what_failed(exc: ProviderError, provider: str) -> str:
    """A 5xx's message for the client: the provider and the kind of failure, no address."""
    who = f"Provider '{provider}'"
    if isinstance(exc, ProviderStatusError):
        status = exc.status_code
        if isinstance(exc, OverloadedError) or status == 503:
            return f"{who} is overloaded (upstream HTTP {status})"
        if status in (408, 504):
            return f"{who} timed out (upstream HTTP {status})"
        return f"{who} failed (upstream HTTP {status})"
    if isinstance(exc, FirstTokenTimeoutError):
        return (
            f"{who} sent no first token within the gateway's first-token limit "
            "(PROVARA_FIRST_TOKEN_TIMEOUT_MS)"
        )
    if isinstance(exc, StreamTimeoutError):
        return (
            f"{who} sent nothing for longer than the gateway's stream timeout "
            "(PROVARA_STREAM_TIMEOUT_MS)"
        )
    if isinstance(exc, StreamAbortedError):
        return (
            f"{who} broke off the upstream stream before it finished (a dropped "
            "connection, a truncated body or an error event from the provider)"
        )
    if isinstance(exc, ProviderConnectionError):
        return f"{who} did not answer: {exc.reason}"
    if isinstance(exc, MalformedResponseError):
        return f"{who} answered with a body that does not follow its API"
    return f"{who} failed"


def from_provider_error(
    exc: ProviderError, *, provider: str | None = None, request_id: str | None = None
) -> GatewayError:
    """The client-facing error for something that went wrong upstream.

    An upstream 4xx keeps the upstream's message: it is about the client's request. A
    failure answered with a 5xx says which provider failed and how, and nothing more: its
    own text may name where the provider lives (a URL, a host, an address, a port), so that
    goes to the log under ``request_id``, which the response carries (``x-request-id``)
    and quotes so the operator can find it.
    """
    error = _mapped(exc)
    if error.status < 500:
        return error
    name = provider or exc.provider or "unknown"
    logger.warning(
        "request %s: provider %s failed (%s %s): %s",
        request_id or "-",
        name,
        error.status,
        error.code,
        exc,
    )
    message = _what_failed(exc, name) + "."
    headers = error.headers
    if request_id is not None:
        message += f" The gateway's log has the details under request id {request_id}."
        headers = {**headers, "x-request-id": request_id}
    return GatewayError(error.status, message, type=error.type, code=error.code, headers=headers)


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def from_validation_error(exc: ValidationError) -> GatewayError:
    """A 400 naming the first invalid field, e.g. ``messages[0].role``."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return GatewayError(400, "invalid request body", code="invalid_value")
    first = errors[0]
    # A union field reports one error per member ('str', 'list[...]'): drop those markers.
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or p == "str")))
    param = _location(loc) or None
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    where = f"'{param}'" if param else "the request body"
    if first["type"] == "missing":
        message = f"Missing required parameter: {where}."
        code = "missing_required_parameter"
    else:
        message = f"Invalid value for {where}: {first['msg']}.{more}"
        code = "invalid_value"
    return GatewayError(400, message, param=param, code=code)


async def gateway_error_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatewayError):  # registered for GatewayError only
        raise exc
    return exc.response()


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown path, wrong method) in the OpenAI shape."""
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    if exc.status_code == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}."
        code = "unknown_url"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
        code = "method_not_allowed"
    else:
        message, code = str(exc.detail), None
    headers = dict(exc.headers or {})
    return GatewayError(exc.status_code, message, code=code, headers=headers).response()


INTERNAL_ERROR = GatewayError(
    500,
    "The gateway hit an internal error while handling the request; it has been logged.",
    type="server_error",
    code="internal_error",
)


def internal_error(request_id: str) -> GatewayError:
    """:data:`INTERNAL_ERROR` naming the request, as the log line of its traceback does."""
    return GatewayError(
        500,
        f"The gateway hit an internal error while handling request {request_id}; "
        "it has been logged.",
        type="server_error",
        code="internal_error",
        headers={"x-request-id": request_id},
    )


class ErrorMiddleware:
    """Turns any unhandled exception into a generic OpenAI-shaped 500.

    The traceback goes to the ``reference_gateway`` log (whose filter scrubs known
    secrets), never to the client. If the response had started, the connection is
    simply ended: nothing more can be said on it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                return
            body = INTERNAL_ERROR.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def unsupported(exc: ValueError) -> GatewayError:
    """The 400 for a request the provider's adapter refused before sending it."""
    return GatewayError(
        400, f"The provider cannot take this request: {exc}", code="unsupported_request"
    )
