"""One adapter over time: ``stream-reuse`` and ``stream-pacing``.

``stream-reuse`` serves many streams from one adapter instance: in sequence, after a
stream the consumer abandoned or the upstream dropped, and eight at once with stalls that
make them interleave. Each stream must get its own text, tool calls and usage and exactly
one meta, so state kept on the instance (a mapper, a tool-call index set) shows.

``stream-pacing`` checks that events reach the consumer when they arrive, not when the
stream ends, and that ``PROVARA_STREAM_TIMEOUT_MS`` limits each silence, not the whole
stream (a stall over it is ``stream-timeout``'s case).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import httpx

from conformance.checks.registry import check
from conformance.context import FAKE_KEY, CheckContext, Findings, StreamOutcome, run_stream
from provara_kit.errors import ProviderError
from provara_kit.provider import Provider
from provara_kit.testing import CannedReply, ScriptedUpstream, StreamFaults, WireDialect
from provara_kit.types import ChatRequest, TextDelta, ToolCallDelta

__all__ = ["stream_pacing", "stream_reuse"]

ToolCalls = list[tuple[str | None, str | None, str]]

CONCURRENT: Final = 8
STALL_SECONDS: Final = 0.4
GAP_SECONDS: Final = 0.05
SLOW_TIMEOUT_MS: Final = 300


def _reply(ctx: CheckContext, number: int, shape: str = "both") -> CannedReply:
    """Stream ``number``'s own answer: text, tool calls or both, and its own usage."""
    chunks = (f"Answer {number}", f" from stream {number}.") if shape != "tools" else ()
    calls: tuple[tuple[str, str, str], ...] = ()
    if shape != "text":
        calls = ((f"call_{number}", f"tool_{number}", json.dumps({"stream": number})),)
        if number % 2 == 0:
            calls += ((f"call_{number}_b", "lookup", json.dumps({"n": number})),)
    return ctx.reply(
        chunks,
        finish_reason="tool_calls" if calls else "stop",
        tool_calls=calls,
        input_tokens=100 + number,
        output_tokens=20 + number,
    )


