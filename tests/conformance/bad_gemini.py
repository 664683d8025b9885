"""Known-bad Gemini adapters: each reads the Gemini wire the way a plausible bug would, and
a check says so.

Most bugs are written as "the adapter reads each chunk as if a field were not there"
(:meth:`_Rewrites.rewrite`), which is what ignoring that field amounts to; the others
rewrite the events or answers the adapter produces, or its requests.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

from conformance import ConformanceTarget
from provara_kit.accounting import ParsedCompletion
from provara_kit.framings import Framing, JSONArrayDecoder
from provara_kit.providers.base import StreamMapper
from provara_kit.providers.gemini import GeminiProvider
from provara_kit.sse import ServerSentEvent
from provara_kit.streaming import Finish, StreamDone, UpstreamEvent, UsageUpdate
from provara_kit.testing.dialects.gemini import GeminiDialect
from provara_kit.types import ChatRequest, ToolCall, ToolCallDelta
from tests.conformance.bad_adapters import make_target
from tests.conformance.case import Case


class _Rewrites(GeminiProvider):
    """Reads every answer and stream chunk through :meth:`rewrite`, and passes what it
    makes of them through :meth:`event` and :meth:`parsed`."""

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any]:
        return chunk

    def event(self, event: UpstreamEvent) -> UpstreamEvent:
        return event

    def parsed(self, parsed: ParsedCompletion) -> ParsedCompletion:
        return parsed

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        if isinstance(body, dict) and not body.get("error"):
            body = self.rewrite(body)
        return self.parsed(super()._parse_completion(body))

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        inner = super()._stream_mapper(request)
        assert inner is not None
        return _RewritingMapper(self, inner)


class _RewritingMapper:
    def __init__(self, provider: _Rewrites, inner: StreamMapper) -> None:
        self._provider = provider
        self._inner = inner
        self.done = False

    def feed(self, frame: Any) -> list[UpstreamEvent]:
        data = frame.data if isinstance(frame, ServerSentEvent) else frame
        try:
            chunk = json.loads(data)
        except ValueError:
            chunk = None
        if isinstance(chunk, dict) and not chunk.get("error"):
            text = json.dumps(self._provider.rewrite(chunk))
            frame = ServerSentEvent(data=text) if isinstance(frame, ServerSentEvent) else text
        events = [self._provider.event(event) for event in self._inner.feed(frame)]
        self.done = self._inner.done
        return events

    def end(self) -> list[UpstreamEvent]:
        return [self._provider.event(event) for event in self._inner.end()]


def _usage(chunk: dict[str, Any]) -> dict[str, Any]:
    usage = chunk.get("usageMetadata")
    return usage if isinstance(usage, dict) else {}


def _candidates(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in chunk.get("candidates") or () if isinstance(c, dict)]


class DropsThoughtsTokens(_Rewrites):
    """Bills ``candidatesTokenCount`` as the output and forgets ``thoughtsTokenCount``: a
    thinking model's reasoning, billed as output, goes unpriced."""

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any]:
        _usage(chunk).pop("thoughtsTokenCount", None)
        return chunk


class SafetyIsStop(_Rewrites):
    """Knows ``STOP`` and ``MAX_TOKENS`` and calls every other finish ``stop``: an answer
    cut by the safety filter looks finished."""

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any]:
        for candidate in _candidates(chunk):
            if candidate.get("finishReason") not in (None, "MAX_TOKENS", 2):
                candidate["finishReason"] = "STOP"
        return chunk


class FirstPartOnly(_Rewrites):
    """Reads ``candidates[0].content.parts[0]`` and nothing after it: a whole answer's
    text after its thoughts, or its calls after its text, are lost."""

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any]:
        for candidate in _candidates(chunk)[:1]:
            content = candidate.get("content")
            if isinstance(content, dict) and content.get("parts"):
                content["parts"] = content["parts"][:1]
        return chunk


class IgnoresPromptFeedback(_Rewrites):
    """Looks for the answer in ``candidates`` only: a prompt blocked before any candidate
    (``promptFeedback.blockReason``) is an answer that never finished."""

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any]:
        chunk.pop("promptFeedback", None)
        return chunk


class FirstUsageOnly(_Rewrites):
    """Keeps the first ``usageMetadata`` of a stream: Gemini repeats it on every chunk, so
    only the prompt count of the first chunk survives, the output as it was then."""

    seen: bool = False

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        self.seen = False
        return super()._stream_mapper(request)

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any]:
        if "usageMetadata" in chunk and "candidates" in chunk:
            if self.seen:
                chunk.pop("usageMetadata")
            self.seen = True
        return chunk


