"""The whole outcome of a request, held field by field against the dialect's reference reading.

A scripted or recorded body is read by the wire dialect's own reference reader (independent
of any adapter) into a :class:`~provara_kit.testing.dialects.base.StreamExpectation`; what
the adapter made of the same body, streamed or not, must agree on every field: text,
reasoning, each tool call's id, name and arguments, finish reason, each token count and its
source, cost and model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from conformance.context import CheckContext, Findings, StreamOutcome
from provara_kit.pricing import lookup_price
from provara_kit.testing import CannedReply, WireDialect
from provara_kit.testing.dialects.base import StreamExpectation
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ProvaraMeta,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
)

__all__ = ["Outcome", "compare_outcome", "expected_from_reply", "short"]

Call = tuple[str | None, str | None, str]


@dataclass
class Outcome:
    """What an adapter made of one answer, in one shape for streams and completions."""

    text: str
    reasoning: str
    tool_calls: list[Call]
    meta: ProvaraMeta
    finish_reason: str | None = None
    fragments: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of_response(cls, response: ChatResponse) -> Outcome:
        calls = [(c.id, c.name, c.arguments) for c in response.tool_calls]
        return cls(response.text, response.reasoning, calls, response.meta, response.finish_reason)

    @classmethod
    def of_stream(cls, stream: StreamOutcome) -> Outcome:
        """The stream collected as an OpenAI client does: text and reasoning joined, tool-call
        fragments gathered by index, every string field concatenated (so an id or a name
        sent twice arrives twice, as it does at a client of the gateway)."""
        text: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, list[Any]] = {}
        for event in stream.content:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ReasoningDelta):
                reasoning.append(event.text)
            elif isinstance(event, ToolCallDelta):
                entry = calls.setdefault(event.index, [None, None, [], 0])
                if event.id is not None:
                    entry[0] = (entry[0] or "") + event.id
                if event.name is not None:
                    entry[1] = (entry[1] or "") + event.name
                entry[2].append(event.arguments)
                entry[3] += 1
        meta = stream.metas[0]
        ordered = sorted(calls.items())
        return cls(
            "".join(text),
            "".join(reasoning),
            [(e[0], e[1], "".join(e[2])) for _, e in ordered],
            meta,
            meta.finish_reason,
            {index: e[3] for index, e in ordered},
        )


def expected_from_reply(dialect: WireDialect, reply: CannedReply) -> StreamExpectation:
    """What a reply says when the dialect has no reference reader: the script itself."""
    input_tokens, output_tokens = reply.reported_tokens()
    return StreamExpectation(
        True,
        reply.text,
        input_tokens,
        output_tokens,
        dialect.expected_finish_reason(reply),
        reasoning=reply.reasoning_text if dialect.carries_reasoning else "",
        tool_calls=tuple(reply.tool_calls),
        model=reply.model if dialect.names_model else None,
    )


def _arguments(text: str, *, wire: bool) -> Any:
    """Tool arguments as a value. On the wire, no arguments at all means ``{}``; what an
    adapter hands a client must be JSON text itself (clients ``json.loads`` it)."""
    if wire and not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def short(text: str, limit: int = 60) -> str:
    """``text`` shortened for a failure message."""
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return f"{text[:half]}...{text[-half:]}"


_COUNTERS = frozenset({"count-endpoint", "tokenizer"})


def _estimate(chars: int) -> int:
    return math.ceil(chars / 4)


def compare_outcome(
    found: Findings,
    where: str,
    ctx: CheckContext,
    request: ChatRequest,
    expected: StreamExpectation,
    got: Outcome,
) -> None:
    """Record every field where ``got`` differs from ``expected``."""
    found.expect(
        got.text == expected.text,
        f"{where}: text {short(got.text)!r} != {short(expected.text)!r}",
    )
    found.expect(
        got.reasoning == expected.reasoning,
        f"{where}: reasoning {short(got.reasoning)!r} != {short(expected.reasoning)!r}",
    )
    _compare_calls(found, where, list(expected.tool_calls), got.tool_calls)
    found.expect(
        got.finish_reason == expected.finish_reason,
        f"{where}: finish_reason {got.finish_reason!r} != {expected.finish_reason!r}",
    )
    meta = got.meta
    found.expect(
        got.finish_reason == meta.finish_reason,
        f"{where}: meta.finish_reason {meta.finish_reason!r} != the answer's {got.finish_reason!r}",
    )
    found.expect(meta.provider == ctx.target.name, f"{where}: meta.provider {meta.provider!r}")
    found.expect(
        meta.model == request.model, f"{where}: meta.model {meta.model!r} != {request.model!r}"
    )
    if expected.id is not None:
        found.expect(
            meta.response_id == expected.id,
            f"{where}: meta.response_id {meta.response_id!r} != the upstream's {expected.id!r}",
        )
    if expected.model is not None:
        served = meta.extra.get("upstream_model", request.model)
        found.expect(
            served == expected.model,
            f"{where}: the upstream answered with model {expected.model!r}, the meta says "
            f"{served!r} (meta.extra['upstream_model'])",
        )
    output_chars = (
        len(got.text)
        + len(got.reasoning)
        + sum(len(arguments) + len(name or "") for _, name, arguments in got.tool_calls)
    )
    prompt_chars = sum(len(message.text()) for message in request.messages)
    for side, want, chars in (
        ("input", expected.input_tokens, prompt_chars),
        ("output", expected.output_tokens, output_chars),
    ):
        count = getattr(meta, f"{side}_tokens")
        source = getattr(meta, f"{side}_tokens_source")
        if want is None and getattr(meta, f"{side}_tokens_method", None) in _COUNTERS:
            # The adapter's token counter counted it: token-fallback judges its number.
            found.expect(source == "estimated", f"{where}: {side} source {source!r}")
            continue
        wanted = (want, "upstream") if want is not None else (_estimate(chars), "estimated")
        found.expect(
            (count, source) == wanted,
            f"{where}: {side} tokens ({count}, {source!r}) != {wanted}"
            + (" (the upstream reported no count)" if want is None else ""),
        )
    _compare_cost(found, where, ctx, meta)


def _compare_calls(found: Findings, where: str, expected: list[Call], got: list[Call]) -> None:
    if not found.expect(
        len(got) == len(expected),
        f"{where}: {len(got)} tool calls != {len(expected)} "
        f"(got {[name for _, name, _ in got]}, expected {[name for _, name, _ in expected]})",
    ):
        return
    for number, ((want_id, want_name, want_args), (id_, name, arguments)) in enumerate(
        zip(expected, got, strict=True)
    ):
        label = f"{where}: tool call {number}"
        found.expect(id_ == want_id, f"{label} id {id_!r} != {want_id!r}")
        found.expect(name == want_name, f"{label} name {name!r} != {want_name!r}")
        got_value = _arguments(arguments, wire=False)
        if found.expect(
            got_value is not _NOT_JSON,
            f"{label} arguments {short(arguments)!r} are not JSON text (clients parse them)",
        ):
            found.expect(
                got_value == _arguments(want_args, wire=True),
                f"{label} arguments {short(arguments)!r} != {short(want_args) or '{}'!r}",
            )


def _compare_cost(found: Findings, where: str, ctx: CheckContext, meta: ProvaraMeta) -> None:
    price = lookup_price(ctx.target.name, meta.model, ctx.target.pricing)
    if price is None:
        found.expect(
            meta.priced is False and meta.cost_usd is None,
            f"{where}: unpriced model reported priced={meta.priced}, cost={meta.cost_usd!r}",
        )
        return
    cost = (
        Decimal(meta.input_tokens) * price.input_per_million
        + Decimal(meta.output_tokens) * price.output_per_million
    ) / Decimal(1_000_000)
    found.expect(
        meta.priced is True and meta.cost_usd is not None and Decimal(meta.cost_usd) == cost,
        f"{where}: cost {meta.cost_usd!r} (priced={meta.priced}) != {cost} from the table",
    )
