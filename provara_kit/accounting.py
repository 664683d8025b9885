"""Turn what an upstream reported into the ``_provara`` meta: tokens, cost and latency.

Shared by ``complete`` and the stream pipeline so both count the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from provara_kit.pricing import MODEL_PRICING, lookup_price
from provara_kit.tokens import resolve_usage
from provara_kit.types import ChatRequest, ChatResponse, ProvaraMeta, ToolCall, Usage

__all__ = ["ParsedCompletion", "build_meta", "finish_completion"]


@dataclass(slots=True)
class ParsedCompletion:
    """What an adapter read out of a non-streamed answer, before it is counted."""

    text: str
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    id: str | None = None
    model: str | None = None
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def output_chars(self) -> int:
        """Characters produced, for the token fallback: text, reasoning and tool calls."""
        calls = sum(len(c.arguments) + len(c.name or "") for c in self.tool_calls)
        return len(self.text) + len(self.reasoning) + calls

    @property
    def output_text(self) -> str:
        """What was produced, for a token counter: the characters :attr:`output_chars`
        counts, in stream order (reasoning, text, then each call's name and arguments)."""
        calls = "".join((c.name or "") + c.arguments for c in self.tool_calls)
        return self.reasoning + self.text + calls


def finish_completion(
    parsed: ParsedCompletion,
    *,
    provider: str,
    request: ChatRequest,
    started: float,
    pricing: Mapping[str, tuple[object, object]] | None = None,
    usage: Usage | None = None,
) -> ChatResponse:
    """The response for a non-streamed answer, counted and priced like a stream.

    ``usage``, when given, is the answer's counts already resolved (by a token counter,
    :func:`~provara_kit.tokens.count_usage`); otherwise missing counts are ``chars / 4``.
    """
    meta = build_meta(
        provider=provider,
        request=request,
        input_tokens=parsed.input_tokens,
        output_tokens=parsed.output_tokens,
        output_chars=parsed.output_chars,
        finish_reason=parsed.finish_reason,
        started=started,
        first_token_at=None,
        upstream_model=parsed.model,
        response_id=parsed.id,
        pricing=pricing,
        usage=usage,
    )
    return ChatResponse(
        id=parsed.id,
        provider=provider,
        model=request.model,
        text=parsed.text,
        reasoning=parsed.reasoning,
        finish_reason=parsed.finish_reason,
        usage=meta.usage,
        tool_calls=parsed.tool_calls,
        meta=meta,
    )


def build_meta(
    *,
    provider: str,
    request: ChatRequest,
    input_tokens: int | None,
    output_tokens: int | None,
    output_chars: int,
    finish_reason: str | None,
    started: float,
    first_token_at: float | None,
    upstream_model: str | None = None,
    response_id: str | None = None,
    pricing: Mapping[str, tuple[object, object]] | None = None,
    usage: Usage | None = None,
    ended: float | None = None,
) -> ProvaraMeta:
    """The meta for one finished request.

    ``started``, ``first_token_at`` and ``ended`` (default: now) are
    ``time.perf_counter()`` readings. ``usage``, when given, replaces the counts resolved
    from ``input_tokens``/``output_tokens`` (``None``: ``chars / 4``). The price is looked
    up for the requested model, then for the model the upstream said it used.
    """
    now = time.perf_counter() if ended is None else ended
    if usage is None:
        usage = resolve_usage(
            input_tokens, output_tokens, messages=request.messages, output_chars=output_chars
        )
    table = MODEL_PRICING if pricing is None else pricing
    price = lookup_price(provider, request.model, table)
    if price is None and upstream_model and upstream_model != request.model:
        price = lookup_price(provider, upstream_model, table)
    cost: Decimal | None = (
        None if price is None else price.cost(usage.input_tokens, usage.output_tokens)
    )
    extra = (
        {"upstream_model": upstream_model}
        if upstream_model and upstream_model != request.model
        else {}
    )
    return ProvaraMeta(
        provider=provider,
        model=request.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        input_tokens_source=usage.input_tokens_source,
        output_tokens_source=usage.output_tokens_source,
        input_tokens_method=usage.input_tokens_method,
        output_tokens_method=usage.output_tokens_method,
        cost_usd=cost,
        priced=price is not None,
        finish_reason=finish_reason,
        ttft_ms=None if first_token_at is None else round((first_token_at - started) * 1000, 3),
        latency_ms=round((now - started) * 1000, 3),
        response_id=response_id,
        extra=extra,
    )