class _Routed(httpx.AsyncBaseTransport):
    """Answers each request from the scripted upstream its last user message names."""

    def __init__(self, ctx: CheckContext) -> None:
        self.dialect = ctx.target.dialect
        self.upstreams: dict[str, ScriptedUpstream] = {}

    def add(self, prompt: str, reply: CannedReply, faults: StreamFaults | None = None) -> None:
        self.upstreams[prompt] = ScriptedUpstream(
            self.dialect, reply=reply, faults=faults, expected_api_key=FAKE_KEY
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(await request.aread() or b"{}")
        prompt = self.dialect.last_user_text(body) if isinstance(body, dict) else ""
        upstream = self.upstreams.get(prompt)
        if upstream is None:
            return httpx.Response(404, json={"error": {"message": f"no script for {prompt!r}"}})
        return await upstream.handle_async_request(request)


@dataclass(frozen=True)
class _Expected:
    text: str
    calls: ToolCalls
    tokens: tuple[int, int]


def _expected(reply: CannedReply, dialect: WireDialect) -> _Expected:
    """What stream ``reply`` must give; tool call ids as the dialect reads them from the
    wire (where the wire sends calls without ids, the ids the kit derives for them)."""
    calls: ToolCalls = [(id_, name, args) for id_, name, args in reply.tool_calls]
    read = dialect.read_stream(b"".join(dialect.render_stream(reply)))
    if read is not None and len(read.tool_calls) == len(calls):
        calls = [
            (wire[0], name, args)
            for wire, (_, name, args) in zip(read.tool_calls, calls, strict=True)
        ]
    return _Expected(reply.text, calls, (reply.input_tokens, reply.output_tokens))


def _tool_calls(outcome: StreamOutcome) -> ToolCalls:
    calls: dict[int, list[str | None]] = {}
    for event in outcome.events:
        if isinstance(event, ToolCallDelta):
            call = calls.setdefault(event.index, [None, None, ""])
            call[0] = call[0] or event.id
            call[1] = call[1] or event.name
            call[2] = (call[2] or "") + event.arguments
    return [(c[0], c[1], c[2] or "") for _, c in sorted(calls.items())]


def _judge(found: Findings, where: str, outcome: StreamOutcome, want: _Expected) -> None:
    if not found.expect(outcome.error is None, f"{where}: raised {outcome.error!r}"):
        return
    found.expect(outcome.text == want.text, f"{where}: text {outcome.text!r} != {want.text!r}")
    calls = _tool_calls(outcome)
    found.expect(calls == want.calls, f"{where}: tool calls {calls} != {want.calls}")
    metas = outcome.metas
    if not found.expect(len(metas) == 1, f"{where}: {len(metas)} meta events, expected 1"):
        return
    found.expect(outcome.events[-1] is metas[0], f"{where}: the meta is not the last event")
    got = (metas[0].input_tokens, metas[0].output_tokens)
    found.expect(got == want.tokens, f"{where}: usage {got} != upstream's {want.tokens}")


async def _abandon(provider: Provider, request: ChatRequest) -> None:
    """Stop reading at the first tool-call (or text) event, as a client that goes away."""
    try:
        async with provider.complete_stream(request) as stream:
            async for event in stream:
                if isinstance(event, ToolCallDelta | TextDelta):
                    break
    except ProviderError:
        pass


def _cut_midway(ctx: CheckContext, reply: CannedReply) -> StreamFaults:
    body = b"".join(ctx.target.dialect.render_stream(reply))
    return StreamFaults(abort_after_bytes=len(body) * 3 // 4)


async def stream_reuse(ctx: CheckContext) -> None:
    found = Findings()
    routed = _Routed(ctx)
    provider = ctx.target.build(api_key=FAKE_KEY, transport=routed)
    try:
        for number in range(3):
            reply = _reply(ctx, number)
            routed.add(f"sequential {number}", reply)
            outcome = await run_stream(provider, ctx.request(f"sequential {number}"))
            want = _expected(reply, ctx.target.dialect)
            _judge(found, f"sequential stream {number}", outcome, want)
        for label, abandon in (("abandoned by the consumer", True), ("dropped upstream", False)):
            broken = _reply(ctx, 10, "tools")
            faults = None if abandon else _cut_midway(ctx, broken)
            routed.add(f"broken {label}", broken, faults)
            if abandon:
                await _abandon(provider, ctx.request(f"broken {label}"))
            else:
                await run_stream(provider, ctx.request(f"broken {label}"))
            for number, shape in ((11, "text"), (12, "both")):
                reply = _reply(ctx, number, shape)
                routed.add(f"after {label} {number}", reply)
                outcome = await run_stream(provider, ctx.request(f"after {label} {number}"))
                want = _expected(reply, ctx.target.dialect)
                _judge(found, f"stream after one {label} ({shape})", outcome, want)
        wanted = {}
        for number in range(20, 20 + CONCURRENT):
            reply = _reply(ctx, number, ("both", "text", "tools")[number % 3])
            stall = 1 if number % 2 else len(reply.chunks)
            routed.add(
                f"concurrent {number}",
                reply,
                StreamFaults(stall_after_chunks=stall, stall_seconds=0.02),
            )
            wanted[number] = _expected(reply, ctx.target.dialect)
        outcomes = await asyncio.gather(
            *(run_stream(provider, ctx.request(f"concurrent {n}")) for n in wanted)
        )
        for (number, want), outcome in zip(wanted.items(), outcomes, strict=True):
            _judge(found, f"concurrent stream {number - 20} of {CONCURRENT}", outcome, want)
    finally:
        await provider.aclose()
    open_streams = sum(upstream.open_streams for upstream in routed.upstreams.values())
    found.expect(open_streams == 0, f"{open_streams} upstream responses were left open")
    found.raise_if_any()


class _PacedBody(httpx.AsyncByteStream):
    """A streamed body with a pause before every piece after the first."""

    def __init__(self, inner: httpx.AsyncByteStream, gap: float) -> None:
        self.inner = inner
        self.gap = gap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        first = True
        async for piece in self.inner:
            if not first:
                await asyncio.sleep(self.gap)
            first = False
            yield piece

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Paced(httpx.AsyncBaseTransport):
    """A scripted upstream whose streams arrive slowly but steadily."""

    def __init__(self, upstream: ScriptedUpstream, gap: float) -> None:
        self.upstream = upstream
        self.gap = gap

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.upstream.handle_async_request(request)
        stream = response.stream
        if not isinstance(stream, httpx.AsyncByteStream):
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_PacedBody(stream, self.gap),
            request=request,
        )


async def _arrivals(provider: Provider, request: ChatRequest) -> tuple[list[float], float]:
    """When each text event reached the consumer, and when the stream ended."""
    arrivals: list[float] = []
    async with provider.complete_stream(request) as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                arrivals.append(time.perf_counter())
    return arrivals, time.perf_counter()


async def _prompt_delivery(found: Findings, ctx: CheckContext) -> None:
    reply = ctx.reply(("One", " two", " three", " four"))
    faults = StreamFaults(stall_after_chunks=2, stall_seconds=STALL_SECONDS)
    async with ctx.scripted(reply=reply, faults=faults) as (provider, _upstream):
        try:
            arrivals, ended = await _arrivals(provider, ctx.request())
        except ProviderError as exc:
            found.fail(f"a stream that stalls {STALL_SECONDS:g} s raised {exc!r}")
            return
    if not found.expect(len(arrivals) >= 2, f"{len(arrivals)} text events from 4 chunks"):
        return
    # The stall sits between chunk 1 and chunk 2: a stream passed on as it arrives has
    # handed over chunk 1 at least STALL_SECONDS before the end. The margin is generous.
    early = ended - arrivals[1]
    found.expect(
        early >= STALL_SECONDS / 2,
        f"the text before a {STALL_SECONDS * 1000:.0f} ms stall reached the consumer only "
        f"{early * 1000:.0f} ms before the stream ended: events were held back until the "
        "end instead of passed on as they arrived",
    )


async def _slow_but_steady(found: Findings, ctx: CheckContext) -> None:
    reply = ctx.reply(tuple(f" piece {n}" for n in range(8)))
    upstream = ScriptedUpstream(ctx.target.dialect, reply=reply, expected_api_key=FAKE_KEY)
    provider = ctx.target.build(
        api_key=FAKE_KEY,
        transport=_Paced(upstream, GAP_SECONDS),
        stream_timeout_ms=SLOW_TIMEOUT_MS,
    )
    started = time.perf_counter()
    try:
        outcome = await run_stream(provider, ctx.request())
    finally:
        await provider.aclose()
    took = time.perf_counter() - started
    what = (
        f"a stream with a {GAP_SECONDS * 1000:.0f} ms pause before every read "
        f"({took:.2f} s in all) with PROVARA_STREAM_TIMEOUT_MS={SLOW_TIMEOUT_MS}"
    )
    if outcome.error is not None:
        found.fail(
            f"{what} raised {type(outcome.error).__name__}: the limit must apply to each "
            "silence, not to the whole stream"
        )
        return
    found.expect(outcome.text == reply.text, f"{what}: text {outcome.text!r} != {reply.text!r}")
    found.expect(len(outcome.metas) == 1, f"{what}: {len(outcome.metas)} meta events")
    found.expect(
        took * 1000 > SLOW_TIMEOUT_MS,
        f"{what}: finished within the limit, so the limit was not exercised",
    )


async def stream_pacing(ctx: CheckContext) -> None:
    ctx.needs_streaming("the whole answer arrives at once from one completion: no pace to keep")
    found = Findings()
    await _prompt_delivery(found, ctx)
    await _slow_but_steady(found, ctx)
    found.raise_if_any()


check(
    "stream-reuse",
    "one adapter serves streams in sequence, after aborts and concurrently, each with its "
    "own text, tool calls, usage and one meta",
)(stream_reuse)
check(
    "stream-pacing",
    "events reach the consumer as they arrive; a slow but steady stream does not time out",
)(stream_pacing)
