"""Ollama's native chat API (``POST /api/chat``), as in the wire corpus recordings.

A stream is newline-delimited JSON, ``application/x-ndjson``: one object per line, each with
``model``, ``created_at``, ``message`` (``role``, ``content``, and ``thinking`` or
``tool_calls`` where there are any) and ``"done": false``; the last line has ``"done":
true``, ``done_reason`` and the counts and durations. There is no terminator line: the
``done`` line is the terminal marker. An error inside a stream is a line ``{"error":
"..."}``; an error status carries the same object. The model list is ``GET /api/tags``.

Ollama writes no zero count (``omitempty``) and leaves ``prompt_eval_count`` out when the
prompt came from its cache, so the usage forms this wire has are both counts, none, or one
(a reply scripted with a zero count is rendered with it: an adapter must read it as 0).
Tool calls come whole, without an id on most servers; their arguments are JSON objects.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from provara_kit.providers.ollama import tool_call_id
from provara_kit.testing.conversation import (
    LIMITS,
    Image,
    NormalizedConversation,
    Part,
    ToolCallRef,
    Turn,
    merge_text,
    openai_tool,
    parallel_flag,
)
from provara_kit.testing.dialects.base import (
    MISSING,
    Frame,
    StreamExpectation,
    WireDialect,
    as_count,
    dumps,
)
from provara_kit.testing.script import CannedReply, StreamFaults, UsageMode

if TYPE_CHECKING:
    from provara_kit.testing.framing import StreamFraming

__all__ = ["CREATED_AT", "DONE_REASONS", "OllamaChatDialect", "OllamaQuirks"]

CREATED_AT: Final = "2025-08-20T13:48:24.316155Z"
"""The fixed ``created_at`` of rendered lines, so rendered bodies are reproducible."""

DONE_REASONS: Final[Mapping[str, str]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "content_filter": "stop",
}
"""OpenAI finish reasons to ``done_reason`` values: Ollama says ``stop`` after tool calls,
and filters nothing."""

_OPTION_PARAMS: Final = frozenset(
    {"temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty"}
)
_ROLES: Final = frozenset({"system", "user", "assistant", "tool"})
_TIMINGS: Final[Mapping[str, int]] = {
    "total_duration": 171_946_792,
    "load_duration": 38_473_250,
    "prompt_eval_duration": 27_608_250,
    "eval_duration": 105_611_917,
}
# The first bytes of an image's base64, and its media type (Ollama reads the type from them).
_MAGIC: Final[Mapping[str, str]] = {
    "iVBORw0KGgo": "image/png",
    "/9j/": "image/jpeg",
    "R0lGOD": "image/gif",
    "UklGR": "image/webp",
}


@dataclass(frozen=True, slots=True)
class OllamaQuirks:
    """How some Ollama servers depart from the usual stream (all off).

    * ``tool_call_ids``: tool calls carry an ``id`` and ``function.index`` (newer servers),
      one line per call.
    * ``cached_prompt``: the last line has no ``prompt_eval_count`` (the prompt came from the
      server's cache): the input count is missing, not 0.
    """

    tool_call_ids: bool = False
    cached_prompt: bool = False


_VARIANTS: Final[Mapping[str, OllamaQuirks]] = {
    "newer servers: tool call ids, one line per call": OllamaQuirks(tool_call_ids=True),
    "a cached prompt: no prompt_eval_count": OllamaQuirks(cached_prompt=True),
}


class OllamaChatDialect(WireDialect):
    """The ``ollama-chat`` wire; ``quirks`` plays a server's departures (:class:`OllamaQuirks`)."""

    name: ClassVar[str] = "ollama-chat"
    completion_path: ClassVar[str] = "/api/chat"
    models_path: ClassVar[str] = "/api/tags"
    invalid_api_key_message: ClassVar[str] = "unauthorized"
    finish_reasons: ClassVar[Mapping[str, str]] = {
        "stop": "stop",
        "length": "length",
        "load": "stop",
        "unload": "stop",
    }
    usage_modes: ClassVar[tuple[UsageMode, ...]] = ("present", "absent", "partial")
    carries_reasoning: ClassVar[bool] = True
    stream_error_text: ClassVar[str | None] = "an error was encountered while running the model"
    conversation_limits: ClassVar[Mapping[str, str]] = {
        "message-name": LIMITS["message-name"],
        "image-url": LIMITS["image-url"],
    }

    def __init__(self, *, quirks: OllamaQuirks | None = None) -> None:
        self.quirks = quirks or OllamaQuirks()

    def wire_variants(self) -> dict[str, WireDialect]:
        """This wire as most Ollama servers send it, and as some do."""
        variants: dict[str, WireDialect] = {"as Ollama sends it": self}
        for label, quirks in _VARIANTS.items():
            variant = copy.copy(self)
            variant.quirks = quirks
            variants[label] = variant
        return variants

    def framings(self) -> tuple[StreamFraming, ...]:
        from provara_kit.testing.framing import NDJSON_FRAMINGS

        return NDJSON_FRAMINGS

    def wire_finish_reason(self, reply: CannedReply) -> str:
        return reply.wire_finish_reason or DONE_REASONS.get(
            reply.finish_reason, reply.finish_reason
        )

    def expected_finish_reason(self, reply: CannedReply) -> str:
        """``stop`` on an answer that called tools is ``tool_calls``."""
        reason = self.wire_finish_reason(reply)
        return _normalized(reason, bool(reply.tool_calls), self.finish_reasons)

    def is_stream_request(self, body: Mapping[str, Any]) -> bool:
        """Ollama streams unless the body says ``"stream": false``."""
        return body.get("stream", True) is not False

    def stream_media_type(self, request: Mapping[str, Any]) -> str:
        return "application/x-ndjson"

    # -- rendering -----------------------------------------------------------------------

    def _line(self, reply: CannedReply, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": reply.model,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": "", **message},
            "done": False,
        }

    def _calls(self, calls: Sequence[tuple[str, str, str]], first: int) -> list[dict[str, Any]]:
        out = []
        for position, (id_, name, args) in enumerate(calls, start=first):
            function: dict[str, Any] = {"name": name, "arguments": json.loads(args)}
            if self.quirks.tool_call_ids:
                out.append({"id": id_, "function": {"index": position, **function}})
            else:
                out.append({"function": function})
        return out

    def _final(self, reply: CannedReply, line: dict[str, Any]) -> dict[str, Any]:
        """``line`` made the last one: the done reason, counts and durations."""
        line["done_reason"] = self.wire_finish_reason(reply)
        line["done"] = True
        input_tokens, output_tokens = reply.reported_tokens()
        line["total_duration"] = _TIMINGS["total_duration"]
        line["load_duration"] = _TIMINGS["load_duration"]
        if input_tokens is not None and not self.quirks.cached_prompt:
            line["prompt_eval_count"] = input_tokens
        line["prompt_eval_duration"] = _TIMINGS["prompt_eval_duration"]
        if output_tokens is not None:
            line["eval_count"] = output_tokens
        line["eval_duration"] = _TIMINGS["eval_duration"]
        return line

    def render_completion(self, reply: CannedReply) -> bytes:
        message: dict[str, Any] = {"content": reply.text}
        if reply.reasoning:
            message["thinking"] = reply.reasoning_text
        if reply.tool_calls:
            message["tool_calls"] = self._calls(reply.tool_calls, 0)
        return dumps(self._final(reply, self._line(reply, message))).encode()

    def stream_frames(
        self,
        reply: CannedReply,
        faults: StreamFaults,
        *,
        request: Mapping[str, Any] | None = None,
    ) -> list[Frame]:
        frames: list[Frame] = []
        if faults.empty_chunks:
            frames += [Frame(b"\n"), _frame(self._line(reply, {}))]
        for piece in reply.reasoning:
            frames.append(_frame(self._line(reply, {"thinking": piece})))
        error_after = faults.error_event_after
        for i, text in enumerate(reply.chunks):
            if error_after == i:
                break
            if faults.empty_chunks and i:
                frames += [_frame(self._line(reply, {"content": ""})), Frame(b"\n")]
            frames.append(_frame(self._line(reply, {"content": text}), i))
        if error_after is not None:
            frames.append(Frame(self.render_stream_error(self.stream_error_text or "")))
            return frames
        calls = reply.tool_calls
        if calls and self.quirks.tool_call_ids:
            frames += [
                _frame(self._line(reply, {"tool_calls": self._calls([call], n)}))
                for n, call in enumerate(calls)
            ]
        elif calls:
            frames.append(_frame(self._line(reply, {"tool_calls": self._calls(calls, 0)})))
        if not faults.omit_terminal:
            frames.append(_frame(self._final(reply, self._line(reply, {}))))
        return frames

    def render_error(self, status: int, message: str, *, error_type: str | None = None) -> bytes:
        return dumps({"error": message}).encode()

    def render_stream_error(self, message: str, error_type: str | None = None) -> bytes:
        return (dumps({"error": message}) + "\n").encode()

    def render_models(self, ids: Sequence[str]) -> bytes:
        models = [
            {
                "name": id_,
                "model": id_,
                "modified_at": "2025-08-20T13:47:57.123456Z",
                "size": 815_319_791,
                "digest": "e2a5ce8dd3b8c9b3d5c3c5f1d2ae0f5fa3ee13bd1e8a5a1c4b8f0e3a8c3e8f2a",
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "gemma3",
                    "families": ["gemma3"],
                    "parameter_size": "999.89M",
                    "quantization_level": "Q4_K_M",
                },
            }
            for id_ in ids
        ]
        return dumps({"models": models}).encode()

    # -- reference readers ---------------------------------------------------------------

    def read_stream(self, body: bytes) -> StreamExpectation:
        """Every line's text, thinking and tool calls, and the last line's counts and done
        reason; clean only at a ``"done": true`` line, never after an ``error`` line."""
        reading = _Reading(self.finish_reasons)
        text = body.decode("utf-8", "replace")
        lines = text.split("\n")
        last = lines.pop()  # after the last line end: empty, or a line without one
        if last.strip():
            lines.append(last)
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                data = json.loads(line)
            except ValueError:
                return reading.expectation(False)
            if not isinstance(data, dict) or "error" in data:
                return reading.expectation(False)
            reading.line(data)
            if data.get("done") is True:
                return reading.expectation(True)
        return reading.expectation(False)

    def read_completion(self, body: bytes) -> StreamExpectation | None:
        """The message, done reason and counts of a non-streamed answer."""
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            return None
        reading = _Reading(self.finish_reasons)
        reading.line(data)
        return reading.expectation(True)

    # -- reading requests ----------------------------------------------------------------

    def read_param(self, body: Mapping[str, Any], name: str) -> Any:
        """Ollama fields in OpenAI's shape: sampling parameters from ``options``
        (``max_tokens`` is ``num_predict``), ``response_format`` from ``format``."""
        options = body.get("options")
        options = options if isinstance(options, Mapping) else {}
        if name == "max_tokens":
            return options.get("num_predict", MISSING)
        if name == "stop" or name in _OPTION_PARAMS:
            return options.get(name, MISSING)
        if name == "response_format":
            fmt = body.get("format", MISSING)
            if fmt == "json":
                return {"type": "json_object"}
            if isinstance(fmt, Mapping):
                return {"type": "json_schema", "json_schema": {"schema": dict(fmt)}}
            return fmt
        return super().read_param(body, name)

    def read_conversation(self, body: Mapping[str, Any]) -> NormalizedConversation:
        """System messages wherever they stand, ``images`` as base64 image parts (their type
        read from their first bytes), tool calls with object arguments, a tool result's
        ``tool_call_id``, the tools, ``options.num_predict`` and ``options.stop``."""
        system: list[str] = []
        turns: list[Turn] = []
        for message in _list(body.get("messages")):
            if not isinstance(message, Mapping):
                continue
            role = message.get("role")
            content = message.get("content")
            text = content if isinstance(content, str) else ""
            if role == "system":
                system.append(text)
                continue
            parts: list[Part] = [text]
            parts += [_image(data) for data in _list(message.get("images"))]
            calls = tuple(
                ToolCallRef(call.get("id"), function.get("name"), function.get("arguments"))
                for call in _list(message.get("tool_calls"))
                if isinstance(call, Mapping)
                for function in [call.get("function") or {}]
            )
            turns.append(
                Turn(
                    str(role),
                    merge_text(parts),
                    tool_calls=calls,
                    tool_call_id=message.get("tool_call_id") if role == "tool" else None,
                )
            )
        tools = tuple(openai_tool(tool) for tool in _list(body.get("tools")))
        choice = "auto" if tools else None
        options = body.get("options")
        options = options if isinstance(options, Mapping) else {}
        limit = options.get("num_predict")
        stop = options.get("stop")
        return NormalizedConversation(
            system=tuple(system),
            turns=tuple(turns),
            tools=tools,
            tool_choice=choice,
            parallel_tool_calls=parallel_flag(choice, True),
            max_tokens=limit if isinstance(limit, int) else None,
            stop=tuple(stop) if isinstance(stop, list) else None,
        )

    def validate_request(self, body: Mapping[str, Any]) -> list[str]:
        """What Ollama answers 400 to: no model, messages that are not a list of objects
        with a known role, tool-call arguments or ``options`` that are not objects, images
        that are not base64 text, a ``format`` other than ``"json"`` or a schema."""
        problems: list[str] = []
        if not isinstance(body.get("model"), str) or not body.get("model"):
            problems.append("model is required")
        messages = body.get("messages")
        if not isinstance(messages, list):
            problems.append("messages must be an array")
            messages = []
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping):
                problems.append(f"messages[{i}] must be an object")
                continue
            if message.get("role") not in _ROLES:
                problems.append(f"messages[{i}]: invalid role {message.get('role')!r}")
            if not isinstance(message.get("content", ""), str):
                problems.append(
                    f"messages[{i}]: json: cannot unmarshal {type(message['content']).__name__} "
                    "into Go struct field Message.messages.content of type string"
                )
            for image in _list(message.get("images")):
                if not isinstance(image, str) or image.startswith(("data:", "http")):
                    problems.append(f"messages[{i}]: illegal base64 data in images")
            for call in _list(message.get("tool_calls")):
                function = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(function, Mapping) or not isinstance(
                    function.get("arguments", {}), Mapping
                ):
                    problems.append(
                        f"messages[{i}]: json: cannot unmarshal string into Go struct field "
                        "ToolCallFunction.messages.tool_calls.function.arguments of type "
                        "api.ToolCallFunctionArguments"
                    )
        if "options" in body and not isinstance(body["options"], Mapping):
            problems.append("options must be an object")
        fmt = body.get("format")
        if fmt is not None and fmt != "json" and not isinstance(fmt, Mapping):
            problems.append(f"invalid format: {fmt!r}")
        return problems


