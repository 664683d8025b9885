"""Known-bad adapters for token counters: each one wires a counter in wrong.

Every adapter hides its counter from the kit's pipeline and counts missing usage itself in
``_recount``, making one mistake hand-written counting really makes. ``token-fallback``
installs its probe counters on each of them and fails for the reason named in ``CASES``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

from provara_kit.counters import TokenCounter
from provara_kit.errors import StreamAbortedError
from provara_kit.providers.anthropic import AnthropicProvider, AnthropicTokenCounter
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.streaming import ChatStream
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from tests.conformance.bad_adapters import _restream
from tests.conformance.case import Case

_SIDES = ("input", "output")


class _OwnCounting(OpenAICompatibleProvider):
    """Counting by hand: the pipeline runs without the counter, and ``_recount`` fills the
    meta's estimated counts from it once the answer is in."""

    async def _ask(
        self, counter: TokenCounter, side: str, request: ChatRequest, text: str
    ) -> int | None:
        try:
            async with asyncio.timeout(counter.timeout):
                if side == "input":
                    value = await counter.count_input(request)
                else:
                    value = await counter.count_output(text, request)
        except Exception:
            return None
        return value if type(value) is int and value >= 0 else None

    async def _recount(
        self, meta: ProvaraMeta, request: ChatRequest, text: str, counter: TokenCounter
    ) -> ProvaraMeta:
        update: dict[str, Any] = {}
        for side in _SIDES:
            if getattr(meta, f"{side}_tokens_source") == "estimated":
                value = await self._ask(counter, side, request, text)
                if value is not None:
                    update[f"{side}_tokens"] = value
                    update[f"{side}_tokens_method"] = counter.method
        return dataclasses.replace(meta, **update)

    def _without_counter(self) -> TokenCounter | None:
        counter = self.token_counter
        self.token_counter = None
        return counter

    async def complete(self, request: ChatRequest) -> ChatResponse:
        counter = self._without_counter()
        try:
            response = await super().complete(request)
        finally:
            self.token_counter = counter
        if counter is None:
            return response
        produced = response.reasoning + response.text
        produced += "".join((c.name or "") + c.arguments for c in response.tool_calls)
        meta = await self._recount(response.meta, request, produced, counter)
        return response.model_copy(update={"meta": meta, "usage": meta.usage})

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        counter = self._without_counter()
        try:
            inner = super().complete_stream(request)
        finally:
            self.token_counter = counter
        return _restream(inner, self._events(inner, request, counter))

    async def _events(
        self, inner: ChatStream, request: ChatRequest, counter: TokenCounter | None
    ) -> AsyncGenerator[StreamEvent, None]:
        produced: list[str] = []
        async for event in inner:
            if isinstance(event, (TextDelta, ReasoningDelta)):
                produced.append(event.text)
            elif isinstance(event, ToolCallDelta):
                produced.append((event.name or "") + event.arguments)
            elif counter is not None:
                event = await self._recount(event, request, "".join(produced), counter)
            yield event


class IgnoresCounter(_OwnCounting):
    """Runs its own stream pipeline without passing the adapter's token counter on, so
    missing usage is always ``chars / 4`` however good the counter is."""

    async def _recount(
        self, meta: ProvaraMeta, request: ChatRequest, text: str, counter: TokenCounter
    ) -> ProvaraMeta:
        return meta


class CountsReportedUsage(_OwnCounting):
    """Asks the counter for both counts on every request "to compare", even when the
    upstream reported them: a count-endpoint call per request, for nothing."""

    async def _recount(
        self, meta: ProvaraMeta, request: ChatRequest, text: str, counter: TokenCounter
    ) -> ProvaraMeta:
        counted = {side: await self._ask(counter, side, request, text) for side in _SIDES}
        update: dict[str, Any] = {}
        for side in _SIDES:
            if getattr(meta, f"{side}_tokens_source") == "estimated" and counted[side] is not None:
                update[f"{side}_tokens"] = counted[side]
                update[f"{side}_tokens_method"] = counter.method
        return dataclasses.replace(meta, **update)


class CountAsUpstream(_OwnCounting):
    """Marks a counter's count as the upstream's ("the provider's own endpoint counted
    it"), so the meta claims usage the upstream never reported."""

    async def _recount(
        self, meta: ProvaraMeta, request: ChatRequest, text: str, counter: TokenCounter
    ) -> ProvaraMeta:
        update: dict[str, Any] = {}
        for side in _SIDES:
            if getattr(meta, f"{side}_tokens_source") == "estimated":
                value = await self._ask(counter, side, request, text)
                if value is not None:
                    update[f"{side}_tokens"] = value
                    update[f"{side}_tokens_source"] = "upstream"
                    update[f"{side}_tokens_method"] = "upstream"
        return dataclasses.replace(meta, **update)


class CounterFailureAborts(_OwnCounting):
    """Awaits the counter without a fallback: a count endpoint that errors turns a
    finished answer into an aborted stream, and the request is never recorded."""

    async def _recount(
        self, meta: ProvaraMeta, request: ChatRequest, text: str, counter: TokenCounter
    ) -> ProvaraMeta:
        update: dict[str, Any] = {}
        for side in _SIDES:
            if getattr(meta, f"{side}_tokens_source") == "estimated":
                try:
                    async with asyncio.timeout(counter.timeout):
                        if side == "input":
                            value = await counter.count_input(request)
                        else:
                            value = await counter.count_output(text, request)
                except Exception as exc:
                    raise StreamAbortedError(
                        f"token counting failed: {type(exc).__name__}", provider=self.name
                    ) from None
                update[f"{side}_tokens"] = value
                update[f"{side}_tokens_method"] = counter.method
        return dataclasses.replace(meta, **update)


