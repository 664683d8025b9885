"""Known-bad adapters for an NDJSON wire (Ollama's ``/api/chat``): the mistakes authors of
newline-delimited JSON adapters make, each caught by a check."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from provara_kit.accounting import ParsedCompletion
from provara_kit.framings import Framing, NDJSONDecoder
from provara_kit.json_codec import loads
from provara_kit.providers.base import KEEP_ALIVE, StreamMapper
from provara_kit.providers.ollama import OllamaProvider
from provara_kit.streaming import Finish, StreamDone, UpstreamEvent, UsageUpdate
from provara_kit.types import ChatRequest, ToolCallDelta
from tests.conformance.case import Case

Rewrite = Callable[[str, list[UpstreamEvent]], list[UpstreamEvent]]


class _Mapper:
    """The real mapper, with each line's events passed through ``rewrite``."""

    def __init__(self, inner: StreamMapper, rewrite: Rewrite, end: list[UpstreamEvent]) -> None:
        self._inner = inner
        self._rewrite = rewrite
        self._end = end

    @property
    def done(self) -> bool:
        return self._inner.done

    def feed(self, frame: Any) -> list[UpstreamEvent]:
        return self._rewrite(frame, self._inner.feed(frame))

    def end(self) -> list[UpstreamEvent]:
        return self._inner.end() + self._end


class _Rewrites(OllamaProvider):
    """Shared plumbing: ``_line`` rewrites a streamed line's events, ``_whole`` a parsed
    answer; ``_at_end`` is what a body that ends without the done line yields."""

    _at_end: ClassVar[list[UpstreamEvent]] = []

    def _line(self, line: str, events: list[UpstreamEvent]) -> list[UpstreamEvent]:
        return events

    def _whole(self, parsed: ParsedCompletion) -> ParsedCompletion:
        return parsed

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        inner = super()._stream_mapper(request)
        assert inner is not None
        return _Mapper(inner, self._line, list(self._at_end))

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        return self._whole(super()._parse_completion(body))


class EndOfBodyIsDone(_Rewrites):
    """Treats the end of the body as the end of the answer (``for line in
    response.iter_lines(): ...`` then "done"): a server that dies before its ``done`` line
    gives a clean, cut-short answer with a meta."""

    _at_end: ClassVar[list[UpstreamEvent]] = [StreamDone()]


class EvalCountAsInput(_Rewrites):
    """Reads ``eval_count`` as the input count and ``prompt_eval_count`` as the output
    ("eval" read as "evaluated prompt"): every bill swaps its two sides."""

    def _line(self, line: str, events: list[UpstreamEvent]) -> list[UpstreamEvent]:
        return [
            UsageUpdate(e.output_tokens, e.input_tokens) if isinstance(e, UsageUpdate) else e
            for e in events
        ]

    def _whole(self, parsed: ParsedCompletion) -> ParsedCompletion:
        return dataclasses.replace(
            parsed, input_tokens=parsed.output_tokens, output_tokens=parsed.input_tokens
        )


class MissingPromptCountIsZero(_Rewrites):
    """Reads the counts with ``data.get("prompt_eval_count", 0)``: a cached prompt (Ollama
    leaves the count out) is billed as zero input tokens from upstream, not estimated."""

    def _line(self, line: str, events: list[UpstreamEvent]) -> list[UpstreamEvent]:
        return [
            UsageUpdate(e.input_tokens or 0, e.output_tokens) if isinstance(e, UsageUpdate) else e
            for e in events
        ]

    def _whole(self, parsed: ParsedCompletion) -> ParsedCompletion:
        return dataclasses.replace(parsed, input_tokens=parsed.input_tokens or 0)


