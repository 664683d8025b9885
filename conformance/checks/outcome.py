"""``outcome-fidelity`` and ``sse-framing``: every dimension of an answer comes back whole.

``outcome-fidelity`` walks each dimension of the wire one at a time (every finish reason
the wire has, every way it reports usage, tool calls none/one/parallel/without arguments/
fragmented, reasoning, empty and whitespace-only text), then lets hypothesis combine them;
each answer, completed and streamed, is compared on every field with the dialect's
reference reading of the very body the upstream sent. ``sse-framing`` sends the same
events in every form the event-stream format allows.
"""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conformance.checks.registry import check
from conformance.context import CheckContext, CheckSkipped, Findings, run_stream
from conformance.outcome import Outcome, compare_outcome, expected_from_reply
from provara_kit.errors import StreamAbortedError
from provara_kit.testing import CannedReply, StreamFaults, WireDialect
from provara_kit.testing.dialects.base import StreamExpectation

__all__ = ["dimension_cases", "replies"]

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

_NAMES = ("get_weather", "search_docs", "lookup_order")
_WEATHER = json.dumps({"city": "Lisbon", "unit": "celsius", "days": 3})


def _reply(
    ctx: CheckContext, chunks: tuple[str, ...] = ("Hello", ", world"), **fields: object
) -> CannedReply:
    values: dict[str, object] = {"input_tokens": 1234, "output_tokens": 567}
    values.update(fields)
    return ctx.reply(chunks, **values)


def dimension_cases(ctx: CheckContext) -> dict[str, CannedReply]:
    """One reply per value of each dimension of the target's wire, labelled."""
    dialect = ctx.target.dialect
    cases: dict[str, CannedReply] = {
        "plain text": _reply(ctx),
        "empty text": _reply(ctx, ()),
        "whitespace-only text": _reply(ctx, (" ", "\n", "\t ")),
        "text with leading and trailing spaces": _reply(ctx, ("  Hi", " there  ")),
        "the upstream answers with a dated snapshot of the model": _reply(
            ctx, model=f"{ctx.model}-2025-06-01", id="chatcmpl-9f3Kq2"
        ),
    }
    for reason in dialect.finish_reasons:
        cases[f"finish reason {reason!r}"] = _reply(ctx, wire_finish_reason=reason)
    for mode in dialect.usage_modes:
        cases[f"usage {mode}"] = _reply(ctx, usage=mode)
    if dialect.reports_cached_tokens:
        cases["usage with cached input and reasoning output"] = _reply(
            ctx, cached_input_tokens=1000, reasoning_tokens=300
        )
        cases["cumulative usage with cached input"] = _reply(
            ctx, usage="cumulative", cached_input_tokens=200, reasoning_tokens=100
        )
    call = ("call_w1", "get_weather", _WEATHER)
    cases["one tool call"] = _reply(ctx, (), finish_reason="tool_calls", tool_calls=(call,))
    cases["parallel tool calls, arguments in fragments"] = _reply(
        ctx,
        (),
        finish_reason="tool_calls",
        argument_pieces=4,
        tool_calls=(
            call,
            ("call_s2", "search_docs", json.dumps({"query": 'naïve 🍋 "quoted"'})),
            ("call_o3", "lookup_order", json.dumps({"id": 42, "rush": False, "note": None})),
        ),
    )
    cases["a tool call without arguments"] = _reply(
        ctx, (), finish_reason="tool_calls", tool_calls=(("call_n1", "lookup_order", "{}"),)
    )
    cases["text, then a tool call"] = _reply(
        ctx, ("Let me check.",), finish_reason="tool_calls", tool_calls=(call,)
    )
    if dialect.carries_reasoning:
        cases["reasoning, then text"] = _reply(
            ctx, ("42",), reasoning=("Six times", " seven."), reasoning_tokens=200
        )
    return cases


