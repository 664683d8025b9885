"""Token counts when the upstream does not report them: ``ceil(chars / 4)``, marked estimated.

Characters are Unicode code points (Python's ``len``). A count the upstream did send,
including a real ``0``, is always kept.
"""

from __future__ import annotations

from collections.abc import Iterable

from provara_kit.types import Message, TokenSource, Usage

__all__ = ["estimate_input_tokens", "estimate_tokens", "resolve_usage"]


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
