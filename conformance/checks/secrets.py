"""``secret-scrub``: the API key never surfaces, whatever path an error takes.

Each scenario scripts one way a request can fail with the key in what comes back: an
error status whose message echoes it, an in-stream error event, a malformed 200 body,
transport errors (refused, reset, timed out) whose text quotes it, a stall past
``PROVARA_STREAM_TIMEOUT_MS``. For ``complete``, a stream and ``discover_models``, the
error must not show the key in its ``str``, ``repr``, ``args`` or notes, nor in any
exception a traceback shows with it (``__cause__``, or ``__context__`` unless
suppressed with ``from None``); neither may ``repr`` of the provider or of the stream,
nor any log record emitted meanwhile, at any level.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Final

import httpx

from conformance.checks.registry import check
from conformance.checks.status_errors import leaked
from conformance.context import FAKE_KEY, CheckContext, Findings
from provara_kit.provider import Provider
from provara_kit.testing import StreamFaults, WireDialect

__all__ = ["secret_scrub"]

ECHO: Final = f"Incorrect API key provided: {FAKE_KEY}."
Handler = Callable[[httpx.Request], httpx.Response]


def _is_models(request: httpx.Request, dialect: WireDialect) -> bool:
    return request.url.path.rstrip("/").endswith(dialect.models_path)


def _status_echo(dialect: WireDialect) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, content=dialect.render_error(401, ECHO))

    return handle


def _sse(body: bytes | httpx.AsyncByteStream) -> httpx.Response:
    headers = {"content-type": "text/event-stream"}
    if isinstance(body, bytes):
        return httpx.Response(200, headers=headers, content=body)
    return httpx.Response(200, headers=headers, stream=body)


def _stream_error_echo(ctx: CheckContext) -> Handler:
    dialect = ctx.target.dialect
    frames = dialect.render_stream(ctx.reply(), StreamFaults(error_event_after=1))
    body = b"".join([*frames[:-1], dialect.render_stream_error(ECHO)])
    return lambda request: _sse(body)


def _malformed(dialect: WireDialect) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        page = f"<html>502 Bad Gateway (upstream rejected key {FAKE_KEY})</html>"
        if b'"stream":true' in request.content.replace(b" ", b""):
            return _sse(f"data: {page}\n\n".encode())
        headers = {"content-type": "application/json"}
        return httpx.Response(200, headers=headers, content=page.encode())

    return handle


def _raises(kind: type[httpx.TransportError], what: str) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        raise kind(
            f"{what} ({request.method} {request.url}, x-api-key: {FAKE_KEY})", request=request
        )

    return handle


class _ResetBody(httpx.AsyncByteStream):
    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        raise httpx.ReadError(f"connection reset by peer (Authorization: Bearer {FAKE_KEY})")


def _reset_midway(ctx: CheckContext) -> Handler:
    first = ctx.target.dialect.render_stream(ctx.reply())[0]
    return lambda request: _sse(_ResetBody(first))


@dataclass(frozen=True)
class _Scenario:
    label: str
    handler: Handler | None  # None: the scripted upstream stalls past the stream timeout
    modes: tuple[str, ...]


def _scenarios(ctx: CheckContext) -> list[_Scenario]:
    dialect = ctx.target.dialect
    every = ("complete", "stream", "discover_models")
    return [
        _Scenario("HTTP 401 echoing the key", _status_echo(dialect), every),
        _Scenario("in-stream error event echoing the key", _stream_error_echo(ctx), ("stream",)),
        _Scenario("malformed 200 body echoing the key", _malformed(dialect), every),
        _Scenario(
            "connection refused quoting the key",
            _raises(httpx.ConnectError, "[Errno 111] Connection refused"),
            every,
        ),
        _Scenario("read timeout quoting the key", _raises(httpx.ReadTimeout, "timed out"), every),
        _Scenario("connection reset mid-stream quoting the key", _reset_midway(ctx), ("stream",)),
        _Scenario("stall past PROVARA_STREAM_TIMEOUT_MS", None, ("stream",)),
    ]


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception a traceback shows with it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__suppress_context__:
            current = None
        else:
            current = current.__context__


def _judge_error(found: Findings, where: str, error: BaseException) -> None:
    for depth, exc in enumerate(_chain(error)):
        owner = "the error's" if depth == 0 else f"the chained {type(exc).__name__}'s"
        views = {
            "str": str(exc),
            "repr": repr(exc),
            "args": repr(exc.args),
            "notes": repr(getattr(exc, "__notes__", [])),
        }
        for label, text in views.items():
            if leaked(text):
                found.fail(f"{where}: the API key leaks into {owner} {label}")
                return
    if leaked("".join(traceback.format_exception(error))):
        found.fail(f"{where}: the API key leaks into the error's traceback")


async def _run(
    found: Findings, where: str, provider: Provider, ctx: CheckContext, mode: str
) -> None:
    try:
        if mode == "complete":
            await provider.complete(ctx.request())
        elif mode == "discover_models":
            await provider.discover_models()
        else:
            stream = provider.complete_stream(ctx.request())
            if leaked(repr(stream)):
                found.fail(f"{where}: the API key leaks into repr(stream)")
            async with stream:
                async for _event in stream:
                    pass
    except Exception as exc:  # every error is judged, typed or not
        _judge_error(found, where, exc)


class _Records(logging.Handler):
    """Every log record, formatted with its exception, while the check runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.leaks: dict[tuple[str, str], None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a broken format string still shows its arguments
            text = f"{record.msg!r} {record.args!r}"
        if leaked(text):
            self.leaks[(record.levelname, record.name)] = None


async def _scenario(found: Findings, ctx: CheckContext, scenario: _Scenario) -> None:
    for mode in scenario.modes:
        where = f"{scenario.label} ({mode})"
        if scenario.handler is None:
            faults = StreamFaults(stall_after_chunks=1, stall_seconds=2.0)
            async with ctx.scripted(faults=faults, stream_timeout_ms=100) as (provider, _up):
                await _run(found, where, provider, ctx, mode)
                if leaked(repr(provider)):
                    found.fail(f"{where}: the API key leaks into repr(provider)")
            continue
        transport = httpx.MockTransport(scenario.handler)
        provider = ctx.target.build(api_key=FAKE_KEY, transport=transport)
        try:
            await _run(found, where, provider, ctx, mode)
            if leaked(repr(provider)):
                found.fail(f"{where}: the API key leaks into repr(provider)")
        finally:
            await provider.aclose()


async def secret_scrub(ctx: CheckContext) -> None:
    found = Findings()
    records = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        for scenario in _scenarios(ctx):
            await _scenario(found, ctx, scenario)
    finally:
        root.removeHandler(records)
        root.setLevel(level)
    for level_name, logger in records.leaks:
        found.fail(f"the API key leaks into a {level_name} log record from {logger!r}")
    found.raise_if_any()


check(
    "secret-scrub",
    "no API key in any error (message, repr, args, notes, chain), repr, stream or log "
    "record, on every failure path",
)(secret_scrub)