async def _judge(
    ctx: CheckContext,
    reply: CannedReply,
    where: str,
    found: Findings,
    dialect: WireDialect | None = None,
) -> None:
    dialect = dialect or ctx.target.dialect
    request = ctx.request()
    completed = dialect.read_completion(dialect.render_completion(reply))
    completed = completed or expected_from_reply(dialect, reply)
    async with ctx.scripted(reply=reply, dialect=dialect) as (provider, upstream):
        try:
            response = await provider.complete(request)
        except Exception as exc:  # any error is the finding
            found.fail(f"{where} (complete): raised {type(exc).__name__}: {exc}")
        else:
            compare_outcome(
                found,
                f"{where} (complete)",
                ctx,
                request,
                completed,
                Outcome.of_response(response),
            )
        stream = await run_stream(provider, request)
        sent = upstream.last_request.view
    label = f"{where} (stream)"
    if stream.error is not None or len(stream.metas) != 1:
        found.fail(f"{label}: ended with {stream.error!r} and {len(stream.metas)} meta events")
        return
    compare_outcome(
        found,
        label,
        ctx,
        request,
        # Streaming off, the stream is the completion's answer.
        _stream_expectation(dialect, reply, sent) if ctx.streaming else completed,
        Outcome.of_stream(stream),
    )


async def _aborts(ctx: CheckContext, dialect: WireDialect, prefix: str, found: Findings) -> None:
    """The variant's in-stream error event, after the first content, aborts the stream."""
    faults = StreamFaults(error_event_after=1)
    async with ctx.scripted(reply=_reply(ctx), faults=faults, dialect=dialect) as (provider, _):
        stream = await run_stream(provider, ctx.request())
    found.expect(
        isinstance(stream.error, StreamAbortedError) and not stream.metas,
        f"{prefix}an error event after the first content ended with "
        f"{type(stream.error).__name__ if stream.error else 'a clean end'} and "
        f"{len(stream.metas)} meta events, expected StreamAbortedError and none",
    )


def _stream_expectation(
    dialect: WireDialect, reply: CannedReply, sent: object
) -> StreamExpectation:
    """The reference reading of the stream the upstream sent for the adapter's request."""
    body = b"".join(dialect.render_stream(reply, request=sent if isinstance(sent, dict) else None))
    return dialect.read_stream(body) or expected_from_reply(dialect, reply)


def replies(dialect: WireDialect, model: str) -> st.SearchStrategy[CannedReply]:
    """Replies combining every dimension ``dialect`` has."""
    texts = st.one_of(st.text(max_size=12), st.sampled_from(("", " ", "\n", " \t ")))
    arguments = st.dictionaries(
        st.text(min_size=1, max_size=6),
        st.one_of(st.integers(-5, 5), st.text(max_size=8), st.booleans(), st.none()),
        max_size=3,
    ).map(lambda value: json.dumps(value, ensure_ascii=False))

    @st.composite
    def build(draw: st.DrawFn) -> CannedReply:
        calls = draw(st.lists(st.tuples(st.sampled_from(_NAMES), arguments), max_size=3))
        input_tokens = draw(st.integers(0, 100_000))
        output_tokens = draw(st.integers(0, 20_000))
        reasoning: tuple[str, ...] = ()
        if dialect.carries_reasoning:
            reasoning = tuple(draw(st.lists(st.text(min_size=1, max_size=10), max_size=3)))
        cached = reasoning_tokens = 0
        if dialect.reports_cached_tokens:
            cached = draw(st.integers(0, input_tokens))
            reasoning_tokens = draw(st.integers(0, output_tokens))
        return CannedReply(
            chunks=tuple(draw(st.lists(texts, max_size=4))),
            model=draw(st.sampled_from((model, f"{model}-2025-06-01"))),
            id=draw(
                st.sampled_from(
                    ("resp_scripted", "chatcmpl-9f3Kq2", "msg_01XFDUDYJgAACzvnptvVoYEL")
                )
            ),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usage=draw(st.sampled_from(dialect.usage_modes)),
            wire_finish_reason=draw(st.sampled_from(sorted(dialect.finish_reasons))),
            tool_calls=tuple(
                (f"call_{number}_{name}", name, args) for number, (name, args) in enumerate(calls)
            ),
            argument_pieces=draw(st.integers(1, 4)),
            reasoning=reasoning,
            cached_input_tokens=cached,
            reasoning_tokens=reasoning_tokens,
        )

    return build()


