"""Stream endings and content: ``stream-aborted``, ``stream-timeout``, ``empty-chunk-filter``,
``early-close``."""

from __future__ import annotations

from conformance.checks.registry import check
from conformance.context import CheckContext, Findings, run_stream
from provara_kit.errors import ProviderError, StreamAbortedError, StreamTimeoutError
from provara_kit.testing import StreamFaults
from provara_kit.types import ProvaraMeta, ReasoningDelta, TextDelta, ToolCallDelta


def _first_content_offset(ctx: CheckContext) -> tuple[int, int]:
    """Byte offset where the first content frame starts, and its length."""
    frames = ctx.target.dialect.stream_frames(ctx.reply(), StreamFaults())
    offset = 0
    for frame in frames:
        if frame.chunk is not None:
            return offset, len(frame.data)
        offset += len(frame.data)
    raise AssertionError("the dialect renders no content frame")


async def stream_aborted(ctx: CheckContext) -> None:
    if not ctx.streaming:
        await _cut_completions(ctx)
        return
    found = Findings()
    start, length = _first_content_offset(ctx)
    cases = {
        "connection dropped after the first byte": StreamFaults(abort_after_bytes=1),
        "connection dropped in the middle of an event": StreamFaults(
            abort_after_bytes=start + length // 2
        ),
        "body ends (clean EOF) in the middle of an event": StreamFaults(
            abort_after_bytes=start + length // 2, abort_with_error=False
        ),
        "body ends after the last content, before the terminal marker": StreamFaults(
            omit_terminal=True
        ),
        "upstream error event after the first content": StreamFaults(error_event_after=1),
    }
    corruption = ctx.target.dialect.corruption()
    if corruption is not None:
        label = f"a message that fails the framing's integrity check ({corruption.label})"
        cases[label] = StreamFaults(framing=corruption)
    for label, faults in cases.items():
        async with ctx.scripted(faults=faults) as (provider, upstream):
            outcome = await run_stream(provider, ctx.request())
            ended = type(outcome.error).__name__ if outcome.error else "a clean end"
            found.expect(
                isinstance(outcome.error, StreamAbortedError),
                f"{label}: ended with {ended}, expected StreamAbortedError",
            )
            found.expect(not outcome.metas, f"{label}: a _provara meta event was yielded")
            found.expect(
                upstream.open_streams == 0, f"{label}: the upstream response was left open"
            )
            said = ctx.target.dialect.stream_error_text
            if faults.error_event_after is not None and said and outcome.error is not None:
                found.expect(
                    said in str(outcome.error),
                    f"{label}: the abort does not carry the upstream's message {said!r} "
                    f"({outcome.error})",
                )
    found.raise_if_any()


async def _cut_completions(ctx: CheckContext) -> None:
    """Streaming off: a completion cut short fails the stream with the completion's typed
    error before any event (nothing was sent, so there is nothing to abort); a missing
    terminal marker or an in-stream error event has no meaning for a whole body."""
    found = Findings()
    body = ctx.target.dialect.render_completion(ctx.reply())
    cases = {
        "connection dropped after the first byte of the completion": StreamFaults(
            abort_after_bytes=1
        ),
        "connection dropped in the middle of the completion": StreamFaults(
            abort_after_bytes=len(body) // 2
        ),
        "completion body ends (clean EOF) in the middle": StreamFaults(
            abort_after_bytes=len(body) // 2, abort_with_error=False
        ),
    }
    for label, faults in cases.items():
        async with ctx.scripted(faults=faults) as (provider, upstream):
            outcome = await run_stream(provider, ctx.request())
            ended = type(outcome.error).__name__ if outcome.error else "a clean end"
            found.expect(
                isinstance(outcome.error, ProviderError)
                and not isinstance(outcome.error, StreamAbortedError),
                f"{label} (streaming off): ended with {ended}, expected the completion's "
                "typed error (nothing was streamed, so not StreamAbortedError)",
            )
            found.expect(
                not outcome.events,
                f"{label} (streaming off): {len(outcome.events)} events were yielded before "
                "the error",
            )
            found.expect(
                upstream.open_streams == 0, f"{label}: the upstream response was left open"
            )
    found.raise_if_any()


