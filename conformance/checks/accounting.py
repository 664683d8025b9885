"""What a finished request is counted as: ``meta-event``, ``token-fallback``,
``pricing-presence``."""

from __future__ import annotations

import math
from decimal import Decimal

from conformance.checks.registry import check
from conformance.context import CheckContext, Findings, run_stream
from provara_kit.pricing import lookup_price, missing_pricing_hint
from provara_kit.types import ChatRequest, ProvaraMeta

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
)


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


async def token_fallback(ctx: CheckContext) -> None:
    found = Findings()
    request = ctx.request("Count the 🍋 lemons, please — quickly.", system="Be exact. Ünïcødé.")
    chunks = ("There are ", "three 🍋", " lemons.")
    text = "".join(chunks)
    input_estimate, output_estimate = _estimate(_prompt_text(request)), _estimate(text)
    cases = {
        "usage null": ("null", (input_estimate, "estimated"), (output_estimate, "estimated")),
        "usage absent": ("absent", (input_estimate, "estimated"), (output_estimate, "estimated")),
        "only input reported": ("partial", (31, "upstream"), (output_estimate, "estimated")),
        "a real zero": ("zero", (0, "upstream"), (0, "upstream")),
    }
    for label, (mode, want_in, want_out) in cases.items():
        reply = ctx.reply(chunks, usage=mode, input_tokens=31, output_tokens=9)
        async with ctx.scripted(reply=reply) as (provider, _upstream):
            outcome = await run_stream(provider, request)
            metas = [("stream", m) for m in outcome.metas]
            if outcome.error is not None or len(outcome.metas) != 1:
                found.fail(f"{label} (stream): error {outcome.error!r}, {len(outcome.metas)} metas")
            response = await provider.complete(request)
            metas.append(("complete", response.meta))
        for mode_label, meta in metas:
            got_in = (meta.input_tokens, meta.input_tokens_source)
            got_out = (meta.output_tokens, meta.output_tokens_source)
            found.expect(got_in == want_in, f"{label} ({mode_label}): input {got_in} != {want_in}")
            found.expect(
                got_out == want_out, f"{label} ({mode_label}): output {got_out} != {want_out}"
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
check("token-fallback", "missing usage is ceil(chars/4) per field, marked estimated; 0 kept")(
    token_fallback
)
check(
    "pricing-presence",
    "every default and discovered model is priced; a gap names the row to add",
    live=_live_pricing,
)(pricing_presence)