def outcome_fidelity(ctx: CheckContext) -> None:
    found = Findings()

    variants = ctx.target.dialect.wire_variants()

    async def sweep() -> None:
        for variant, dialect in variants.items():
            prefix = "" if len(variants) == 1 or dialect is ctx.target.dialect else f"{variant}: "
            for label, reply in dimension_cases(ctx).items():
                await _judge(ctx, reply, prefix + label, found, dialect)
            if ctx.streaming:  # a completion carries no in-stream error event
                await _aborts(ctx, dialect, prefix, found)

    asyncio.run(sweep())
    found.raise_if_any()
    model = ctx.model
    labels = sorted(variants)

    # Combinations that once slipped past narrower checks stay pinned as examples.
    @SETTINGS
    @given(reply=replies(ctx.target.dialect, model), variant=st.sampled_from(labels))
    @example(
        reply=CannedReply(
            chunks=(" ",),
            model=model,
            usage="cumulative",
            cached_input_tokens=7,
            input_tokens=9,
            reasoning=("a",),
            tool_calls=(("call_0", "search_docs", '{"q": 1}'), ("call_1", "get_weather", "{}")),
            argument_pieces=3,
            wire_finish_reason="length",
        ),
        variant=labels[0],
    )
    def combined(reply: CannedReply, variant: str) -> None:
        combo = Findings()
        asyncio.run(_judge(ctx, reply, f"generated reply ({variant})", combo, variants[variant]))
        if combo.problems:
            raise AssertionError("; ".join(combo.problems) + f" -- for {reply!r}")

    combined()


async def _framed(ctx: CheckContext, reply: CannedReply, faults: StreamFaults) -> Outcome | str:
    async with ctx.scripted(reply=reply, faults=faults) as (provider, _upstream):
        stream = await run_stream(provider, ctx.request())
    if stream.error is not None or len(stream.metas) != 1:
        return f"ended with {stream.error!r} and {len(stream.metas)} meta events"
    return Outcome.of_stream(stream)


def sse_framing(ctx: CheckContext) -> None:
    ctx.needs_streaming("the wire's stream framing is never read, every answer is a completion")
    variants = ctx.target.dialect.framings()
    if not variants:
        raise CheckSkipped(
            f"the {ctx.target.dialect.name} wire's framing leaves a server no choices to "
            "vary (its re-chunking is covered by rechunk-invariance)"
        )
    found = Findings()
    reply = _reply(
        ctx,
        ("Olá", " 🍋", " world"),
        tool_calls=(("call_f1", "get_weather", _WEATHER),),
        argument_pieces=2,
    )

    async def go() -> None:
        plain = await _framed(ctx, reply, StreamFaults())
        if isinstance(plain, str):
            found.fail(f"the plain stream {plain}")
            return
        for framing in variants:
            for split in (None, 3):
                faults = StreamFaults(framing=framing, split_bytes=split)
                where = framing.label + (f", read in {split}-byte pieces" if split else "")
                got = await _framed(ctx, reply, faults)
                if isinstance(got, str):
                    found.fail(f"{where}: {got}")
                    continue
                for name in ("text", "reasoning", "tool_calls", "finish_reason"):
                    found.expect(
                        getattr(got, name) == getattr(plain, name),
                        f"{where}: {name} {getattr(got, name)!r} != {getattr(plain, name)!r} "
                        "read from the plain stream",
                    )
                tokens = (got.meta.input_tokens, got.meta.output_tokens)
                want = (plain.meta.input_tokens, plain.meta.output_tokens)
                found.expect(tokens == want, f"{where}: tokens {tokens} != {want}")

    asyncio.run(go())
    found.raise_if_any()


check(
    "outcome-fidelity",
    "every finish reason, usage form, tool-call shape, reasoning and text edge, read whole",
)(outcome_fidelity)  # type: ignore[arg-type]
check(
    "sse-framing",
    "every way the wire's framing may write the same events (SSE: CRLF/CR lines, no space "
    "after the colon, multi-line data, ids, retry, comments, BOM; NDJSON: CRLF, blank lines, "
    "no final newline; JSON array: indentation and separators)",
)(sse_framing)  # type: ignore[arg-type]
