"""A scripted provider API: the other side of the wire, for adapter tests with no network.

:class:`ScriptedUpstream` answers in a :class:`WireDialect` from a script (a canned reply,
stream faults, an error status). It is an ``httpx.AsyncBaseTransport``, so any adapter takes
it as ``transport=``, and an ASGI app, so the same script can be served over real HTTP::

    upstream = ScriptedUpstream("openai-chat", reply=CannedReply(chunks=("Hi", "!")))
    provider = OpenAICompatibleProvider(
        name="acme", base_url="https://acme.test/v1", api_key="sk-test", transport=upstream
    )

Both front ends share :meth:`ScriptedUpstream.handle`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias
from urllib.parse import parse_qsl

import httpx

from provara_kit.errors import REDACTED
from provara_kit.testing.body import ScriptedBody
from provara_kit.testing.dialects import WireDialect, get_dialect
from provara_kit.testing.dialects.base import Frame
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

__all__ = ["DEFAULT_REPLY", "RecordedRequest", "ScriptedResponse", "ScriptedUpstream"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

DEFAULT_REPLY: Final = CannedReply(chunks=("Hello", " from the", " scripted upstream."))

_SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "x-amz-security-token",  # an AWS session token
    }
)
_JSON: Final = ("content-type", "application/json")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the upstream received; secret header values are masked.

    ``authorized`` says whether the API key matched ``expected_api_key`` (``None`` when the
    upstream checks no key); ``body`` is the parsed JSON body, ``None`` if it was not JSON.
    ``url_fields`` are the request's parameters that the wire carries in the URL rather
    than the body (Gemini's model and streaming choice), under the names the dialect's
    readers use (:meth:`~provara_kit.testing.WireDialect.url_fields`).
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: Any
    authorized: bool | None
    url_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def view(self) -> Any:
        """The body with :attr:`url_fields` merged in: what the dialect's readers
        (``read_param``, ``is_stream_request``, ``read_conversation``) take."""
        if not self.url_fields or not isinstance(self.body, dict):
            return self.body
        return {**self.body, **self.url_fields}


@dataclass(frozen=True, slots=True)
class ScriptedResponse:
    """What :meth:`ScriptedUpstream.handle` answers: status, headers and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: ScriptedBody


