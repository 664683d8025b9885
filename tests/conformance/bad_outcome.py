"""Known-bad adapters for ``outcome-fidelity`` and ``sse-framing``: each reads one dimension
of the answer wrong, the way third-party adapters really do."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import httpx

from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.base import ParsedCompletion
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.sse import ServerSentEvent
from provara_kit.streaming import Finish, UpstreamEvent, UsageUpdate
from provara_kit.types import ChatRequest, ReasoningDelta, TextDelta, ToolCallDelta
from tests.conformance.case import Case

# -- finish reasons --------------------------------------------------------------------------


class MaxTokensUnmapped(AnthropicProvider):
    """Maps only the stop reasons of the docs' first example (``end_turn``, ``tool_use``):
    a truncated answer (``max_tokens``) reaches clients as ``"max_tokens"``, which no
    OpenAI client knows, so truncation goes unnoticed."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        if body.get("stop_reason") not in ("end_turn", "tool_use"):
            parsed.finish_reason = body.get("stop_reason")
        return parsed

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            if isinstance(event, Finish) and event.reason == "length":
                event = Finish("max_tokens")
            yield event


# -- tool calls ------------------------------------------------------------------------------


class LastArgumentFragmentWins(OpenAICompatibleProvider):
    """Collects streamed tool calls in a dict and assigns each fragment's arguments
    instead of appending them (``calls[i]["arguments"] = fragment``), then emits whole
    calls at the finish: arguments that arrive in pieces are cut to the last piece."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        calls: dict[int, ToolCallDelta] = {}
        async for event in super()._map_stream(events, request):
            if isinstance(event, ToolCallDelta):
                known = calls.get(event.index)
                calls[event.index] = ToolCallDelta(
                    event.index,
                    known.id if known else event.id,
                    known.name if known else event.name,
                    event.arguments or (known.arguments if known else ""),
                )
                continue
            if isinstance(event, Finish):
                for call in calls.values():
                    yield call
            yield event


class MergesParallelToolCalls(OpenAICompatibleProvider):
    """Ignores the tool call ``index`` ("the model calls one tool at a time"): parallel
    calls are streamed as one call whose arguments are all of theirs run together."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            if isinstance(event, ToolCallDelta):
                event = ToolCallDelta(0, event.id, event.name, event.arguments)
            yield event


# -- reasoning and text ------------------------------------------------------------------------


