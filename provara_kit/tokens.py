"""Token counts when the upstream does not report them.

Each missing count comes from the adapter's :class:`~provara_kit.counters.TokenCounter`
when it has one, else (or when the counter fails) from ``ceil(chars / 4)``; either way it
is marked ``estimated``, with the method that produced it. Characters are Unicode code
points (Python's ``len``). A count the upstream did send, including a real ``0``, is
always kept and the counter is not asked for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from provara_kit.counters import TokenCounter
from provara_kit.types import ChatRequest, Message, TokenMethod, TokenSource, Usage

__all__ = ["count_usage", "estimate_input_tokens", "estimate_tokens", "resolve_usage"]

logger = logging.getLogger("provara_kit.tokens")


def estimate_tokens(text: str) -> int:
    """``ceil(len(text) / 4)`` over code points."""
    return -(-len(text) // 4)


def estimate_input_tokens(messages: Iterable[Message]) -> int:
    """Estimate over the text of every message, taken together."""
    return estimate_tokens("".join(message.text() for message in messages))


def resolve_usage(
    input_tokens: int | None,
    output_tokens: int | None,
    *,
    messages: Iterable[Message],
    output_chars: int,
) -> Usage:
    """Usage from what upstream reported, estimating each missing (``None``) field alone."""
    input_source: TokenSource = "upstream"
    output_source: TokenSource = "upstream"
    if input_tokens is None:
        input_tokens = estimate_input_tokens(messages)
        input_source = "estimated"
    if output_tokens is None:
        output_tokens = -(-output_chars // 4)
        output_source = "estimated"
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        input_tokens_source=input_source,
        output_tokens_source=output_source,
    )


async def count_usage(
    input_tokens: int | None,
    output_tokens: int | None,
    *,
    request: ChatRequest,
    output_text: str,
    counter: TokenCounter | None,
    provider: str = "",
) -> Usage:
    """:func:`resolve_usage` with ``counter`` asked for each missing count first.

    The missing counts are asked for together, each bounded by ``counter.timeout``; one
    that fails (raises, times out, or is not a non-negative ``int``) is ``chars / 4``. The
    failure is logged by type only: a count endpoint's error text is not repeated.
    """
    usage = resolve_usage(
        input_tokens, output_tokens, messages=request.messages, output_chars=len(output_text)
    )
    if counter is None or (input_tokens is not None and output_tokens is not None):
        return usage
    method: TokenMethod = counter.method
    asks: list[Awaitable[int | None]] = []
    if input_tokens is None:
        asks.append(_bounded(counter, lambda: counter.count_input(request), "input", provider))
    if output_tokens is None:
        asks.append(
            _bounded(
                counter, lambda: counter.count_output(output_text, request), "output", provider
            )
        )
    answers = await asyncio.gather(*asks)
    counted_in = answers.pop(0) if input_tokens is None else None
    counted_out = answers.pop(0) if output_tokens is None else None
    update: dict[str, object] = {}
    if counted_in is not None:
        update.update(input_tokens=counted_in, input_tokens_method=method)
    if counted_out is not None:
        update.update(output_tokens=counted_out, output_tokens_method=method)
    return usage.model_copy(update=update) if update else usage


async def _bounded(
    counter: TokenCounter, call: Callable[[], Awaitable[int]], side: str, provider: str
) -> int | None:
    """The count ``call()`` returns within the counter's timeout, or ``None``."""
    try:
        async with asyncio.timeout(counter.timeout):
            value = await call()
    except Exception as exc:  # any failure of a counter is a fallback, never an abort
        logger.warning(
            "%s token counter (%s) failed counting %s tokens: %s; chars/4 used",
            provider or "?",
            counter.method,
            side,
            "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__,
        )
        return None
    if type(value) is not int or value < 0:
        logger.warning(
            "%s token counter (%s) answered %s for %s tokens, not a count; chars/4 used",
            provider or "?",
            counter.method,
            type(value).__name__ if type(value) is not int else value,
            side,
        )
        return None
    return value
