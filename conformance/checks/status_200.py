"""``status-200``: a good answer comes back whole, with finish reason, usage and model."""

from __future__ import annotations

from conformance.checks.registry import check
from conformance.context import CheckContext, Findings, run_stream
from provara_kit.types import ChatResponse, ProvaraMeta


def _expect_answer(
    found: Findings,
    where: str,
    text: str,
    finish: str | None,
    meta: ProvaraMeta,
    ctx: CheckContext,
    *,
    expected_text: str,
    usage: tuple[int, int] | None,
) -> None:
    found.expect(text == expected_text, f"{where}: text {text!r} != {expected_text!r}")
    found.expect(finish == "stop", f"{where}: finish_reason {finish!r} != 'stop'")
    found.expect(meta.provider == ctx.target.name, f"{where}: meta.provider {meta.provider!r}")
    found.expect(meta.model == ctx.model, f"{where}: meta.model {meta.model!r} != {ctx.model!r}")
    if usage is not None:
        got = (meta.input_tokens, meta.output_tokens)
        found.expect(got == usage, f"{where}: usage {got} != upstream's {usage}")
        sources = (meta.input_tokens_source, meta.output_tokens_source)
        found.expect(sources == ("upstream", "upstream"), f"{where}: usage sources {sources}")


async def _hermetic(ctx: CheckContext) -> None:
    found = Findings()
    reply = ctx.reply(("Hello", ", ", "world", "!"), input_tokens=21, output_tokens=4)
    async with ctx.scripted(reply=reply) as (provider, upstream):
        response = await provider.complete(ctx.request())
        _expect_answer(
            found,
            "complete",
            response.text,
            response.finish_reason,
            response.meta,
            ctx,
            expected_text=reply.text,
            usage=(21, 4),
        )
        found.expect(
            upstream.last_request.authorized is True,
            "complete: the request did not carry the API key the way the wire expects",
        )
        outcome = await run_stream(provider, ctx.request())
        if outcome.error is not None:
            found.fail(f"stream: raised {outcome.error!r}")
        elif found.expect(len(outcome.metas) == 1, f"stream: {len(outcome.metas)} meta events"):
            meta = outcome.metas[0]
            _expect_answer(
                found,
                "stream",
                outcome.text,
                meta.finish_reason,
                meta,
                ctx,
                expected_text=reply.text,
                usage=(21, 4),
            )
    found.raise_if_any()


async def _live(ctx: CheckContext) -> None:
    found = Findings()
    provider = ctx.live_provider()
    async with provider:
        request = ctx.request("Reply with the single word: pong", max_tokens=64)
        response: ChatResponse = await provider.complete(request)
        found.expect(response.text.strip(), "complete: empty text from the real API")
        found.expect(response.finish_reason, "complete: no finish reason")
        found.expect(
            response.usage.input_tokens_source == "upstream", "complete: API reported no usage"
        )
        outcome = await run_stream(provider, request)
        found.expect(outcome.error is None, f"stream: raised {outcome.error!r}")
        found.expect(len(outcome.metas) == 1, f"stream: {len(outcome.metas)} meta events")
        found.expect(outcome.text.strip(), "stream: no text")
        if outcome.metas:
            found.expect(
                outcome.metas[0].output_tokens_source == "upstream",
                "stream: API reported no usage (is stream_options.include_usage honoured?)",
            )
    found.raise_if_any()


check("status-200", "a 200 answer: text, finish reason, usage and model", live=_live)(_hermetic)