class ReasoningAsText(OpenAICompatibleProvider):
    """Shows the model's reasoning to the user as answer text ("it is just more text"):
    clients print the chain of thought as the answer, streamed or not."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            yield TextDelta(event.text) if isinstance(event, ReasoningDelta) else event

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        parsed.text, parsed.reasoning = parsed.reasoning + parsed.text, ""
        return parsed


class DropsWhitespaceDeltas(OpenAICompatibleProvider):
    """Skips deltas that are only whitespace (``if delta.strip():``, to "filter empty
    chunks"): spaces and newlines between words vanish from streamed answers."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            if isinstance(event, TextDelta) and not event.text.strip():
                continue
            yield event


class StripsCompletionText(AnthropicProvider):
    """Returns ``text.strip()`` from ``complete`` "for tidy output": leading and trailing
    spaces the model produced are lost, and streamed and plain answers disagree."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        parsed.text = parsed.text.strip()
        return parsed


# -- usage ---------------------------------------------------------------------------------------


class SumsContinuousUsage(OpenAICompatibleProvider):
    """Adds up every usage report of a stream (``total += chunk.usage``), but providers
    with continuous usage stats report running totals on every chunk: tokens are
    counted many times over."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        total_in = total_out = 0
        async for event in super()._map_stream(events, request):
            if isinstance(event, UsageUpdate):
                total_in += event.input_tokens or 0
                total_out += event.output_tokens or 0
                event = UsageUpdate(input_tokens=total_in, output_tokens=total_out)
            yield event


def _raw_usage(sse: ServerSentEvent | None) -> dict[str, Any] | None:
    if sse is None or not sse.data.startswith("{"):
        return None
    data = json.loads(sse.data)
    usage = data.get("usage") or (data.get("message") or {}).get("usage")
    return usage if isinstance(usage, dict) else None


class IgnoresCacheTokens(AnthropicProvider):
    """Reads ``usage.input_tokens`` alone, but Anthropic leaves the cached part of the
    prompt out of it (``cache_read_input_tokens``, ``cache_creation_input_tokens``):
    every cached request is under-billed."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        usage = body.get("usage") or {}
        if isinstance(usage.get("input_tokens"), int):
            parsed.input_tokens = usage["input_tokens"]
        return parsed

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        seen: dict[str, int] = {}

        async def spied() -> AsyncGenerator[ServerSentEvent | None, None]:
            async for sse in events:
                usage = _raw_usage(sse)
                if usage and isinstance(usage.get("input_tokens"), int):
                    seen["input"] = usage["input_tokens"]
                yield sse

        async for event in super()._map_stream(spied(), request):
            if isinstance(event, UsageUpdate) and event.input_tokens is not None:
                event = UsageUpdate(seen.get("input"), event.output_tokens)
            yield event


class SubtractsReasoningTokens(OpenAICompatibleProvider):
    """Bills ``completion_tokens - reasoning_tokens`` ("only the visible answer"), but
    OpenAI bills reasoning tokens as output: reasoning models are under-billed."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        details = (body.get("usage") or {}).get("completion_tokens_details") or {}
        if parsed.output_tokens is not None:
            parsed.output_tokens -= details.get("reasoning_tokens") or 0
        return parsed


# -- provider variants of the OpenAI wire ------------------------------------------------------


async def _rewritten(
    events: AsyncIterator[ServerSentEvent | None], forget: Callable[[dict[str, Any]], None]
) -> AsyncGenerator[ServerSentEvent | None, None]:
    """``events`` with each JSON object passed through ``forget`` first (which edits it)."""
    async for sse in events:
        if sse is not None and sse.data.startswith("{"):
            data = json.loads(sse.data)
            forget(data)
            sse = ServerSentEvent(data=json.dumps(data), event=sse.event)
        yield sse


class _ChunkRewriter(OpenAICompatibleProvider):
    """Shared plumbing: the adapter's reading of each chunk misses what ``_forget`` drops."""

    def _forget(self, chunk: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(_rewritten(events, self._forget), request):
            yield event


class ReadsReasoningContentOnly(_ChunkRewriter):
    """Reads reasoning from ``delta.reasoning_content`` only (DeepSeek's field): providers
    that stream it as ``delta.reasoning`` (OpenRouter, Groq) lose it."""

    def _forget(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            (choice.get("delta") or {}).pop("reasoning", None)


class IndexlessToolCallsShareSlotZero(_ChunkRewriter):
    """``index = call.get("index", 0)``: Mistral sends whole tool calls without an index,
    so parallel calls all land in slot 0 and run together."""

    def _forget(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            for call in (choice.get("delta") or {}).get("tool_calls") or ():
                call.setdefault("index", 0)


class IgnoresGroqUsage(_ChunkRewriter):
    """Reads ``chunk["usage"]`` only: Groq's legacy streams report it under
    ``x_groq.usage``, so their token counts are estimated instead of billed."""

    def _forget(self, chunk: dict[str, Any]) -> None:
        chunk.pop("x_groq", None)


class SkipsErrorObjects(_ChunkRewriter):
    """Skips chunks it does not recognise, an ``{"error": ...}`` chunk among them:
    OpenRouter sends the error and then ``[DONE]``, so a failed answer ends "cleanly"
    with whatever text came before the error."""

    def _forget(self, chunk: dict[str, Any]) -> None:
        chunk.pop("error", None)


class ReasoningOrContent(_ChunkRewriter):
    """Reads a delta as reasoning *or* text (``if "reasoning_content" in delta: ... elif``):
    DeepSeek's text deltas carry ``"reasoning_content": null`` beside the text, which is
    then lost."""

    def _forget(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if "reasoning_content" in delta:
                delta.pop("content", None)


class FirstChoiceIsTheAnswer(_ChunkRewriter):
    """Streams ``chunk["choices"][0]`` whatever its ``index``: with ``n=2`` the second
    answer's text is mixed into the first."""

    def _forget(self, chunk: dict[str, Any]) -> None:
        choices = chunk.get("choices") or []
        if choices:
            chunk["choices"] = [{**choices[0], "index": 0}]


class _AnthropicSpy(AnthropicProvider):
    """Shared plumbing: rewrites each Anthropic event before the real mapping reads it."""

    def _forget(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(_rewritten(events, self._forget), request):
            yield event


class IgnoresBlockStartText(_AnthropicSpy):
    """Reads text only from ``content_block_delta``: an endpoint whose text blocks start
    with their first piece (``content_block_start`` carrying ``text``) loses it."""

    def _forget(self, data: dict[str, Any]) -> None:
        block = data.get("content_block") or {}
        if data.get("type") == "content_block_start" and block.get("type") == "text":
            block["text"] = ""


class MissingDeltaInputIsZero(_AnthropicSpy):
    """``usage.get("input_tokens", 0)`` on ``message_delta``: where the delta reports output
    tokens only, the input count the stream started with is replaced by 0."""

    def _forget(self, data: dict[str, Any]) -> None:
        usage = data.get("usage")
        if data.get("type") == "message_delta" and isinstance(usage, dict):
            usage.setdefault("input_tokens", 0)


class FirstTextBlockOnly(AnthropicProvider):
    """Reads ``next(b for b in content if b["type"] == "text")["text"]``: an answer in
    several text blocks (as answers interleaved with server tool results come) loses
    every block but the first."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        blocks = body.get("content") or []
        texts = [i for i, b in enumerate(blocks) if b.get("type") == "text"]
        trimmed = {**body, "content": [b for i, b in enumerate(blocks) if i not in texts[1:]]}
        return super()._parse_completion(trimmed)


class EventNameOnly(AnthropicProvider):
    """Tells events apart by the SSE ``event:`` line alone: an endpoint that sends only
    ``data:`` lines (the JSON ``type`` names each event) yields nothing it understands."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async def renamed() -> AsyncGenerator[ServerSentEvent | None, None]:
            async for sse in events:
                if sse is not None and sse.data.startswith("{"):
                    data = {**json.loads(sse.data), "type": sse.event}
                    sse = ServerSentEvent(data=json.dumps(data), event=sse.event)
                yield sse

        async for event in super()._map_stream(renamed(), request):
            yield event


class FirstInputReportWins(_AnthropicSpy):
    """Takes the input count from ``message_start`` and ignores the one ``message_delta``
    brings, but server tools add input while the answer runs: the last report is the
    bill."""

    def _forget(self, data: dict[str, Any]) -> None:
        usage = data.get("usage")
        if data.get("type") == "message_delta" and isinstance(usage, dict):
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
                usage.pop(key, None)


# -- framing -------------------------------------------------------------------------------------


class SplitsOnBlankLine(OpenAICompatibleProvider):
    """Parses the event stream by hand: buffers text, splits events on ``"\\n\\n"`` and
    takes ``line[6:]`` after ``"data: "``. Servers that end lines with CRLF, omit the
    space after the colon or spread data over several lines break it."""

    async def _upstream_events(
        self, request: ChatRequest, payload: dict[str, Any]
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async with self._open_stream(payload) as response:
            mapped = self._map_stream(_naive_sse(response), request)
            try:
                async for event in mapped:
                    yield event
            finally:
                await mapped.aclose()  # type: ignore[attr-defined]


async def _naive_sse(response: httpx.Response) -> AsyncGenerator[ServerSentEvent | None, None]:
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        found = False
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            event = ""
            data = []
            for line in block.split("\n"):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            if data:
                found = True
                yield ServerSentEvent(data="".join(data), event=event or "message")
        if not found:
            yield None


CASES: tuple[Case, ...] = (
    Case(
        "outcome-fidelity",
        MaxTokensUnmapped,
        r"finish reason 'max_tokens' \(complete\): finish_reason 'max_tokens' != 'length'",
    ),
    Case(
        "outcome-fidelity",
        LastArgumentFragmentWins,
        r"arguments in fragments \(stream\): tool call 0 arguments ', \"days\": 3}' are not JSON",
    ),
    Case(
        "outcome-fidelity",
        MergesParallelToolCalls,
        r"parallel tool calls, arguments in fragments \(stream\): 1 tool calls != 3",
    ),
    Case(
        "outcome-fidelity",
        ReasoningAsText,
        r"reasoning, then text \(complete\): text 'Six times seven.42' != '42'",
    ),
    Case(
        "outcome-fidelity",
        DropsWhitespaceDeltas,
        r"whitespace-only text \(stream\): text '' != ' \\n\\t '",
    ),
    Case(
        "outcome-fidelity",
        StripsCompletionText,
        r"leading and trailing spaces \(complete\): text 'Hi there' != '  Hi there  '",
    ),
    Case(
        "outcome-fidelity",
        SumsContinuousUsage,
        r"usage cumulative \(stream\): output tokens \(\d+, 'upstream'\) != \(567, 'upstream'\)",
    ),
    Case(
        "outcome-fidelity",
        IgnoresCacheTokens,
        r"cached input and reasoning output \(complete\): input tokens \(234, 'upstream'\) != \(1234, 'upstream'\)",
    ),
    Case(
        "outcome-fidelity",
        SubtractsReasoningTokens,
        r"cached input and reasoning output \(complete\): output tokens \(267, 'upstream'\) != \(567, 'upstream'\)",
    ),
    Case(
        "outcome-fidelity",
        ReadsReasoningContentOnly,
        r"OpenRouter-style .*: reasoning, then text \(stream\): reasoning '' != 'Six times seven.'",
    ),
    Case(
        "outcome-fidelity",
        IndexlessToolCallsShareSlotZero,
        r"Mistral-style .*: parallel tool calls, arguments in fragments \(stream\): 1 tool calls != 3",
    ),
    Case(
        "outcome-fidelity",
        IgnoresGroqUsage,
        r"Groq-style .*: plain text \(stream\): input tokens \(\d+, 'estimated'\) != \(1234, 'upstream'\)",
    ),
    Case(
        "stream-aborted",
        SkipsErrorObjects,
        r"upstream error event after the first content: ended with a clean end",
    ),
    Case(
        "outcome-fidelity",
        SkipsErrorObjects,
        r"an error event after the first content ended with a clean end",
    ),
    Case(
        "outcome-fidelity",
        ReasoningOrContent,
        r"DeepSeek-style .*: plain text \(stream\): text '' != 'Hello, world'",
    ),
    Case(
        "outcome-fidelity",
        FirstChoiceIsTheAnswer,
        r"two choices per chunk .*: plain text \(stream\): text '\(another answer\)",
    ),
    Case(
        "outcome-fidelity",
        IgnoresBlockStartText,
        r"blocks that start with their first piece.*: plain text \(stream\): text ', world' != 'Hello, world'",
    ),
    Case(
        "outcome-fidelity",
        MissingDeltaInputIsZero,
        r"output tokens only: plain text \(stream\): input tokens \(0, 'upstream'\) != \(1234, 'upstream'\)",
    ),
    Case(
        "outcome-fidelity",
        FirstTextBlockOnly,
        r"a block per piece.*: plain text \(complete\): text 'Hello' != 'Hello, world'",
    ),
    Case(
        "outcome-fidelity",
        EventNameOnly,
        r"a block per piece.*: plain text \(stream\): ended with StreamAbortedError",
    ),
    Case(
        "outcome-fidelity",
        FirstInputReportWins,
        r"input counted up in message_delta: plain text \(stream\): input tokens \(1233, 'upstream'\) != \(1234, 'upstream'\)",
    ),
    Case(
        "replay-fixtures",
        ReasoningAsText,
        r"stream-tools #1: text 'Let me think.' != ''; stream-tools #1: reasoning '' != 'Let me think.'",
    ),
    Case(
        "replay-fixtures",
        LastArgumentFragmentWins,
        r"stream-tools #1: tool call 0 arguments 'sbon\"}' are not JSON text",
    ),
    Case(
        "sse-framing", SplitsOnBlankLine, r"space_after_colon=False: ended with StreamAbortedError"
    ),
)
