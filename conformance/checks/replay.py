"""``replay-fixtures``: recorded real exchanges play back through the adapter cleanly.

An adapter's own dialect can share its bugs; real recordings cannot. Each fixture must be
played back in full, and what the adapter makes of it must keep the stream rules: a clean
stream ends in exactly one meta, last; a broken one raises a stream error and no meta; no
empty content; an error status becomes the typed error for that status.
"""

from __future__ import annotations

from conformance.checks.registry import check
from conformance.context import (
    FAKE_KEY,
    CheckContext,
    CheckSkipped,
    Findings,
    StreamOutcome,
    run_stream,
)
from conformance.outcome import Outcome, compare_outcome
from conformance.replay import Exchange, Fixture, ReplayTransport
from provara_kit.errors import ProviderError, ProviderStatusError, StreamError
from provara_kit.provider import Provider
from provara_kit.testing.dialects.base import StreamExpectation
from provara_kit.types import ChatRequest, ReasoningDelta, TextDelta


def _is_stream(exchange: Exchange) -> bool:
    body = exchange.request_body
    if isinstance(body, dict) and "stream" in body:
        return bool(body["stream"])
    return exchange.is_stream


async def _play(ctx: CheckContext, fixture: Fixture, found: Findings) -> None:
    transport = ReplayTransport(fixture.exchanges)
    provider = ctx.target.build(api_key=FAKE_KEY, transport=transport)
    async with provider:
        for number, exchange in enumerate(fixture.exchanges, 1):
            where = f"{fixture.name} #{number}"
            request = ctx.request("Replay.")
            try:
                if exchange.method == "GET":
                    await _judge_models(found, where, exchange, provider)
                elif _is_stream(exchange):
                    outcome = await run_stream(provider, request)
                    _judge_stream(found, where, exchange, outcome, ctx, request)
                else:
                    await _judge_complete(found, where, exchange, provider, request, ctx)
            except Exception as exc:  # an untyped error is itself the finding
                found.fail(f"{where}: raised an untyped {type(exc).__name__}: {exc}")
    found.expect(
        not transport.pending,
        f"{fixture.name}: {len(transport.pending)} recorded exchanges were never requested",
    )
    for mismatch in transport.mismatches:
        found.fail(f"{fixture.name}: {mismatch}")


def _judge_stream(
    found: Findings,
    where: str,
    exchange: Exchange,
    outcome: StreamOutcome,
    ctx: CheckContext,
    request: ChatRequest,
) -> None:
    if exchange.status >= 400:
        found.expect(
            isinstance(outcome.error, ProviderStatusError)
            and outcome.error.status_code == exchange.status,
            f"{where}: HTTP {exchange.status} gave {outcome.error!r}",
        )
        return
    for event in outcome.content:
        if isinstance(event, TextDelta | ReasoningDelta):
            found.expect(event.text, f"{where}: an empty content event was yielded")
    if outcome.error is not None:
        found.expect(isinstance(outcome.error, StreamError), f"{where}: {outcome.error!r}")
        found.expect(not outcome.metas, f"{where}: a meta event followed a broken stream")
        return
    found.expect(len(outcome.metas) == 1, f"{where}: {len(outcome.metas)} meta events")
    if outcome.metas:
        found.expect(outcome.events[-1] is outcome.metas[0], f"{where}: the meta is not last")
    expected = ctx.target.dialect.read_stream(exchange.body)
    if expected is not None:
        _compare(found, where, expected, outcome, ctx, request)