def _frame(data: dict[str, Any], chunk: int | None = None) -> Frame:
    return Frame((dumps(data) + "\n").encode(), chunk)


def _normalized(reason: str | None, called: bool, reasons: Mapping[str, str]) -> str:
    if not reason:
        return "tool_calls" if called else ""
    finish = reasons.get(reason, reason)
    return "tool_calls" if called and finish == "stop" else finish


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _image(data: Any) -> Image:
    text = str(data)
    media_type = next((kind for magic, kind in _MAGIC.items() if text.startswith(magic)), None)
    return Image("base64", text, media_type)


class _Reading:
    """What the reference reader gathered so far from one answer."""

    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons = reasons
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[tuple[str | None, str | None, str]] = []
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.done_reason: str | None = None
        self.model: str | None = None

    def line(self, data: Mapping[str, Any]) -> None:
        if self.model is None and isinstance(data.get("model"), str):
            self.model = data["model"]
        message = data.get("message")
        if isinstance(message, Mapping):
            if isinstance(message.get("content"), str):
                self.text.append(message["content"])
            if isinstance(message.get("thinking"), str):
                self.reasoning.append(message["thinking"])
            for call in _list(message.get("tool_calls")):
                function = call.get("function") if isinstance(call, Mapping) else None
                if not isinstance(function, Mapping):
                    continue
                name = function.get("name")
                given = call.get("id")
                position = len(self.calls)
                arguments = function.get("arguments")
                self.calls.append(
                    (
                        given or tool_call_id(data.get("created_at"), position, name),
                        name,
                        arguments
                        if isinstance(arguments, str)
                        else json.dumps(arguments if arguments is not None else {}),
                    )
                )
        if data.get("done") is True:
            self.input_tokens = as_count(data.get("prompt_eval_count"))
            self.output_tokens = as_count(data.get("eval_count"))
            reason = data.get("done_reason")
            self.done_reason = reason if isinstance(reason, str) else None

    def expectation(self, clean: bool) -> StreamExpectation:
        finish = _normalized(self.done_reason, bool(self.calls), self.reasons) or None
        return StreamExpectation(
            clean,
            "".join(self.text),
            self.input_tokens,
            self.output_tokens,
            finish,
            reasoning="".join(self.reasoning),
            tool_calls=tuple(self.calls),
            model=self.model,
        )
