"""Properties over generated input: ``rechunk-invariance`` and ``unicode-roundtrip``.

These run hypothesis inside the check; each example drives the adapter through its own
event loop, so the checks are plain functions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.checks.registry import check
from conformance.context import CheckContext, run_stream
from provara_kit.testing import CannedReply, StreamFaults
from provara_kit.types import ProvaraMeta

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _normalized(ctx: CheckContext, reply: CannedReply, faults: StreamFaults) -> list[Any]:
    async def go() -> list[Any]:
        async with ctx.scripted(reply=reply, faults=faults) as (provider, _upstream):
            outcome = await run_stream(provider, ctx.request())
        if outcome.error is not None:
            raise AssertionError(f"the stream raised {outcome.error!r}")
        # Latencies differ run to run; everything else must not.
        return [
            (e.input_tokens, e.output_tokens, e.finish_reason, e.cost_usd)
            if isinstance(e, ProvaraMeta)
            else e
            for e in outcome.events
        ]

    return asyncio.run(go())


def rechunk_invariance(ctx: CheckContext) -> None:
    reply = ctx.reply(("Olá", ", mundo", " — ", "naïve 🍋 text", "!"))
    whole = _normalized(ctx, reply, StreamFaults())

    @SETTINGS
    @given(split=st.integers(min_value=1, max_value=97), empty=st.booleans())
    def same_events(split: int, empty: bool) -> None:
        events = _normalized(ctx, reply, StreamFaults(split_bytes=split, empty_chunks=empty))
        assert events == whole, (
            f"reading the body in {split}-byte pieces (empty chunks: {empty}) changed the "
            f"events: {events!r} != {whole!r}"
        )

    same_events()


def unicode_roundtrip(ctx: CheckContext) -> None:
    @SETTINGS
    @given(chunks=st.lists(st.text(max_size=24), min_size=1, max_size=6))
    def text_survives(chunks: list[str]) -> None:
        reply = ctx.reply(tuple(chunks))

        async def go() -> tuple[str, str]:
            async with ctx.scripted(reply=reply) as (provider, _upstream):
                outcome = await run_stream(provider, ctx.request())
                if outcome.error is not None:
                    raise AssertionError(f"the stream raised {outcome.error!r}")
                response = await provider.complete(ctx.request())
            return outcome.text, response.text

        streamed, completed = asyncio.run(go())
        assert streamed == reply.text, f"streamed text {streamed!r} != {reply.text!r}"
        assert completed == reply.text, f"completed text {completed!r} != {reply.text!r}"

    text_survives()


check("rechunk-invariance", "any re-chunking of the wire bytes gives the same events")(
    rechunk_invariance  # type: ignore[arg-type]
)
check("unicode-roundtrip", "arbitrary Unicode content arrives unchanged, streamed or not")(
    unicode_roundtrip  # type: ignore[arg-type]
)