class SumsUsageReports(_Rewrites):
    """Adds each ``usageMetadata`` to the last, as if every chunk reported only its own
    tokens: Gemini's reports are running totals, so the bill grows with every chunk."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        self.totals = [0, 0]
        return super()._stream_mapper(request)

    def event(self, event: UpstreamEvent) -> UpstreamEvent:
        if isinstance(event, UsageUpdate):
            self.totals[0] += event.input_tokens or 0
            self.totals[1] += event.output_tokens or 0
            return UsageUpdate(*self.totals)
        return event


class EndOfBodyIsClean(_Rewrites):
    """Takes the end of the body for the end of the answer, finish reason or not: a stream
    cut between chunks passes for a whole answer."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        mapper = super()._stream_mapper(request)
        if mapper is None:
            raise AssertionError("GeminiProvider maps streams with a StreamMapper")
        inner: StreamMapper = mapper

        class Mapper:
            done = False

            def feed(self, frame: Any) -> list[UpstreamEvent]:
                return inner.feed(frame)

            def end(self) -> list[UpstreamEvent]:
                return inner.end() or [StreamDone()]

        return Mapper()


class NamesOnlyFinishes(_Rewrites):
    """Reads the finish reason as a name: integer enums (``enum-encoding=int``, as a
    proxy or an older client asks for) come out as ``"1"``."""

    def rewrite(self, chunk: dict[str, Any]) -> dict[str, Any]:
        for candidate in _candidates(chunk):
            reason = candidate.get("finishReason")
            if isinstance(reason, int):
                candidate["finishReason"] = f"FINISH_{reason}"
        return chunk


class StopIsNeverToolCalls(_Rewrites):
    """Passes ``STOP`` on as ``stop`` even when the answer called functions: the client
    never runs the tools."""

    def event(self, event: UpstreamEvent) -> UpstreamEvent:
        return Finish("stop") if event == Finish("tool_calls") else event

    def parsed(self, parsed: ParsedCompletion) -> ParsedCompletion:
        if parsed.finish_reason == "tool_calls":
            parsed.finish_reason = "stop"
        return parsed


class RandomCallIds(_Rewrites):
    """Gives a call the API sent without an id a fresh random one: the same answer read
    twice (or streamed and not) names its calls differently."""

    def event(self, event: UpstreamEvent) -> UpstreamEvent:
        if isinstance(event, ToolCallDelta) and event.id is not None:
            return dataclasses.replace(event, id=f"call_{uuid.uuid4().hex[:24]}")
        return event

    def parsed(self, parsed: ParsedCompletion) -> ParsedCompletion:
        parsed.tool_calls = [
            ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=c.name, arguments=c.arguments)
            for c in parsed.tool_calls
        ]
        return parsed


class KeyAsQueryParameter(GeminiProvider):
    """Sends the key as ``?key=`` as Google's curl examples do: every proxy and access log
    on the way records it."""

    def _headers(self) -> dict[str, str]:
        return {}

    def _request_path(self, request: ChatRequest, *, stream: bool) -> str:
        path = super()._request_path(request, stream=stream)
        return f"{path}{'&' if '?' in path else '?'}key={self._api_key}"


class KeepsModelsPrefix(GeminiProvider):
    """Returns the listing's names as they are (``models/gemini-...``), which no request
    accepts as a model id."""

    async def discover_models(self) -> list[str] | None:
        models = await super().discover_models()
        return None if models is None else [f"models/{model}" for model in models]


class _ListingRewrite(GeminiProvider):
    def listing(self, body: dict[str, Any]) -> dict[str, Any]:
        return body

    async def _get_json(self, path: str) -> Any:
        body = await super()._get_json(path)
        return self.listing(body) if isinstance(body, dict) else body


class KeepsEmbedders(_ListingRewrite):
    """Ignores ``supportedGenerationMethods``: an embedding model is offered for chat."""

    def listing(self, body: dict[str, Any]) -> dict[str, Any]:
        for model in body.get("models") or ():
            if isinstance(model, dict):
                model.pop("supportedGenerationMethods", None)
        return body


class FirstPageOnly(_ListingRewrite):
    """Reads one page of ``GET /models`` and never follows ``nextPageToken``."""

    def listing(self, body: dict[str, Any]) -> dict[str, Any]:
        body.pop("nextPageToken", None)
        return body


# -- the JSON-array framing ----------------------------------------------------------------


class _HoldsBackLast(JSONArrayDecoder):
    """Hands each element over when the next one arrives; the last has no next one."""

    def __init__(self) -> None:
        super().__init__()
        self._held: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        frames = self._held + super().feed(chunk)
        self._held = frames[-1:]
        return frames[:-1]

    def end(self) -> list[str]:
        return super().end()


