"""The ``local`` provider: the SDK's scripted upstream, served over real HTTP, so the gateway
answers with no provider keys at all.

At start-up :class:`LocalServer` binds a second uvicorn server to a free loopback port and
serves :class:`LocalUpstream` there: ``/openai/v1/...`` speaks the OpenAI Chat Completions
wire, ``/anthropic/v1/...`` the Anthropic Messages wire, and both echo the last user
message (streamed or not). The ``local`` provider reaches them through the ordinary
adapters, so a request to ``local/echo`` crosses the same pipeline, HTTP client and
stream rules as one to a real provider. Both models are priced at exactly $0
(free, not unpriced).

Faults for tests and demos: a client may send ``x-provara-local-fault`` with a request to a
``local/`` model (it means nothing for any other provider), a ``;``-separated list of

* ``abort``: the connection drops right after the first content chunk (halfway through
  the body, unstreamed);
* ``error-event``: the wire's in-stream error event after the first content chunk (streams);
* ``truncate``: the stream never sends its terminal marker (streams);
* ``stall=MS``: silence for MS milliseconds (at most 60000) before the first content chunk;
* ``status=CODE`` and optionally ``retry-after=SECONDS``: an error status instead of an answer;
* ``times=N``: only the first N attempts at a model of one request fail (the gateway's
  retries after them are answered), to script a fault that clears up;
* ``model=ID``: only attempts at local model ID fail (``echo`` or ``echo-anthropic``), to
  fail one model of a fallback chain.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from provara_kit.provider import Provider
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.testing import (
    CannedReply,
    ErrorFault,
    Frame,
    ScriptedUpstream,
    StreamFaults,
    echo_reply,
)

__all__ = [
    "FAULT_HEADER",
    "LOCAL_MODELS",
    "LOCAL_PRICING",
    "LOCAL_PROVIDER",
    "LocalFault",
    "LocalServer",
    "LocalUpstream",
    "build_local_provider",
]

logger = logging.getLogger("reference_gateway")

LOCAL_PROVIDER: Final = "local"
LOCAL_MODELS: Final[Mapping[str, str]] = {
    "echo": "openai-chat",
    "echo-anthropic": "anthropic-messages",
}
"""Local model id -> the wire it is served in."""
LOCAL_PRICING: Final[Mapping[str, tuple[object, object]]] = {
    f"{LOCAL_PROVIDER}/{model}": (0, 0) for model in LOCAL_MODELS
}
"""Explicit zero prices: local answers are free, which is not the same as unpriced."""
FAULT_HEADER: Final = "x-provara-local-fault"

_PREFIXES: Final[Mapping[str, str]] = {"openai-chat": "/openai", "anthropic-messages": "/anthropic"}
_MAX_STALL_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class LocalFault:
    """What the local upstream should break, parsed from ``x-provara-local-fault``."""

    abort: bool = False
    error_event: bool = False
    truncate: bool = False
    stall_ms: int | None = None
    status: int | None = None
    retry_after: int | None = None
    times: int | None = None
    model: str | None = None

    def applies(self, model: str, attempt: int) -> bool:
        """Whether the fault plays for attempt number ``attempt`` (0-based, per model) of a
        request at local ``model``."""
        if self.model is not None and model != self.model:
            return False
        return self.times is None or attempt < self.times

    @classmethod
    def parse(cls, text: str) -> LocalFault:
        """Parse a header value; ``ValueError`` says what is wrong with it."""
        values: dict[str, Any] = {}
        for item in text.split(";"):
            name, has_value, value = (p.strip() for p in item.strip().partition("="))
            name = name.lower()
            if not name:
                continue
            if name in ("abort", "error-event", "truncate"):
                if has_value:
                    raise ValueError(f"fault {name!r} takes no value")
                values[name.replace("-", "_")] = True
                continue
            if name == "model":
                if value not in LOCAL_MODELS:
                    raise ValueError(f"model must be one of {', '.join(LOCAL_MODELS)}")
                values["model"] = value
                continue
            if name not in ("stall", "status", "retry-after", "times"):
                raise ValueError(
                    f"unknown fault {name!r}; use abort, error-event, truncate, stall=MS, "
                    "status=CODE, retry-after=SECONDS, times=N, model=ID"
                )
            if not value.isdigit():
                raise ValueError(f"fault {name!r} needs a whole number, as {name}=N")
            number = int(value)
            if name == "stall":
                if number > _MAX_STALL_MS:
                    raise ValueError(f"stall is at most {_MAX_STALL_MS} ms")
                values["stall_ms"] = number
            elif name == "times":
                values["times"] = number
            elif name == "status":
                if not 400 <= number <= 599:
                    raise ValueError("status must be an error status, 400-599")
                values["status"] = number
            else:
                values["retry_after"] = number
        if "retry_after" in values and "status" not in values:
            raise ValueError("retry-after needs a status")
        if not values.keys() - {"times", "model"}:
            raise ValueError("empty fault list" if not values else "times and model need a fault")
        return cls(**values)

    def header(self) -> str:
        """The canonical header value of what the upstream plays (``times`` and ``model``
        are the gateway's to apply)."""
        parts = [name for name in ("abort", "error_event", "truncate") if getattr(self, name)]
        parts = [p.replace("_", "-") for p in parts]
        if self.stall_ms is not None:
            parts.append(f"stall={self.stall_ms}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.retry_after is not None:
            parts.append(f"retry-after={self.retry_after}")
        return "; ".join(parts)


def _first_content_end(frames: Sequence[Frame]) -> int:
    """Byte offset just after the frame carrying the first content chunk."""
    offset = 0
    for frame in frames:
        offset += len(frame.data)
        if frame.chunk is not None:
            return offset
    return len(frames[0].data) if frames else 0


def _faulted_upstream(dialect: str, fault: LocalFault, body: bytes) -> ScriptedUpstream:
    """A one-off upstream that plays ``fault`` for the request in ``body``."""
    if fault.status is not None:
        return ScriptedUpstream(
            dialect,
            reply=None,
            error=ErrorFault(
                fault.status,
                f"scripted local upstream error ({FAULT_HEADER})",
                retry_after=fault.retry_after,
            ),
        )
    upstream = ScriptedUpstream(dialect, reply=None)
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return upstream  # it answers the wire's 400 itself
    if not isinstance(request, dict):
        return upstream
    wire = upstream.dialect
    model = request.get("model")
    reply: CannedReply = echo_reply(
        wire.prompt_text(request),
        wire.last_user_text(request),
        model=model if isinstance(model, str) and model else "echo",
    )
    cut: int | None = None
    if fault.abort:
        if wire.is_stream_request(request):
            cut = _first_content_end(wire.stream_frames(reply, StreamFaults(), request=request))
        else:
            cut = len(wire.render_completion(reply)) // 2
    faults = StreamFaults(
        omit_terminal=fault.truncate,
        error_event_after=1 if fault.error_event else None,
        abort_after_bytes=cut,
        stall_after_chunks=0 if fault.stall_ms is not None else None,
        stall_seconds=(fault.stall_ms or 0) / 1000,
    )
    return ScriptedUpstream(dialect, reply=reply, faults=faults)


class LocalUpstream:
    """The ASGI app of the local upstream: both wires, echoing, with scriptable faults."""

    def __init__(self) -> None:
        self.active = 0
        """Requests being answered right now (a stream counts until its body is closed)."""
        self._shared = {
            wire: ScriptedUpstream(
                wire,
                reply=None,
                models=[m for m, w in LOCAL_MODELS.items() if w == wire],
                keep_requests=0,  # nothing here reads them back
            )
            for wire in _PREFIXES
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._shared["openai-chat"](scope, receive, send)  # lifespan
            return
        self.active += 1
        try:
            await self._answer(scope, receive, send)
        finally:
            self.active -= 1

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        wire = next((w for w, prefix in _PREFIXES.items() if path.startswith(prefix + "/")), None)
        if wire is None:
            await _not_found(send)
            return
        fault_text = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == FAULT_HEADER.encode()),
            None,
        )
        shared = self._shared[wire]
        if fault_text is None:
            await shared(scope, receive, send)
            return
        body = await _read_body(receive)
        try:
            upstream = _faulted_upstream(wire, LocalFault.parse(fault_text), body)
        except ValueError as exc:
            await _bad_request(send, str(exc))
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await upstream(scope, replay, send)
        except httpx.RemoteProtocolError as exc:
            # The scripted cut: the connection drops. Uvicorn logs an app that raises; the
            # filter below keeps this intended failure out of the error log.
            raise _ScriptedAbort(str(exc)) from None


class _ScriptedAbort(Exception):
    """A connection dropped on purpose by ``x-provara-local-fault: abort``."""


class _DropScriptedAborts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _ScriptedAbort))


