"""``malformed-200``: a 200 whose body is not the wire's answer is a provider error.

A proxy or a load balancer answers 200 with an HTML page; a connection cut at the wrong
moment leaves half a body; a broken or hostile upstream sends JSON of the wrong type, or
nested too deep for a recursive parser. ``complete`` must raise
:class:`~provara_kit.errors.MalformedResponseError` for each (the gateway's 502, after
which it falls back): never return an answer, never raise an untyped exception (the
gateway's 500) nor a bare ``ValueError`` (which the gateway reads as the client's bad
request, a 400).

A stream answered with an HTML page, or carrying one frame that is not the wire's JSON
(cut short, HTML, nested 100,000 deep) between good ones, ends in a provider error with
no meta: skipping the frame would lose its text in silence and still bill the stream as
complete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

import httpx

from conformance.checks.registry import check
from conformance.context import CheckContext, Findings
from provara_kit.errors import MalformedResponseError, ProviderError
from provara_kit.testing import CannedReply, ScriptedUpstream, StreamFaults, WireDialect
from provara_kit.types import ProvaraMeta, TextDelta

__all__ = ["BODIES", "FRAMES", "malformed_200"]

_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>502 Bad Gateway</h1><hr>nginx</body></html>\n"
)
_DEPTH: Final = 100_000
_DEEP: Final = b'{"choices": ' + b"[" * _DEPTH + b"]" * _DEPTH + b"}"

BODIES: Final[dict[str, Callable[[bytes], tuple[bytes, str]]]] = {
    "an HTML page": lambda answer: (_PAGE, "text/html; charset=utf-8"),
    "an empty body": lambda answer: (b"", "application/json"),
    "the answer cut in half": lambda answer: (answer[: len(answer) // 2], "application/json"),
    "a JSON array": lambda answer: (b"[]", "application/json"),
    "a JSON string": lambda answer: (b'"OK"', "application/json"),
    "JSON null": lambda answer: (b"null", "application/json"),
    "an empty JSON object": lambda answer: (b"{}", "application/json"),
    "JSON nested 100,000 deep": lambda answer: (_DEEP, "application/json"),
    "bytes that are not UTF-8": lambda answer: (b"\xff\xfe\x00\x81garbage", "application/json"),
}
"""The complete-answer bodies, made from the wire's real answer to the same request."""