class IgnoresErrorLines(_Rewrites):
    """Reads only ``message`` of each line, so an ``{"error": ...}`` line is skipped like a
    keep-alive: the stream still fails when the body ends, but the upstream's reason is
    lost and the client sees a bare "no terminal marker"."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        mapper = super()._stream_mapper(request)
        assert mapper is not None
        feed = mapper.feed

        def skip_errors(line: str) -> list[UpstreamEvent]:
            data = loads(line)
            return [KEEP_ALIVE] if isinstance(data, dict) and "error" in data else feed(line)

        mapper.feed = skip_errors  # type: ignore[method-assign]
        return mapper


class ToolCallsWithoutIds(_Rewrites):
    """Passes each tool call's ``id`` on as the wire gives it, and most Ollama servers give
    none: clients get calls they cannot answer (a tool result names its call's id)."""

    def _line(self, line: str, events: list[UpstreamEvent]) -> list[UpstreamEvent]:
        given = iter(_wire_ids(loads(line)))
        return [
            dataclasses.replace(e, id=next(given, None)) if isinstance(e, ToolCallDelta) else e
            for e in events
        ]

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        given = iter(_wire_ids(body))
        calls = [call.model_copy(update={"id": next(given, None)}) for call in parsed.tool_calls]
        return dataclasses.replace(parsed, tool_calls=calls)


def _wire_ids(data: Any) -> list[str | None]:
    message = data.get("message") if isinstance(data, dict) else None
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    return [call.get("id") for call in calls or ()]


class IndexPerLine(_Rewrites):
    """Numbers tool calls by their position in the line (``enumerate(message.tool_calls)``):
    a server that sends one call per line gives every call index 0, and clients merge them
    into one."""

    def _line(self, line: str, events: list[UpstreamEvent]) -> list[UpstreamEvent]:
        out: list[UpstreamEvent] = []
        position = 0
        for event in events:
            if isinstance(event, ToolCallDelta):
                event = dataclasses.replace(event, index=position)
                position += 1
            out.append(event)
        return out


class StopAfterToolCalls(_Rewrites):
    """Maps ``done_reason`` through a table alone: Ollama says ``stop`` after calling tools,
    so clients waiting for ``tool_calls`` never run them."""

    def _line(self, line: str, events: list[UpstreamEvent]) -> list[UpstreamEvent]:
        data = loads(line)
        reason = data.get("done_reason")
        return [Finish(reason) if isinstance(e, Finish) and reason else e for e in events]

    def _whole(self, parsed: ParsedCompletion) -> ParsedCompletion:
        reason = "stop" if parsed.finish_reason == "tool_calls" else parsed.finish_reason
        return dataclasses.replace(parsed, finish_reason=reason)


class OmitsStreamFalse(OllamaProvider):
    """Sends ``stream`` only when streaming, as on OpenAI's wire: Ollama streams unless told
    ``"stream": false``, so a completion gets an NDJSON body it cannot read."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        if not stream:
            del payload["stream"]
        return payload


class ClearsToolsWithAutoChoice(OllamaProvider):
    """Declares ``tool_choice`` unsupported and lets ``"auto"`` (Ollama's only behaviour)
    through by clearing it, but clears the tools with it: every client that sends the
    default ``tool_choice: "auto"`` loses its tools."""

    def _refuse_unsupported(self, request: ChatRequest) -> None:
        if request.tool_choice == "auto":
            request = request.model_copy(update={"tool_choice": None, "tools": None})
        super()._refuse_unsupported(request)

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        if request.tool_choice == "auto":
            request = request.model_copy(update={"tool_choice": None, "tools": None})
        return super()._build_payload(request, stream=stream)


class _ForgetfulDecoder(NDJSONDecoder):
    """Splits on newlines and keeps the rest for the next read, but never looks at the rest
    when the body ends."""

    def end(self) -> list[str]:
        self.truncated = False
        return []


class DropsUnterminatedLastLine(OllamaProvider):
    """Cuts lines with ``buffer.split(b"\\n")`` and drops what is left when the body ends: a
    server (or proxy) that writes the done line without its newline ends every stream in
    an abort."""

    framing = Framing("ndjson", "application/x-ndjson", _ForgetfulDecoder)


CASES: tuple[Case, ...] = (
    Case(
        "request-conversation",
        ClearsToolsWithAutoChoice,
        r"tool_choice auto \(complete and stream: .*tool",
    ),
    Case(
        "stream-aborted",
        EndOfBodyIsDone,
        r"body ends after the last content, before the terminal marker: ended with a clean end",
    ),
    Case(
        "outcome-fidelity",
        EvalCountAsInput,
        r"usage present \(complete\): input tokens \(567, 'upstream'\) != \(1234, 'upstream'\)",
    ),
    Case(
        "token-fallback",
        MissingPromptCountIsZero,
        r"usage absent \(stream\): input \(0, 'upstream'\) != \(\d+, 'estimated'\)",
    ),
    Case(
        "stream-aborted",
        IgnoresErrorLines,
        r"upstream error event after the first content: the abort does not carry the "
        r"upstream's message 'an error was encountered while running the model'",
    ),
    Case(
        "outcome-fidelity",
        ToolCallsWithoutIds,
        r"one tool call \(stream\): tool call 0 id None != 'call_[0-9a-f]{24}'",
    ),
    Case(
        "outcome-fidelity",
        IndexPerLine,
        r"one line per call: parallel tool calls, arguments in fragments \(stream\): "
        r"1 tool calls != 3",
    ),
    Case(
        "outcome-fidelity",
        StopAfterToolCalls,
        r"one tool call \(complete\): finish_reason 'stop' != 'tool_calls'",
    ),
    Case("request-shape", OmitsStreamFalse, r"complete: the body asks for a stream"),
    Case(
        "sse-framing",
        DropsUnterminatedLastLine,
        r"no_final_newline=True\S*: ended with StreamAbortedError",
    ),
)