_ABORT_FILTER = _DropScriptedAborts()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_json(send: Send, status: int, data: object) -> None:
    body = orjson.dumps(data)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _not_found(send: Send) -> None:
    await _send_json(
        send, 404, {"error": {"message": "unknown local upstream path", "type": "not_found"}}
    )


async def _bad_request(send: Send, message: str) -> None:
    await _send_json(
        send, 400, {"error": {"message": f"bad {FAULT_HEADER}: {message}", "type": "invalid"}}
    )


class _EmbeddedConfig(uvicorn.Config):
    """A uvicorn config that leaves logging alone.

    ``uvicorn.Config`` reconfigures the process-wide loggers when it is built: with
    ``access_log=False`` it empties ``uvicorn.access``, which would silence the outer
    server's access log. Logging belongs to the outer server; the embedded one, with
    ``access_log=False``, simply does not log its own requests.
    """

    def configure_logging(self) -> None:
        pass


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server inside another one's event loop: it leaves signals to the outer
    server and does not announce itself as if it were the gateway."""

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        if not config.loaded:
            config.load()
        self.lifespan = config.lifespan_class(config)
        await self.startup(sockets=sockets)
        if not self.should_exit:
            await self.main_loop()
        if self.started:
            await self.shutdown(sockets=sockets)


class LocalServer:
    """Serves :class:`LocalUpstream` on a free loopback port for the gateway's lifetime."""

    def __init__(self) -> None:
        self.upstream = LocalUpstream()
        self.base_url = ""
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Bind, start serving and return the base URL (``http://127.0.0.1:PORT``)."""
        error_log = logging.getLogger("uvicorn.error")
        if _ABORT_FILTER not in error_log.filters:
            error_log.addFilter(_ABORT_FILTER)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = _EmbeddedConfig(
            self.upstream,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="local-upstream")
        while not server.started:
            if self._task.done():
                sock.close()
                self._task.result()  # raises what stopped it
                raise RuntimeError("the local upstream server stopped during start-up")
            await asyncio.sleep(0.005)
        self.base_url = f"http://127.0.0.1:{port}"
        logger.info("local upstream (provider 'local') on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; waits for open connections (briefly) to finish."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = None
        self._task = None


class _LocalAnthropic(AnthropicProvider):
    """The Anthropic adapter plus fixed extra headers (the fault header)."""

    def __init__(self, *, extra_headers: Mapping[str, str], **kwargs: Any) -> None:
        self._extra_headers = dict(extra_headers)
        super().__init__(**kwargs)

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), **self._extra_headers}


def build_local_provider(
    model: str,
    base_url: str,
    *,
    stream_timeout: float,
    fault: LocalFault | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Provider:
    """The adapter that serves local ``model`` from the upstream at ``base_url``."""
    wire = LOCAL_MODELS[model]
    headers = {FAULT_HEADER: fault.header()} if fault is not None else {}
    if wire == "openai-chat":
        return OpenAICompatibleProvider(
            name=LOCAL_PROVIDER,
            base_url=f"{base_url}/openai/v1",
            api_key=None,
            default_models=("echo",),
            extra_headers=headers,
            stream_timeout=stream_timeout,
            pricing=LOCAL_PRICING,
            transport=transport,
        )
    return _LocalAnthropic(
        extra_headers=headers,
        name=LOCAL_PROVIDER,
        base_url=f"{base_url}/anthropic/v1",
        api_key=None,
        default_models=("echo-anthropic",),
        stream_timeout=stream_timeout,
        pricing=LOCAL_PRICING,
        transport=transport,
    )