class ScriptedUpstream(httpx.AsyncBaseTransport):
    """A provider API playing a script, as an httpx transport and as an ASGI app."""

    def __init__(
        self,
        dialect: str | WireDialect = "openai-chat",
        *,
        reply: CannedReply | None = DEFAULT_REPLY,
        faults: StreamFaults | None = None,
        error: ErrorFault | None = None,
        models: Sequence[str] | None = None,
        expected_api_key: str | None = None,
        keep_requests: int | None = 1000,
        models_error: ErrorFault | None = None,
        models_page_size: int | None = None,
        models_body: bytes | None = None,
        validate: bool = False,
        count_error: ErrorFault | None = None,
    ) -> None:
        """Answer in ``dialect`` (a name from ``DIALECTS`` or a dialect object).

        Every completion request gets ``reply`` (``None``: echo the last user message)
        streamed with ``faults``, or ``error`` instead, unless :meth:`queue` scripted
        something else for it. ``models`` is served at the models path (``None``: 404), in
        pages of at most ``models_page_size`` where the wire pages its list; the listing
        gets ``models_error`` instead when set, or ``models_body`` as is with a 200.
        With ``expected_api_key`` set, a request with another key gets the wire's 401.
        :attr:`requests` keeps the last ``keep_requests`` requests (``None``: all of them),
        so a long-running server does not grow without bound. With ``validate``, a
        completion request the real API would refuse
        (:meth:`~provara_kit.testing.WireDialect.validate_request`) gets its 400.
        Where the wire has a token-count endpoint it answers the dialect's count, or
        ``count_error`` when set.
        """
        if models_page_size is not None and models_page_size < 1:
            raise ValueError(f"models_page_size must be >= 1, got {models_page_size}")
        self.dialect = get_dialect(dialect)
        self.script: Script[ErrorFault] = Script(
            ScriptStep(reply=reply, faults=faults or StreamFaults(), error=error)
        )
        self.models = None if models is None else list(models)
        self.models_error = models_error
        self.models_page_size = models_page_size
        self.models_body = models_body
        self.validate = validate
        self.count_error = count_error
        self._expected_api_key = expected_api_key
        self.requests: deque[RecordedRequest] = deque(maxlen=keep_requests)
        self.opened_streams = 0
        self.closed_streams = 0

    def __repr__(self) -> str:
        checks = "set" if self._expected_api_key else "none"
        return f"ScriptedUpstream(dialect={self.dialect.name!r}, expected_api_key=<{checks}>)"

    @property
    def open_streams(self) -> int:
        """Streamed bodies handed out and not closed yet."""
        return self.opened_streams - self.closed_streams

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (``IndexError`` if none arrived)."""
        return self.requests[-1]

    def queue(
        self,
        *,
        reply: CannedReply | Unset | None = UNSET,
        faults: StreamFaults | Unset = UNSET,
        error: ErrorFault | Unset | None = UNSET,
    ) -> None:
        """Script the next completion request; what is not given comes from the defaults.

        Queued steps are used in order, one per completion request, before the defaults.
        """
        self.script.queue(reply=reply, faults=faults, error=error)

    # -- the core --------------------------------------------------------------------------

    async def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> ScriptedResponse:
        """Answer one request. ``path`` may carry a ``?query``."""
        path, _, query = path.partition("?")
        items = headers.items() if isinstance(headers, Mapping) else headers
        lowered = {name.lower(): value for name, value in items}
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = None
        dialect = self.dialect
        authorized = self._authorized(method, path, query, lowered, body)
        recorded = RecordedRequest(
            method.upper(),
            path,
            _mask_query(query),
            _mask(lowered),
            parsed,
            authorized,
            dialect.url_fields(path, query),
        )
        self.requests.append(recorded)
        if authorized is False:
            return self._error(401, dialect.invalid_api_key_message)
        route = path.rstrip("/")
        if dialect.is_count_path(route):  # first: the more specific route on some wires
            if method.upper() != "POST":
                return self._error(405, f"Method {method} not allowed on {path}")
            return self._token_count(recorded)
        if dialect.is_completion_path(route):
            if method.upper() != "POST":
                return self._error(405, f"Method {method} not allowed on {path}")
            return self._completion(recorded)
        if dialect.is_models_path(route):
            if method.upper() != "GET":
                return self._error(405, f"Method {method} not allowed on {path}")
            return self._models(method, path, query)
        return self._error(404, f"Invalid URL ({method} {path})")

    def _authorized(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> bool | None:
        expected = self._expected_api_key
        if expected is None:
            return None
        return self.dialect.key_matches(
            expected, method=method, path=path, query=query, headers=headers, body=body
        )

    def _error(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> ScriptedResponse:
        body = self.dialect.render_error(status, message, error_type=error_type)
        return ScriptedResponse(status, [_JSON], _whole(body))

    def _models(self, method: str, path: str, query: str) -> ScriptedResponse:
        if self.models_error is not None:
            return self._error_fault(self.models_error)
        if self.models_body is not None:
            return ScriptedResponse(200, [_JSON], _whole(self.models_body))
        if self.models is None:
            return self._error(404, f"Invalid URL ({method} {path})")
        page = self.dialect.render_models_page(
            self.models, dict(parse_qsl(query)), page_size=self.models_page_size
        )
        return ScriptedResponse(200, [_JSON], _whole(page))

    def _error_fault(self, fault: ErrorFault) -> ScriptedResponse:
        """The scripted error, with its body in the form the fault asks for, its
        ``Retry-After`` and its status line (``wire_status`` when set)."""
        response = self._error_body(fault)
        retry_after = fault.retry_after_header()
        if retry_after is not None:
            response.headers.append(("retry-after", retry_after))
        if fault.wire_status is not None:
            response = dataclasses.replace(response, status=fault.wire_status)
        return response

    def _error_body(self, fault: ErrorFault) -> ScriptedResponse:
        if fault.body == "json":
            return self._error(fault.status, fault.message, error_type=fault.error_type)
        if fault.body == "empty":
            return ScriptedResponse(fault.status, [("content-length", "0")], _whole(b""))
        if fault.body == "text":
            text = f"{fault.message}\n".encode()
            return ScriptedResponse(fault.status, [("content-type", "text/plain")], _whole(text))
        title = html.escape(f"{fault.status} {fault.message}")
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>proxy</center>\r\n"
            "</body>\r\n</html>\r\n"
        ).encode()
        return ScriptedResponse(fault.status, [("content-type", "text/html")], _whole(page))

    def _completion(self, recorded: RecordedRequest) -> ScriptedResponse:
        dialect = self.dialect
        if not isinstance(recorded.body, dict):
            return self._error(400, "the request body must be a JSON object")
        refused = dialect.validate_request(recorded.body) if self.validate else []
        request: dict[str, Any] = recorded.view
        if refused:
            return self._error(400, "; ".join(refused))  # as the real API would
        step = self.script.next()
        if step.error is not None:
            return self._error_fault(step.error)
        reply = step.reply
        if reply is None:
            model = request.get("model")
            reply = echo_reply(
                dialect.prompt_text(request),
                dialect.last_user_text(request),
                model=model if isinstance(model, str) and model else "echo",
            )
        if not dialect.is_stream_request(request):
            frames = [Frame(dialect.render_completion(reply))]
            return ScriptedResponse(200, [_JSON], ScriptedBody.from_frames(frames, step.faults))
        frames = dialect.stream_frames(reply, step.faults, request=request)
        if step.faults.framing is not None:
            frames = step.faults.framing.apply(frames)
        self.opened_streams += 1
        body = ScriptedBody.from_frames(frames, step.faults, on_close=self._stream_closed)
        headers = [("content-type", dialect.stream_media_type(request))]
        if headers[0][1].startswith("text/event-stream"):
            headers.append(("cache-control", "no-cache"))
        return ScriptedResponse(200, headers, body)

    def _token_count(self, recorded: RecordedRequest) -> ScriptedResponse:
        if self.count_error is not None:
            return self._error_fault(self.count_error)
        if not isinstance(recorded.body, dict):
            return self._error(400, "the request body must be a JSON object")
        refused = self.dialect.validate_count_request(recorded.view) if self.validate else []
        if refused:
            return self._error(400, "; ".join(refused))
        return ScriptedResponse(
            200, [_JSON], _whole(self.dialect.render_token_count(recorded.view))
        )

    def _stream_closed(self) -> None:
        self.closed_streams += 1

    # -- httpx transport -------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path = request.url.raw_path.decode("ascii")
        response = await self.handle(request.method, path, request.headers, body)
        return httpx.Response(
            response.status, headers=response.headers, stream=response.body, request=request
        )

    # -- ASGI app --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the script as an ASGI app on asyncio (uvicorn, ``httpx.ASGITransport`` ...)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"ScriptedUpstream serves HTTP only, not {scope['type']!r}")
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        # The path as sent (percent-escapes kept), as the httpx transport sees it: a signed
        # request's signature covers the escaped form.
        raw_path: bytes | None = scope.get("raw_path")
        path: str = raw_path.decode("latin-1") if raw_path else scope.get("path") or "/"
        query: bytes = scope.get("query_string") or b""
        if query:
            path = f"{path}?{query.decode('latin-1')}"
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        response = await self.handle(scope["method"], path, headers, b"".join(chunks))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
                ],
            }
        )
        await _send_body(response.body, receive, send)


def _whole(body: bytes) -> ScriptedBody:
    return ScriptedBody([body])


def _mask_query(query: str) -> str:
    """``query`` with the value of a ``key`` parameter (Gemini's key in the URL) masked."""
    if "key=" not in query:
        return query
    return "&".join(
        f"key={REDACTED}" if part.startswith("key=") else part for part in query.split("&")
    )


def _mask(headers: Mapping[str, str]) -> dict[str, str]:
    masked: dict[str, str] = {}
    for name, value in headers.items():
        if name in _SECRET_HEADERS:
            scheme, sep, token = value.partition(" ")
            named = sep and token and scheme.replace("-", "").isalnum() and scheme[:1].isalpha()
            value = f"{scheme} {REDACTED}" if named else REDACTED
        masked[name] = value
    return masked


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send_body(body: ScriptedBody, receive: Receive, send: Send) -> None:
    """Send ``body`` piece by piece; stop (and close it) when the client goes away."""

    async def pump() -> None:
        async for piece in body:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    sender = asyncio.ensure_future(pump())
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        client_left = watcher.done() and not watcher.cancelled()
        for task in (sender, watcher):
            task.cancel()
        await asyncio.gather(sender, watcher, return_exceptions=True)
        await body.aclose()
    failure = None if client_left or sender.cancelled() else sender.exception()
    if failure is not None:
        # The scripted cut: the server drops the connection mid-body.
        raise failure
