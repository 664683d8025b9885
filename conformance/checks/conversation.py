"""``request-conversation``: a whole conversation reaches the wire as the client meant it.

Each labelled request of :func:`~conformance.conversations.conversations` (then requests
hypothesis combines from the same pieces) is sent completed and streamed; the body the
upstream received is read back by the dialect
(:meth:`~provara_kit.testing.WireDialect.read_conversation`) and compared, field by field,
with the request read the same way, less what the wire cannot express by design
(:attr:`~provara_kit.testing.WireDialect.conversation_limits`); where the wire carries
images inline only (``image-url``), a request with an image by URL must be refused, typed,
before anything is sent. A body the real API would refuse gets the scripted upstream's 400,
so it fails here too. A request that sends a
parameter the adapter declares unsupported is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

from hypothesis import HealthCheck, example, given, settings

from conformance.checks.registry import check
from conformance.context import CheckContext, Findings, attempt
from conformance.conversation_diff import conversation_differences
from conformance.conversations import PINNED, conversation_fields, conversations
from conformance.params import declared_params
from provara_kit.errors import ProvaraError, ProviderStatusError, UnsupportedParameterError
from provara_kit.provider import Provider
from provara_kit.testing import ScriptedUpstream
from provara_kit.testing.conversation import (
    NormalizedConversation,
    expressible,
    read_openai_conversation,
)
from provara_kit.types import ChatRequest

__all__ = ["request_conversation"]

MODES = ("complete", "stream")

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def _positions(request: ChatRequest) -> list[int]:
    """The request's number (from 1) of each message that is not a system message."""
    return [
        number
        for number, message in enumerate(request.messages, 1)
        if message.role not in ("system", "developer")
    ]


async def _judge(
    ctx: CheckContext,
    provider: Provider,
    upstream: ScriptedUpstream,
    request: ChatRequest,
    declared_unsupported: frozenset[str] = frozenset(),
) -> list[str]:
    """What is wrong with how ``request`` reached the wire, completed and streamed.

    ``declared_unsupported`` are the request's fields the adapter declares its wire cannot
    carry: refusing them (:class:`UnsupportedParameterError`, nothing sent) is right, and a
    value the adapter takes after all (Ollama's ``tool_choice: "auto"``) is judged like any
    other."""
    dialect = ctx.target.dialect
    asked = read_openai_conversation(request.model_dump(exclude_none=True))
    expected = expressible(asked, dialect.conversation_limits)
    found: dict[str, list[str]] = {}
    refused = _must_refuse(asked, dialect.conversation_limits)
    for mode in MODES:
        before = len(upstream.requests)
        error = await attempt(provider, request, mode)
        sent = list(upstream.requests)[before:]
        if (
            isinstance(error, UnsupportedParameterError)
            and error.param in declared_unsupported
            and not sent
        ):
            found[mode] = []
        elif refused is not None:
            found[mode] = _refusal(error, bool(sent), refused)
        elif isinstance(error, ProviderStatusError) and error.status_code == 400 and sent:
            found[mode] = [f"the {dialect.name} API refuses the body: {error.message}"]
        elif error is not None:
            found[mode] = [f"raised {type(error).__name__}: {error}"]
        elif len(sent) != 1 or not isinstance(sent[0].view, dict):
            found[mode] = [f"{len(sent)} requests with a JSON body reached the upstream"]
        else:
            found[mode] = conversation_differences(
                expected,
                dialect.read_conversation(sent[0].view),
                positions=_positions(request),
                default_max_tokens=dialect.requires_max_tokens,
            )
    if found["complete"] == found["stream"]:  # one bug, said once
        return [f"complete and stream: {problem}" for problem in found["complete"]]
    return [f"{mode}: {problem}" for mode, problems in found.items() for problem in problems]


_REFUSED: Final[Mapping[str, str]] = {
    "image": "an image by URL (the wire carries images inline only)",
    "tool_choice": "tool_choice none in a conversation that holds tool calls (the wire has no "
    "none, and needs the tools declared)",
}


def _must_refuse(conversation: NormalizedConversation, limits: Mapping[str, str]) -> str | None:
    """What in ``conversation`` the wire's limits say an adapter must refuse, as the word its
    error must name (``None``: nothing)."""
    if "image-url" in limits and any(
        image.source == "url" for turn in conversation.turns for image in turn.images
    ):
        return "image"
    if (
        "no-tool-choice-none" in limits
        and conversation.tool_choice == "none"
        and any(turn.tool_calls or turn.role == "tool" for turn in conversation.turns)
    ):
        return "tool_choice"
    return None


def _refusal(error: Exception | None, sent: bool, word: str) -> list[str]:
    """What is wrong with how an adapter handled a request its wire cannot carry: it must
    refuse it, typed and naming ``word``, before sending."""
    what = _REFUSED[word]
    if sent:
        return [f"{what} reached the upstream"]
    if not isinstance(error, ValueError | ProvaraError) or word not in str(error).lower():
        return [
            f"{what} was refused with {type(error).__name__}: {error}; expected a typed error "
            f"(ValueError) naming {word}"
        ]
    return []


def _declared(fields: Mapping[str, Any], unsupported: frozenset[str]) -> frozenset[str]:
    """The fields of a request the adapter declares unsupported."""
    return frozenset((set(fields) - {"messages"}) & unsupported)


def request_conversation(ctx: CheckContext) -> None:
    found = Findings()
    unsupported = declared_params(ctx.target).unsupported

    async def table() -> None:
        async with ctx.scripted() as (provider, upstream):
            for conversation in conversations():
                declared = _declared(conversation.fields, unsupported)
                request = ChatRequest(model=ctx.model, **conversation.fields)
                for problem in await _judge(ctx, provider, upstream, request, declared):
                    found.fail(f"{conversation.label} ({problem})")

    asyncio.run(table())
    found.raise_if_any()  # the table names a bug better than a generated example does

    async def combined(fields: dict[str, Any]) -> list[str]:
        async with ctx.scripted() as (provider, upstream):
            request = ChatRequest(model=ctx.model, **fields)
            return await _judge(ctx, provider, upstream, request, _declared(fields, unsupported))

    @SETTINGS
    @given(fields=conversation_fields())
    def arrives_whole(fields: dict[str, Any]) -> None:
        problems = asyncio.run(combined(fields))
        assert not problems, f"generated request {fields!r}: " + "; ".join(problems)

    for pinned in PINNED:
        arrives_whole = example(fields=dict(pinned))(arrives_whole)
    arrives_whole()


check(
    "request-conversation",
    "whole conversations (system, images, tool calls and results, tools, tool choice, "
    "limits, stop, user) arrive on the wire as the request holds them",
)(
    request_conversation  # type: ignore[arg-type]
)