class UnboundedCounter(_OwnCounting):
    """Awaits the counter with no time limit: a count endpoint that hangs holds the
    finished stream open, and its meta never comes."""

    async def _ask(
        self, counter: TokenCounter, side: str, request: ChatRequest, text: str
    ) -> int | None:
        try:
            if side == "input":
                value = await counter.count_input(request)
            else:
                value = await counter.count_output(text, request)
        except Exception:
            return None
        return value if type(value) is int and value >= 0 else None


class TrustsAnyCount(_OwnCounting):
    """Takes whatever the counter answers as the count: a negative number or a string
    lands in the meta, the usage table and the bill."""

    async def _ask(
        self, counter: TokenCounter, side: str, request: ChatRequest, text: str
    ) -> int | None:
        try:
            async with asyncio.timeout(counter.timeout):
                if side == "input":
                    return await counter.count_input(request)
                return await counter.count_output(text, request)
        except Exception:
            return None


class SameCountBothSides(_OwnCounting):
    """Counts once, the prompt, and uses that number for the output too ("close
    enough"): output tokens are billed at the input's count."""

    async def _recount(
        self, meta: ProvaraMeta, request: ChatRequest, text: str, counter: TokenCounter
    ) -> ProvaraMeta:
        update: dict[str, Any] = {}
        value = await self._ask(counter, "input", request, text)
        if value is None:
            return meta
        for side in _SIDES:
            if getattr(meta, f"{side}_tokens_source") == "estimated":
                update[f"{side}_tokens"] = value
                update[f"{side}_tokens_method"] = counter.method
        return dataclasses.replace(meta, **update)


class CountsBeforeContent(_OwnCounting):
    """Counts the prompt up front, before the first content event, "so the count is
    ready at the end": every stream's first token waits for a count-endpoint call."""

    async def _events(
        self, inner: ChatStream, request: ChatRequest, counter: TokenCounter | None
    ) -> AsyncGenerator[StreamEvent, None]:
        early = None if counter is None else await self._ask(counter, "input", request, "")
        async for event in super()._events(inner, request, counter):
            if (
                isinstance(event, ProvaraMeta)
                and early is not None
                and counter is not None
                and event.input_tokens_source == "estimated"
            ):
                event = dataclasses.replace(
                    event, input_tokens=early, input_tokens_method=counter.method
                )
            yield event

    async def _recount(
        self, meta: ProvaraMeta, request: ChatRequest, text: str, counter: TokenCounter
    ) -> ProvaraMeta:
        if meta.output_tokens_source != "estimated":
            return meta
        value = await self._ask(counter, "output", request, text)
        if value is None:
            return meta
        return dataclasses.replace(meta, output_tokens=value, output_tokens_method=counter.method)


class _WholeRequestCounter(AnthropicTokenCounter):
    def _body(self, request: ChatRequest) -> dict[str, Any]:
        return self._provider._build_payload(request, stream=False)


class CountsWithCompletionBody(AnthropicProvider):
    """Sends the whole messages request to ``messages/count_tokens`` (``max_tokens`` and
    all): the endpoint refuses those fields with a 400, so its counts never arrive."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.token_counter = _WholeRequestCounter(self)


CASES: tuple[Case, ...] = (
    Case(
        "token-fallback",
        CountsWithCompletionBody,
        r"the adapter's count-endpoint counter cannot count input tokens against its "
        r"scripted upstream: BadRequestError: .*max_tokens: Extra inputs are not permitted",
    ),
    Case(
        "token-fallback",
        IgnoresCounter,
        r"a tokenizer counter, usage null \(stream\): input \(14, 'estimated'\) != "
        r"\(101, 'estimated'\)",
    ),
    Case(
        "token-fallback",
        CountsReportedUsage,
        r"a tokenizer counter, usage zero \(stream\): the counter was asked for the input "
        r"count the upstream reported",
    ),
    Case(
        "token-fallback",
        CountAsUpstream,
        r"a tokenizer counter, usage null \(stream\): input \(101, 'upstream'\) != "
        r"\(101, 'estimated'\)",
    ),
    Case(
        "token-fallback",
        CounterFailureAborts,
        r"a counter that raises, usage null \(stream\): ended with StreamAbortedError",
    ),
    Case(
        "token-fallback",
        UnboundedCounter,
        r"a counter that never answers, usage null \(stream\): ended with TimeoutError\("
        r"'the stream was still open",
    ),
    Case(
        "token-fallback",
        TrustsAnyCount,
        r"a counter that answers -7 and '12', usage null \(stream\): input \(-7, 'estimated'\)",
    ),
    Case(
        "token-fallback",
        SameCountBothSides,
        r"a tokenizer counter, usage null \(stream\): output \(101, 'estimated'\) != "
        r"\(37, 'estimated'\)",
    ),
    Case(
        "token-fallback",
        CountsBeforeContent,
        r"a tokenizer counter, usage null \(stream\): the counter was asked for the input "
        r"count after 0 of \d+ content events reached the client",
    ),
)