def _compare(
    found: Findings,
    where: str,
    expected: StreamExpectation,
    outcome: StreamOutcome,
    ctx: CheckContext,
    request: ChatRequest,
) -> None:
    """Hold the adapter's reading against the dialect's reference reading of the body,
    field by field."""
    ended = "a clean end" if outcome.error is None else type(outcome.error).__name__
    if not expected.clean:
        found.expect(
            outcome.error is not None,
            f"{where}: the recording never finishes cleanly (error event or no terminal "
            f"marker) but the adapter reported {ended}",
        )
        return
    if not found.expect(outcome.error is None, f"{where}: a clean recording gave {ended}"):
        return
    if found.expect(len(outcome.metas) == 1, f"{where}: {len(outcome.metas)} meta events"):
        compare_outcome(found, where, ctx, request, expected, Outcome.of_stream(outcome))


async def _judge_models(
    found: Findings, where: str, exchange: Exchange, provider: Provider
) -> None:
    """A recorded model listing: ``discover_models`` must read it, or raise typed."""
    try:
        models = await provider.discover_models()
    except ProviderError as exc:
        found.expect(exchange.status >= 400, f"{where}: model listing gave {exc!r}")
        return
    if exchange.status < 400:
        found.expect(models, f"{where}: discover_models read no models from the listing")


async def _judge_complete(
    found: Findings,
    where: str,
    exchange: Exchange,
    provider: Provider,
    request: ChatRequest,
    ctx: CheckContext,
) -> None:
    try:
        response = await provider.complete(request)
    except ProviderError as exc:
        ok = (
            exchange.status >= 400
            and isinstance(exc, ProviderStatusError)
            and exc.status_code == exchange.status
        )
        found.expect(ok, f"{where}: HTTP {exchange.status} gave {exc!r}")
        return
    found.expect(exchange.status < 400, f"{where}: HTTP {exchange.status} did not raise")
    expected = ctx.target.dialect.read_completion(exchange.body)
    # An answer the reference reading finds empty (a blocked one) may come back empty.
    empty = expected is not None and not (
        expected.text or expected.tool_calls or expected.reasoning
    )
    found.expect(
        response.text or response.tool_calls or response.reasoning or empty,
        f"{where}: a 200 answer came back with no text and no tool calls",
    )
    if expected is not None:
        compare_outcome(found, where, ctx, request, expected, Outcome.of_response(response))


async def replay_fixtures(ctx: CheckContext) -> None:
    fixtures = ctx.target.recorded_fixtures()
    if not fixtures:
        raise CheckSkipped(
            f"no recorded fixtures for {ctx.target.name}: record some with "
            f"`nox -s conformance -- {ctx.target.name} --live --record`"
        )
    if not ctx.streaming:
        fixtures = [f for f in fixtures if not any(map(_is_stream, f.exchanges))]
        if not fixtures:
            raise CheckSkipped(
                f"streaming is off for {ctx.target.name}: its recordings are all streams, "
                "which it never requests; record a completion to replay one"
            )
    framing = _framing(ctx)
    spoken = [f for f in fixtures if all(_speaks(framing, e) for e in f.exchanges)]
    if not spoken:
        kinds = sorted({str(e.framing) for f in fixtures for e in f.exchanges if e.is_stream})
        raise CheckSkipped(
            f"the recordings of {ctx.target.name} are streams framed as {', '.join(kinds)}; "
            f"this adapter asks for {framing} streams"
        )
    found = Findings()
    for fixture in spoken:
        await _play(ctx, fixture, found)
    found.raise_if_any()


def _framing(ctx: CheckContext) -> str:
    """The name of the framing the adapter's streams are asked for (SSE unless it says)."""
    probe = ctx.target.build(api_key=FAKE_KEY, transport=None)
    return str(getattr(getattr(probe, "framing", None), "name", "sse"))


def _speaks(framing: str, exchange: Exchange) -> bool:
    """Whether the adapter asks for streams framed as ``exchange`` is: a recording in
    another framing (Gemini's array where the adapter asks for ``alt=sse``) answers a
    request this adapter never sends."""
    return not _is_stream(exchange) or exchange.framing in (None, framing)


check(
    "replay-fixtures",
    "recorded real exchanges replay in full and keep the stream rules",
    live=replay_fixtures,
)(replay_fixtures)