FRAMES: Final[dict[str, Callable[[bytes], bytes]]] = {
    "a frame cut short": lambda payload: payload[: max(1, len(payload) // 2)],
    "a frame of HTML": lambda payload: _PAGE.strip(),
    "a frame nested 100,000 deep": lambda payload: _DEEP,
}
"""What replaces the JSON of the stream's second content frame (the rest is intact)."""


class _Rewritten(httpx.AsyncBaseTransport):
    """The scripted upstream, with every answer's body swapped by ``rewrite``."""

    def __init__(
        self,
        upstream: ScriptedUpstream,
        rewrite: Callable[[bytes, Mapping[str, Any]], tuple[bytes, str]],
    ) -> None:
        self.upstream = upstream
        self.rewrite = rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.upstream.handle_async_request(request)
        body = await response.aread()
        if response.status_code != 200:
            return response
        content, media_type = self.rewrite(body, self.upstream.last_request.view)
        return httpx.Response(200, headers={"content-type": media_type}, content=content)


def _swapped(frame: bytes, swap: Callable[[bytes], bytes]) -> bytes | None:
    """``frame`` with its JSON payload replaced by ``swap(payload)``, in the frame's own
    format (``None`` when the frame holds no JSON this knows how to find)."""
    start, end = frame.find(b"{"), frame.rfind(b"}")
    if frame[:4].isascii() and frame[:1] != b"\x00" and 0 <= start < end:  # SSE, NDJSON
        return frame[:start] + swap(frame[start : end + 1]) + frame[end + 1 :]
    # An AWS event-stream message: the payload re-framed under the same event type.
    from provara_kit.framings.event_stream import EventStreamDecoder
    from provara_kit.testing.event_stream import event

    try:
        messages = EventStreamDecoder().feed(frame)
    except (ValueError, RuntimeError):
        return None
    if len(messages) != 1 or messages[0].event_type is None:
        return None
    return event(messages[0].event_type, swap(messages[0].payload))


def _stream_body(
    dialect: WireDialect,
    reply: CannedReply,
    view: Mapping[str, Any],
    swap: Callable[[bytes], bytes],
) -> bytes | None:
    """The wire's stream of ``reply``, its second content frame's JSON swapped (``None``
    when the stream has no second content frame holding JSON)."""
    rendered = dialect.stream_frames(reply, StreamFaults(), request=view)
    content = [i for i, frame in enumerate(rendered) if frame.chunk is not None]
    if len(content) < 2:
        return None
    index = content[1]
    frames = [frame.data for frame in rendered]
    swapped = _swapped(frames[index], swap)
    if swapped is None:
        return None
    return b"".join([*frames[:index], swapped, *frames[index + 1 :]])


async def _complete_cases(ctx: CheckContext, found: Findings, reply: CannedReply) -> None:
    for label, make in BODIES.items():
        where = f"200 with {label} (complete)"
        wrap = _wrapper(partial(_whole_body, make))
        async with ctx.scripted(reply=reply, wrap=wrap) as (provider, _upstream):
            try:
                response = await provider.complete(ctx.request())
            except MalformedResponseError:
                continue
            except Exception as exc:  # judged here, whatever it is
                found.fail(
                    f"{where}: raised {type(exc).__name__} ({str(exc)[:120]}), "
                    "expected MalformedResponseError"
                )
            else:
                found.fail(
                    f"{where}: returned an answer (text {response.text!r}, finish_reason "
                    f"{response.finish_reason!r}), expected MalformedResponseError"
                )


def _whole_body(
    make: Callable[[bytes], tuple[bytes, str]], body: bytes, view: Mapping[str, Any]
) -> tuple[bytes, str]:
    return make(body)


def _wrapper(
    rewrite: Callable[[bytes, Mapping[str, Any]], tuple[bytes, str]],
) -> Callable[[ScriptedUpstream], httpx.AsyncBaseTransport]:
    return lambda upstream: _Rewritten(upstream, rewrite)


async def _stream_case(
    ctx: CheckContext,
    found: Findings,
    where: str,
    reply: CannedReply,
    rewrite: Callable[[bytes, Mapping[str, Any]], tuple[bytes, str]],
) -> None:
    events: list[Any] = []
    error: BaseException | None = None
    async with ctx.scripted(reply=reply, wrap=_wrapper(rewrite)) as (provider, _upstream):
        try:
            async with provider.complete_stream(ctx.request()) as stream:
                async for event in stream:
                    events.append(event)
        except Exception as exc:  # judged here, whatever it is
            error = exc
    metas = [e for e in events if isinstance(e, ProvaraMeta)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    if error is None:
        found.fail(
            f"{where}: ended cleanly with text {text!r} and {len(metas)} meta event(s), "
            "expected a provider error"
        )
        return
    if not isinstance(error, ProviderError):
        found.fail(
            f"{where}: raised {type(error).__name__} ({str(error)[:120]}), "
            "expected a provider error"
        )
    found.expect(not metas, f"{where}: a _provara meta event before the error")
    found.expect(
        reply.text.startswith(text),
        f"{where}: text {text!r} is not what the frames before the bad one carried",
    )


async def _stream_cases(ctx: CheckContext, found: Findings, reply: CannedReply) -> None:
    dialect = ctx.target.dialect

    def page(body: bytes, view: Mapping[str, Any]) -> tuple[bytes, str]:
        return _PAGE, "text/html; charset=utf-8"

    await _stream_case(ctx, found, "200 with an HTML page (stream)", reply, page)
    for label, swap in FRAMES.items():
        unswappable: list[bool] = []

        def rewrite(
            body: bytes,
            view: Mapping[str, Any],
            swap: Callable[[bytes], bytes] = swap,
            unswappable: list[bool] = unswappable,
        ) -> tuple[bytes, str]:
            content = _stream_body(dialect, reply, view, swap)
            if content is None:
                unswappable.append(True)
                return body, dialect.stream_media_type(view)
            return content, dialect.stream_media_type(view)

        case = Findings()
        await _stream_case(ctx, case, f"{label} (stream)", reply, rewrite)
        if not unswappable:  # a stream with no second frame of JSON has nothing to swap
            found.problems += case.problems


async def malformed_200(ctx: CheckContext) -> None:
    found = Findings()
    reply = ctx.reply(("Hello", ", ", "world", "!"), input_tokens=21, output_tokens=4)
    await _complete_cases(ctx, found, reply)
    if ctx.streaming:
        await _stream_cases(ctx, found, reply)
    found.raise_if_any()


check(
    "malformed-200",
    "a 200 whose body is not the wire's answer (HTML, empty, cut, wrong JSON type, nested "
    "too deep, not UTF-8, a bad frame in a stream) is a provider error, never an answer",
)(malformed_200)