async def stream_timeout(ctx: CheckContext) -> None:
    ctx.needs_streaming(
        "no upstream stream is read, so none can stall; the completion's HTTP timeouts apply"
    )
    found = Findings()
    faults = StreamFaults(stall_after_chunks=1, stall_seconds=2.0)
    async with ctx.scripted(faults=faults, stream_timeout_ms=100) as (provider, upstream):
        outcome = await run_stream(provider, ctx.request())
        found.expect(
            isinstance(outcome.error, StreamTimeoutError),
            f"a 2 s stall with PROVARA_STREAM_TIMEOUT_MS=100 ended with "
            f"{type(outcome.error).__name__ if outcome.error else 'a clean end'}, "
            "expected StreamTimeoutError",
        )
        found.expect(not outcome.metas, "a _provara meta event was yielded after the stall")
        found.expect(upstream.open_streams == 0, "the upstream response was left open")
    # The terminal marker ends the stream; a connection kept open after it must not matter.
    if ctx.target.dialect.has_terminal_marker:
        await _held_open(ctx, found)
    found.raise_if_any()


async def _held_open(ctx: CheckContext, found: Findings) -> None:
    held = StreamFaults(hold_open=True, stall_seconds=2.0)
    async with ctx.scripted(faults=held, stream_timeout_ms=300) as (provider, upstream):
        outcome = await run_stream(provider, ctx.request())
        found.expect(
            outcome.error is None and len(outcome.metas) == 1,
            "a connection held open after the terminal marker ended the stream with "
            f"{type(outcome.error).__name__ if outcome.error else 'a clean end'} and "
            f"{len(outcome.metas)} meta events: the stream must end at the marker",
        )
        found.expect(upstream.open_streams == 0, "the held-open response was left open")


async def empty_chunk_filter(ctx: CheckContext) -> None:
    found = Findings()
    reply = ctx.reply(("", "Hel", "", "lo", " there"))
    for label, faults in (
        (
            "empty first/interior chunks, role-only chunks, keep-alives",
            StreamFaults(empty_chunks=True),
        ),
        ("the same, re-chunked into 7-byte reads", StreamFaults(empty_chunks=True, split_bytes=7)),
    ):
        async with ctx.scripted(reply=reply, faults=faults) as (provider, _upstream):
            outcome = await run_stream(provider, ctx.request())
        if not found.expect(outcome.error is None, f"{label}: raised {outcome.error!r}"):
            continue
        for index, event in enumerate(outcome.content):
            if isinstance(event, TextDelta | ReasoningDelta):
                found.expect(event.text, f"{label}: event {index} is empty content {event!r}")
            elif isinstance(event, ToolCallDelta):
                found.expect(
                    event.arguments or event.id or event.name,
                    f"{label}: event {index} is an empty tool-call delta",
                )
            else:
                found.fail(f"{label}: event {index} is not a content event: {event!r}")
        found.expect(
            outcome.text == reply.text, f"{label}: text {outcome.text!r} != {reply.text!r}"
        )
        found.expect(len(outcome.metas) == 1, f"{label}: {len(outcome.metas)} meta events")
    found.raise_if_any()


async def early_close(ctx: CheckContext) -> None:
    found = Findings()
    async with ctx.scripted() as (provider, upstream):
        async with provider.complete_stream(ctx.request()) as stream:
            async for event in stream:
                found.expect(not isinstance(event, ProvaraMeta), "the first event was the meta")
                break
        found.expect(
            upstream.open_streams == 0,
            "stopping after the first event left the upstream response open",
        )
    found.raise_if_any()


check(
    "stream-aborted",
    "drops, truncation, a missing terminal marker or an error event raise, with no meta",
)(stream_aborted)
check("stream-timeout", "a stall over PROVARA_STREAM_TIMEOUT_MS raises stream-timeout")(
    stream_timeout
)
check(
    "empty-chunk-filter",
    "empty, role-only and keep-alive chunks are never yielded as content",
)(empty_chunk_filter)
check("early-close", "a consumer that stops early closes the upstream response")(early_close)
