"""What a finished request is counted as: ``meta-event``, ``token-fallback``,
``pricing-presence``."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeAlias, get_args

from conformance.checks.registry import check
from conformance.context import CheckContext, Findings, run_stream
from conformance.counting import (
    Behaviour,
    CounterCall,
    EndpointProbe,
    ProbeCounter,
    Progress,
    ask,
    spy_on,
)
from provara_kit.pricing import lookup_price, missing_pricing_hint
from provara_kit.provider import Provider
from provara_kit.types import ChatRequest, ProvaraMeta, TokenMethod


class _SpyLike(Protocol):
    @property
    def calls(self) -> list[CounterCall]: ...


META_FIELDS = (
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "input_tokens_source",
    "output_tokens_source",
    "cost_usd",
    "priced",
    "finish_reason",
    "ttft_ms",
    "latency_ms",
    "input_tokens_method",
    "output_tokens_method",
)
_METHODS = frozenset(get_args(TokenMethod))


def _expected_cost(ctx: CheckContext, meta: ProvaraMeta) -> Decimal | None:
    price = lookup_price(ctx.target.name, meta.model, ctx.target.pricing)
    if price is None:
        return None
    million = Decimal(1_000_000)
    return (
        Decimal(meta.input_tokens) * price.input_per_million
        + Decimal(meta.output_tokens) * price.output_per_million
    ) / million


def _expect_meta(found: Findings, where: str, ctx: CheckContext, meta: ProvaraMeta) -> None:
    for name in META_FIELDS:
        found.expect(hasattr(meta, name), f"{where}: meta lacks {name}")
    found.expect(meta.provider == ctx.target.name, f"{where}: provider {meta.provider!r}")
    found.expect(meta.model == ctx.model, f"{where}: model {meta.model!r}")
    for side in ("input", "output"):
        count = getattr(meta, f"{side}_tokens")
        source = getattr(meta, f"{side}_tokens_source")
        found.expect(isinstance(count, int) and count >= 0, f"{where}: {side}_tokens {count!r}")
        found.expect(source in ("upstream", "estimated"), f"{where}: {side} source {source!r}")
        method = getattr(meta, f"{side}_tokens_method", None)
        found.expect(
            method in _METHODS and (method == "upstream") == (source == "upstream"),
            f"{where}: {side} method {method!r} with source {source!r} (upstream counts are "
            "'upstream'; estimated ones 'count-endpoint', 'tokenizer' or 'chars/4')",
        )
    expected = _expected_cost(ctx, meta)
    if expected is None:
        found.expect(
            meta.priced is False and meta.cost_usd is None,
            f"{where}: unpriced model reported priced={meta.priced}, cost={meta.cost_usd!r} "
            "(must be priced=False, cost None: never a silent $0)",
        )
    else:
        found.expect(meta.priced is True, f"{where}: priced model reported priced=False")
        found.expect(
            meta.cost_usd is not None and Decimal(meta.cost_usd) == expected,
            f"{where}: cost {meta.cost_usd!r} != {expected} from the pricing table",
        )
    found.expect(meta.latency_ms >= 0, f"{where}: latency_ms {meta.latency_ms}")


async def meta_event(ctx: CheckContext) -> None:
    found = Findings()
    replies = {
        "text": ctx.reply(("Four", " score"), input_tokens=1234, output_tokens=567),
        "tool call": ctx.reply(
            (),
            finish_reason="tool_calls",
            input_tokens=40,
            output_tokens=12,
            tool_calls=(("call_1", "get_weather", '{"city":"Lisbon"}'),),
        ),
    }
    for label, reply in replies.items():
        async with ctx.scripted(reply=reply) as (provider, _upstream):
            outcome = await run_stream(provider, ctx.request())
            where = f"stream ({label})"
            if not found.expect(outcome.error is None, f"{where}: raised {outcome.error!r}"):
                continue
            metas = outcome.metas
            found.expect(len(metas) == 1, f"{where}: {len(metas)} meta events, expected exactly 1")
            if not metas:
                continue
            found.expect(
                outcome.events[-1] is metas[-1], f"{where}: the meta is not the last event"
            )
            meta = metas[0]
            _expect_meta(found, where, ctx, meta)
            found.expect(
                (meta.input_tokens, meta.output_tokens)
                == (reply.input_tokens, reply.output_tokens),
                f"{where}: tokens ({meta.input_tokens}, {meta.output_tokens}) != upstream's "
                f"({reply.input_tokens}, {reply.output_tokens})",
            )
            found.expect(
                meta.finish_reason == reply.finish_reason,
                f"{where}: finish_reason {meta.finish_reason!r} != {reply.finish_reason!r}",
            )
            found.expect(
                meta.ttft_ms is not None and 0 <= meta.ttft_ms <= meta.latency_ms,
                f"{where}: ttft_ms {meta.ttft_ms!r} not within latency_ms {meta.latency_ms}",
            )
            response = await provider.complete(ctx.request())
            _expect_meta(found, f"complete ({label})", ctx, response.meta)
    found.raise_if_any()


def _estimate(text: str) -> int:
    return math.ceil(len(text) / 4)


def _prompt_text(request: ChatRequest) -> str:
    return "".join(message.text() for message in request.messages)


_REPORTED: dict[str, tuple[str, ...]] = {
    "null": (),
    "absent": (),
    "partial": ("input",),
    "zero": ("input", "output"),
}
"""The counts each scripted usage mode reports (``partial``: the input count only)."""
_UPSTREAM_COUNTS = {"input": 31, "output": 9}
_HANG_GUARD = 2.0
"""Seconds a run may take before the check calls a counter unbounded (probes that hang
are bounded by the pipeline in 0.05 s)."""


@dataclass
class _Run:
    """One request's result: its meta (or the error it ended with), the content events
    it yielded before the meta, and the calls the installed counter got."""

    mode: str
    meta: ProvaraMeta | None
    error: BaseException | None
    content: int
    calls: list[CounterCall]
    streams: bool = True
    """False for a provider with streaming off: its stream is one completion, counted
    before its content arrives, so the order of counting and content is not judged."""


async def _drain(provider: Provider, request: ChatRequest, progress: Progress) -> _Run:
    metas: list[ProvaraMeta] = []
    last_is_meta = False
    error: BaseException | None = None
    guard = asyncio.timeout(_HANG_GUARD)
    try:
        async with guard, provider.complete_stream(request) as stream:
            async for event in stream:
                last_is_meta = isinstance(event, ProvaraMeta)
                if isinstance(event, ProvaraMeta):
                    metas.append(event)
                else:
                    progress.content += 1
    except Exception as exc:  # judged below: a counter's failure must not end the stream
        error = exc
    if guard.expired():
        error = TimeoutError(
            f"the stream was still open after {_HANG_GUARD:.0f} s with a counter that never "
            "answers (a count must be bounded by TokenCounter.timeout)"
        )
    elif error is None and (len(metas) != 1 or not last_is_meta):
        error = AssertionError(f"{len(metas)} meta events (exactly one, last, expected)")
    return _Run("stream", metas[0] if len(metas) == 1 else None, error, progress.content, [])


async def _complete(provider: Provider, request: ChatRequest) -> _Run:
    try:
        async with asyncio.timeout(_HANG_GUARD):
            response = await provider.complete(request)
    except TimeoutError:
        error: BaseException = TimeoutError(
            f"complete still waited after {_HANG_GUARD:.0f} s on a counter that never answers "
            "(a count must be bounded by TokenCounter.timeout)"
        )
        return _Run("complete", None, error, 0, [])
    except Exception as exc:  # judged by the caller
        return _Run("complete", None, exc, 0, [])
    return _Run("complete", response.meta, None, 0, [])


Install: TypeAlias = Callable[[Provider, Progress], "ProbeCounter | _SpyLike | None"]


async def _runs(
    ctx: CheckContext, request: ChatRequest, usage: str, install: Install
) -> list[_Run] | str:
    """A stream and a complete of ``request`` with usage ``usage``, each with the counter
    ``install`` puts on a fresh adapter; a problem text when it cannot be installed."""
    chunks = _CHUNKS
    reply = ctx.reply(
        chunks, usage=usage, **{f"{k}_tokens": v for k, v in _UPSTREAM_COUNTS.items()}
    )
    runs: list[_Run] = []
    async with ctx.scripted(reply=reply) as (provider, _upstream):
        for mode in ("stream", "complete"):
            progress = Progress()
            try:
                counter = install(provider, progress)
            except (AttributeError, TypeError) as exc:
                return f"cannot set the adapter's token_counter: {exc}"
            run = (
                await _drain(provider, request, progress)
                if mode == "stream"
                else await _complete(provider, request)
            )
            if counter is not None:
                run.calls = list(counter.calls)
            run.streams = getattr(provider, "streaming", True) is not False
            runs.append(run)
    return runs


_CHUNKS = ("There are ", "three 🍋", " lemons.")


def _judge(
    found: Findings,
    label: str,
    runs: list[_Run] | str,
    usage: str,
    *,
    counted: dict[str, int | None],
    method: str,
    estimates: dict[str, int],
    text: str,
) -> None:
    """What each run must show: every count the upstream reported kept as ``upstream``;
    each missing one ``counted[side]`` marked ``method`` (``None``: the counter gave none,
    so ``chars/4``); the counter asked only for missing counts, for the produced text,
    and in a stream only after the last content event."""
    if isinstance(runs, str):
        found.fail(f"{label}: {runs}")
        return
    reported = _REPORTED[usage]
    for run in runs:
        where = f"{label} ({run.mode})"
        if run.error is not None or run.meta is None:
            found.fail(f"{where}: ended with {run.error!r}, expected one meta and a clean end")
            continue
        for side in ("input", "output"):
            count = getattr(run.meta, f"{side}_tokens")
            source = getattr(run.meta, f"{side}_tokens_source")
            got_method = getattr(run.meta, f"{side}_tokens_method", None)
            want: tuple[int | None, str]
            if side in reported:
                want = (0 if usage == "zero" else _UPSTREAM_COUNTS[side], "upstream")
                want_method = "upstream"
            elif counted.get(side) is not None:
                want, want_method = (counted[side], "estimated"), method
            else:
                want, want_method = (estimates[side], "estimated"), "chars/4"
            found.expect((count, source) == want, f"{where}: {side} {(count, source)} != {want}")
            if (count, source) == want:
                found.expect(
                    got_method == want_method,
                    f"{where}: {side} method {got_method!r} != {want_method!r}",
                )
        for call in run.calls:
            found.expect(
                call.side not in reported,
                f"{where}: the counter was asked for the {call.side} count the upstream "
                "reported (a reported count, a real 0 included, is never counted again)",
            )
            if call.text is not None:
                found.expect(
                    call.text == text,
                    f"{where}: the counter was asked to count {call.text!r}, not the produced "
                    f"text {text!r}",
                )
            if run.mode == "stream" and run.streams:
                found.expect(
                    call.content_seen == run.content,
                    f"{where}: the counter was asked for the {call.side} count after "
                    f"{call.content_seen} of {run.content} content events reached the client "
                    "(counting must wait for the last content event, never hold it back)",
                )


def _remove(provider: Provider, progress: Progress) -> None:
    provider.token_counter = None


def _probe(probe: type[ProbeCounter], behaviour: Behaviour, counts: tuple[int, int]) -> Install:
    def install(provider: Provider, progress: Progress) -> ProbeCounter:
        counter = probe(
            progress, input_count=counts[0], output_count=counts[1], behaviour=behaviour
        )
        provider.token_counter = counter
        return counter

    return install


async def token_fallback(ctx: CheckContext) -> None:
    found = Findings()
    request = ctx.request("Count the 🍋 lemons, please — quickly.", system="Be exact. Ünïcødé.")
    text = "".join(_CHUNKS)
    estimates = {"input": _estimate(_prompt_text(request)), "output": _estimate(text)}
    judge = functools.partial(_judge, found, estimates=estimates, text=text)
    none: dict[str, int | None] = {}

    # No counter: ceil(chars / 4), marked estimated, method chars/4.
    for label, usage in (
        ("usage null", "null"),
        ("usage absent", "absent"),
        ("only input reported", "partial"),
        ("a real zero", "zero"),
    ):
        judge(label, await _runs(ctx, request, usage, _remove), usage, counted=none, method="")

    # The adapter's own counter, watched: its numbers, its method, asked only when needed.
    async with ctx.scripted() as (built, _upstream):
        own = built.token_counter
        counted: dict[str, int | None] = {}
        if own is not None:
            answers = {
                "input": await ask(lambda: own.count_input(request), own.timeout),
                "output": await ask(lambda: own.count_output(text, request), own.timeout),
            }
            for side, answer in answers.items():
                counted[side] = answer if isinstance(answer, int) else None
                found.expect(
                    isinstance(answer, int),
                    f"the adapter's {own.method} counter cannot count {side} tokens against "
                    f"its scripted upstream: {answer} (a counter that never succeeds leaves "
                    "every count at chars/4; a dialect serves a count endpoint with "
                    "is_count_path and render_token_count)",
                )
    if own is not None:

        def watch(provider: Provider, progress: Progress) -> _SpyLike | None:
            inner = provider.token_counter
            if inner is None:
                return None
            spy = spy_on(inner, progress)
            provider.token_counter = spy
            return spy

        for usage in ("null", "partial", "zero"):
            judge(
                f"the adapter's {own.method} counter, usage {usage}",
                await _runs(ctx, request, usage, watch),
                usage,
                counted=counted,
                method=own.method,
            )

    # Probe counters: the pipeline's wiring, whatever counter the adapter has.
    for usage in ("null", "partial", "zero"):
        judge(
            f"a tokenizer counter, usage {usage}",
            await _runs(ctx, request, usage, _probe(ProbeCounter, "answer", (101, 37))),
            usage,
            counted={"input": 101, "output": 37},
            method="tokenizer",
        )
    judge(
        "a count-endpoint counter, usage null",
        await _runs(ctx, request, "null", _probe(EndpointProbe, "answer", (88, 23))),
        "null",
        counted={"input": 88, "output": 23},
        method="count-endpoint",
    )
    failing: tuple[tuple[Behaviour, str], ...] = (
        ("raise", "a counter that raises"),
        ("nonsense", "a counter that answers -7 and '12'"),
        ("hang", "a counter that never answers"),
    )
    for behaviour, label in failing:
        judge(
            f"{label}, usage null",
            await _runs(ctx, request, "null", _probe(ProbeCounter, behaviour, (101, 37))),
            "null",
            counted=none,
            method="",
        )
    found.raise_if_any()


def _unpriced(ctx: CheckContext, models: list[str]) -> list[str]:
    return [m for m in models if lookup_price(ctx.target.name, m, ctx.target.pricing) is None]


def _pricing_problem(ctx: CheckContext, unpriced: list[str], total: int) -> str:
    hints = [missing_pricing_hint(ctx.target.name, m) for m in unpriced[:20]]
    more = f" (and {len(unpriced) - 20} more)" if len(unpriced) > 20 else ""
    return (
        f"{len(unpriced)} of {total} models are unpriced and would be counted as $0; "
        f"add{more}: " + " | ".join(hints)
    )


async def pricing_presence(ctx: CheckContext) -> None:
    found = Findings()
    models = list(ctx.target.models)
    async with ctx.scripted(models=models) as (provider, _upstream):
        discovered = await provider.discover_models()
    if discovered is not None:
        missing = sorted(set(models) - set(discovered))
        found.expect(not missing, f"discover_models lost served models: {missing}")
        models = sorted(set(models) | set(discovered))
    if not found.expect(models, "the provider declares no models, so none can be priced"):
        found.raise_if_any()
    unpriced = _unpriced(ctx, models)
    found.expect(not unpriced, _pricing_problem(ctx, unpriced, len(models)))
    found.raise_if_any()


async def _live_pricing(ctx: CheckContext) -> None:
    found = Findings()
    async with ctx.live_provider() as provider:
        discovered = await provider.discover_models()
    models = sorted(set(ctx.target.models) | set(discovered or ()))
    unpriced = _unpriced(ctx, models)
    found.expect(not unpriced, _pricing_problem(ctx, unpriced, len(models)))
    found.raise_if_any()


check("meta-event", "exactly one _provara meta, last, complete and priced by the table")(meta_event)
check(
    "token-fallback",
    "missing usage comes from the adapter's counter (asked after the content, bounded, "
    "never for a reported count) or ceil(chars/4), marked estimated with its method; 0 kept",
)(token_fallback)
check(
    "pricing-presence",
    "every default and discovered model is priced; a gap names the row to add",
    live=_live_pricing,
)(pricing_presence)
