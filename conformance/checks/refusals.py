"""``request-refusals``: a request the adapter cannot map is refused clearly, never crashed on.

Clients send broken requests: a tool result with no call id, an image part with no URL, a
tool call whose arguments are not JSON. An adapter either passes such a request on for the
provider to judge (its error then comes back typed), or refuses it before sending; a refusal
must be a typed error (``ValueError``, which the gateway answers with a 400, or a Provara
error) that names what is wrong, never a ``KeyError`` or ``TypeError`` from deep inside a
mapper, which reaches the client as a 500.
"""

from __future__ import annotations

from typing import Any, Final

from conformance.checks.registry import check
from conformance.context import CheckContext, Findings, attempt
from provara_kit.errors import ProvaraError, ProviderError
from provara_kit.types import ChatRequest

__all__ = ["MALFORMED"]

_CALL: Final[dict[str, Any]] = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "f", "arguments": "{}"},
}
_TOOL: Final = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def _turns(*assistant_calls: dict[str, Any], answer: bool = True) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = [
        {"role": "user", "content": "Look it up."},
        {"role": "assistant", "content": None, "tool_calls": list(assistant_calls)},
    ]
    if answer:
        turns.append({"role": "tool", "tool_call_id": "call_1", "content": "42"})
    return turns


def _call(**changes: Any) -> dict[str, Any]:
    function = {**_CALL["function"], **changes.pop("function", {})}
    call = {**_CALL, **changes, "function": function}
    return {k: v for k, v in call.items() if v is not None}


MALFORMED: Final[dict[str, tuple[dict[str, Any], tuple[str, ...]]]] = {
    "a tool result without its tool_call_id": (
        {
            "messages": [
                *_turns(_CALL, answer=False),
                {"role": "tool", "content": "42"},
            ]
        },
        ("tool_call_id",),
    ),
    "an image_url part without a url": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"detail": "low"}},
                    ],
                }
            ]
        },
        ("url",),
    ),
    "an assistant tool call without an id": ({"messages": _turns(_call(id=None))}, ("'id'",)),
    "an assistant tool call without a function name": (
        {"messages": _turns(_call(function={"name": None}))},
        ("name",),
    ),
    "tool call arguments that are not JSON": (
        {"messages": _turns(_call(function={"arguments": "{city: Lisbon"}))},
        ("JSON",),
    ),
    "tool call arguments that are a JSON array": (
        {"messages": _turns(_call(function={"arguments": "[1, 2]"}))},
        ("object",),
    ),
    "a function tool without a name": (
        {
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"type": "function", "function": {"parameters": {"type": "object"}}}],
        },
        ("name",),
    ),
    "tool_choice 'sometimes'": (
        {
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [_TOOL],
            "tool_choice": "sometimes",
        },
        ("tool_choice",),
    ),
    "a named tool_choice without the name": (
        {
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [_TOOL],
            "tool_choice": {"type": "function", "function": {}},
        },
        ("name",),
    ),
}
"""Broken requests, and the words a refusal of each must contain (any one of them)."""


async def request_refusals(ctx: CheckContext) -> None:
    found = Findings()
    async with ctx.scripted() as (provider, upstream):
        for label, (fields, words) in MALFORMED.items():
            request = ChatRequest(model=ctx.model, **fields)
            for mode in ("complete", "stream"):
                where = f"{label} ({mode})"
                before = len(upstream.requests)
                error = await attempt(provider, request, mode)
                sent = len(upstream.requests) > before
                if error is None:
                    continue  # passed on as it is, for the provider to judge
                kind = type(error).__name__
                if sent:
                    found.expect(
                        isinstance(error, ProviderError),
                        f"{where}: sent, then raised an untyped {kind}: {error}",
                    )
                    continue
                if not found.expect(
                    isinstance(error, ValueError | ProvaraError),
                    f"{where}: crashed with {kind} before sending ({error}); refuse it with a "
                    "ValueError that says what is wrong",
                ):
                    continue
                text = str(error)
                found.expect(
                    any(word in text for word in words),
                    f"{where}: refused with {text!r}, which does not name the problem "
                    f"(expected {' or '.join(map(repr, words))})",
                )
    found.raise_if_any()


check(
    "request-refusals",
    "a request the adapter cannot map is refused with a typed error naming the problem",
)(request_refusals)