class _GeminiArray(GeminiProvider):
    """The adapter asking for JSON-array streams (the unbroken parent of array bugs)."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("stream_framing", "json-array")
        super().__init__(**options)


class LosesLastArrayElement(_GeminiArray):
    """Splits the array on ``,`` boundaries and drops what is left at ``]``: the last
    element, which carries the finish reason and the final usage, never arrives."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        vars(self)["framing"] = Framing("json-array", "application/json", _HoldsBackLast)


class _NeverClosed(JSONArrayDecoder):
    """Cuts the array into elements but never says the array closed."""

    def feed(self, chunk: bytes) -> list[str]:
        frames = super().feed(chunk)
        self.closed = False
        return frames


class ReadsArrayToConnectionClose(_GeminiArray):
    """Takes the end of the connection for the end of the stream, as with SSE: a server
    that keeps the connection open after the array's ``]`` stalls the stream until the
    stream timeout."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        vars(self)["framing"] = Framing("json-array", "application/json", _NeverClosed)


class SSEOnlyMapper(_GeminiArray):
    """Reads every frame as an SSE event's ``data``: asked for a JSON array it finds no
    ``data`` fields and nothing in the stream."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        inner = super()._stream_mapper(request)
        if inner is None:
            raise AssertionError("GeminiProvider maps streams with a StreamMapper")
        mapper: StreamMapper = inner

        class Mapper:
            done = False

            def feed(self, frame: Any) -> list[UpstreamEvent]:
                if isinstance(frame, str):
                    frame = ServerSentEvent(data="{}")
                return mapper.feed(frame)

            def end(self) -> list[UpstreamEvent]:
                return mapper.end()

        return Mapper()


@dataclasses.dataclass(frozen=True)
class GeminiCase(Case):
    """A case whose control is the kit's Gemini adapter (asking for the framing the bad
    one asks for), against the dialect in that framing."""

    def target(self, fixtures: Path, *, control: bool = False) -> ConformanceTarget:
        array = issubclass(self.adapter, _GeminiArray)
        adapter = (_GeminiArray if array else GeminiProvider) if control else self.adapter
        target = make_target(adapter, models=self.models, fixtures_dir=fixtures)
        dialect = GeminiDialect(stream_framing="json-array" if array else "sse")
        return dataclasses.replace(target, dialect=dialect)


CASES: tuple[Case, ...] = (
    GeminiCase(
        "outcome-fidelity",
        DropsThoughtsTokens,
        r"usage with cached input and reasoning output \(complete\): output tokens",
    ),
    GeminiCase(
        "outcome-fidelity", SafetyIsStop, r"finish reason 'SAFETY' \(complete\): finish_reason"
    ),
    GeminiCase(
        "outcome-fidelity", FirstPartOnly, r"reasoning, then text \(complete\): text '' != '42'"
    ),
    GeminiCase(
        "outcome-fidelity",
        IgnoresPromptFeedback,
        r"the prompt blocked before any candidate: plain text \(complete\): raised",
    ),
    GeminiCase("outcome-fidelity", FirstUsageOnly, r"usage cumulative \(stream\): output tokens"),
    GeminiCase("outcome-fidelity", SumsUsageReports, r"usage cumulative \(stream\): input tokens"),
    GeminiCase(
        "stream-aborted",
        EndOfBodyIsClean,
        r"body ends after the last content, before the terminal marker: ended with a clean end",
    ),
    GeminiCase(
        "outcome-fidelity",
        NamesOnlyFinishes,
        r"integer enums \(enum-encoding=int\), usage on every chunk: plain text \(complete\): "
        r"finish_reason 'finish_1' != 'stop'",
    ),
    GeminiCase(
        "outcome-fidelity",
        StopIsNeverToolCalls,
        r"one tool call \(complete\): finish_reason 'stop' != 'tool_calls'",
    ),
    GeminiCase("outcome-fidelity", RandomCallIds, r"one tool call \(complete\): tool call 0 id"),
    GeminiCase(
        "request-shape", KeyAsQueryParameter, r"the API key travels in the URL query string"
    ),
    GeminiCase("model-discovery", KeepsModelsPrefix, r"added \['models/"),
    GeminiCase("model-discovery", KeepsEmbedders, r"added \['gemini-embedding-001'\]"),
    GeminiCase("model-discovery", FirstPageOnly, r"in pages of 2: lost .* \(returned 2 of 8 ids\)"),
    GeminiCase("status-200", LosesLastArrayElement, r"stream: raised StreamAbortedError"),
    GeminiCase("status-200", SSEOnlyMapper, r"stream: raised StreamAbortedError"),
    GeminiCase(
        "stream-timeout",
        ReadsArrayToConnectionClose,
        r"a connection held open after the terminal marker ended the stream with "
        r"StreamTimeoutError",
    ),
)
