"""OpenAI Chat Completions, as OpenAI and the OpenAI-compatible providers send it.

Streams follow the recordings in the wire corpus: a role-only first chunk with
``"content": ""``, one chunk per piece of text, a finish chunk with an empty delta, then (when
the request asked ``stream_options.include_usage``) a usage chunk with ``"choices": []``
while every other chunk carries ``"usage": null``, and ``data: [DONE]``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from provara_kit.sse import encode_comment, encode_event
from provara_kit.testing.dialects.base import (
    Frame,
    StreamExpectation,
    WireDialect,
    as_count,
    decode_body,
    dumps,
)
from provara_kit.testing.dialects.openai_requests import validate_chat_request
from provara_kit.testing.script import CannedReply, StreamFaults

__all__ = ["OpenAIChatDialect", "OpenAIQuirks"]

CREATED: Final = 1_755_691_077
"""The fixed ``created`` timestamp, so rendered bodies are reproducible."""

_KEEP_ALIVE: Final = encode_comment("keep-alive")

_ERROR_TYPES: Final[Mapping[int, tuple[str, str | None]]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(frozen=True, slots=True)
class OpenAIQuirks:
    """How one OpenAI-compatible provider departs from OpenAI's own wire (all off: OpenAI).

    * ``reasoning_field``: reasoning as ``reasoning_content`` (DeepSeek, Z.ai), ``reasoning``
      (OpenRouter, Groq) or Mistral's ``thinking`` content parts.
    * ``usage_on_finish_chunk``: usage rides on the finish chunk, no usage chunk follows.
    * ``groq_usage``: usage under ``x_groq.usage`` (Groq's legacy streams).
    * ``whole_tool_calls``: each call whole in one chunk, without an ``index`` (Mistral).
    * ``repeat_tool_identity``: id and name on every fragment (OpenRouter).
    * ``error_event``: an in-stream error as ``event: error`` (Groq) rather than a chunk
      with an ``error`` object (OpenRouter).
    * ``null_reasoning_beside_content``: text deltas also carry ``"reasoning_content":
      null`` (DeepSeek's reasoning models).
    * ``text_parts``: text as a list of ``{"type": "text"}`` content parts.
    * ``object_arguments``: tool-call arguments as JSON objects rather than JSON text.
    * ``choice_index``: choices carry their ``index`` (False: it is left out).
    * ``second_choice``: a second choice (``n=2``) rides in every content chunk, first.
    """

    reasoning_field: Literal["reasoning_content", "reasoning", "thinking_parts"] = (
        "reasoning_content"
    )
    usage_on_finish_chunk: bool = False
    groq_usage: bool = False
    whole_tool_calls: bool = False
    repeat_tool_identity: bool = False
    error_event: bool = False
    null_reasoning_beside_content: bool = False
    text_parts: bool = False
    object_arguments: bool = False
    choice_index: bool = True
    second_choice: bool = False

    def choices(self, choice: dict[str, Any], *, content: bool) -> list[dict[str, Any]]:
        """The ``choices`` list around choice 0."""
        if not self.choice_index:
            choice.pop("index", None)
        if self.second_choice and content:
            other = {"index": 1, "delta": {"content": "(another answer)"}, "finish_reason": None}
            return [other, choice]
        return [choice]

    def text(self, text: str) -> str | list[dict[str, str]]:
        """A text content as this provider sends it (as parts: two, when it can be cut)."""
        return _parts(text) if self.text_parts else text

    def arguments(self, arguments: str) -> Any:
        """Tool-call arguments as this provider sends them."""
        return json.loads(arguments) if self.object_arguments else arguments


_VARIANTS: Final[Mapping[str, tuple[bool, OpenAIQuirks]]] = {
    "OpenRouter-style (reasoning, repeated tool ids, usage on the finish chunk)": (
        True,
        OpenAIQuirks(
            reasoning_field="reasoning", repeat_tool_identity=True, usage_on_finish_chunk=True
        ),
    ),
    "Groq-style (x_groq usage, error events)": (
        True,
        OpenAIQuirks(reasoning_field="reasoning", groq_usage=True, error_event=True),
    ),
    "Mistral-style (thinking parts, whole tool calls without index)": (
        True,
        OpenAIQuirks(reasoning_field="thinking_parts", whole_tool_calls=True),
    ),
    "Perplexity-style (no [DONE])": (False, OpenAIQuirks()),
    "DeepSeek-style (reasoning_content: null beside the text)": (
        True,
        OpenAIQuirks(null_reasoning_beside_content=True),
    ),
    "text as content parts, whole tool calls with JSON-object arguments, no choice index": (
        True,
        OpenAIQuirks(
            text_parts=True, whole_tool_calls=True, object_arguments=True, choice_index=False
        ),
    ),
    "two choices per chunk (n=2), the second one first": (
        True,
        OpenAIQuirks(second_choice=True),
    ),
}


class OpenAIChatDialect(WireDialect):
    """The ``openai-chat`` wire.

    ``done_marker=False`` plays a provider that never sends ``data: [DONE]`` and ends the
    body after the finish chunk instead (Perplexity), which is a clean end too; ``quirks``
    plays another provider's departures (:class:`OpenAIQuirks`).
    """

    name: ClassVar[str] = "openai-chat"
    completion_path: ClassVar[str] = "/chat/completions"
    invalid_api_key_message: ClassVar[str] = (
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )

    finish_reasons: ClassVar[Mapping[str, str]] = {
        "stop": "stop",
        "length": "length",
        "tool_calls": "tool_calls",
        "content_filter": "content_filter",
        "function_call": "function_call",
    }
    carries_reasoning: ClassVar[bool] = True
    reports_cached_tokens: ClassVar[bool] = True
    stream_error_text: ClassVar[str | None] = "The server had an error"

    def __init__(self, *, done_marker: bool = True, quirks: OpenAIQuirks | None = None) -> None:
        self.done_marker = done_marker
        self.quirks = quirks or OpenAIQuirks()

    @property
    def has_terminal_marker(self) -> bool:
        return self.done_marker

    def wire_variants(self) -> dict[str, WireDialect]:
        """This wire as OpenAI sends it, and as the compatible providers do."""
        variants: dict[str, WireDialect] = {"as OpenAI sends it": self}
        for label, (done_marker, quirks) in _VARIANTS.items():
            variant = copy.copy(self)
            variant.done_marker = done_marker
            variant.quirks = quirks
            variants[label] = variant
        return variants

    def _reasoning_delta(self, piece: str) -> dict[str, Any]:
        field = self.quirks.reasoning_field
        if field == "thinking_parts":
            return {
                "content": [{"type": "thinking", "thinking": [{"type": "text", "text": piece}]}]
            }
        return {"content": None, field: piece}

    def render_completion(self, reply: CannedReply) -> bytes:
        quirks = self.quirks
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if reply.tool_calls and not reply.text else quirks.text(reply.text),
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning:
            if self.quirks.reasoning_field == "thinking_parts":
                thinking = _parts(reply.reasoning_text)
                message["content"] = [
                    {"type": "thinking", "thinking": thinking},
                    *_parts(reply.text),
                ]
            else:
                message[self.quirks.reasoning_field] = reply.reasoning_text
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": id_,
                    "type": "function",
                    "function": {"name": name, "arguments": quirks.arguments(args)},
                }
                for id_, name, args in reply.tool_calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": self.wire_finish_reason(reply),
        }
        choices = quirks.choices(choice, content=False)
        if quirks.second_choice:
            other = {"role": "assistant", "content": "(another answer)"}
            # A whole answer lists its choices in index order; only streams interleave them.
            choices.append({"index": 1, "message": other, "finish_reason": "stop"})
        body: dict[str, Any] = {
            "id": reply.id,
            "object": "chat.completion",
            "created": CREATED,
            "model": reply.model,
            "choices": choices,
        }
        if reply.usage != "absent":
            body["usage"] = _usage(reply)
        body["service_tier"] = "default"
        body["system_fingerprint"] = None
        return json.dumps(body, ensure_ascii=False, indent=2).encode()

    def stream_frames(
        self,
        reply: CannedReply,
        faults: StreamFaults,
        *,
        request: Mapping[str, Any] | None = None,
    ) -> list[Frame]:
        include_usage = request is None or bool(
            (request.get("stream_options") or {}).get("include_usage")
        )
        usage_field = reply.usage == "null" or (include_usage and reply.usage != "absent")
        quirks = self.quirks
        reports = include_usage and reply.usage in ("present", "partial", "zero", "cumulative")
        cumulative = include_usage and reply.usage == "cumulative"
        produced = 0  # output tokens reported so far, for cumulative usage

        def chunk(
            delta: dict[str, Any], finish_reason: str | None = None, index: int | None = None
        ) -> Frame:
            nonlocal produced
            body: dict[str, Any] = {
                "id": reply.id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": reply.model,
                "system_fingerprint": None,
                "choices": quirks.choices(
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason},
                    content=index is not None,
                ),
            }
            if cumulative and (index is not None or finish_reason is not None):
                # Continuous usage stats: every content chunk reports the counts so far.
                produced = (
                    reply.output_tokens if finish_reason else min(produced + 1, reply.output_tokens)
                )
                self._put_usage(body, _usage(reply, output_tokens=produced))
            elif finish_reason is not None and reports and quirks.usage_on_finish_chunk:
                self._put_usage(body, _usage(reply))
            elif usage_field and not quirks.groq_usage:
                body["usage"] = None
            return Frame(encode_event(dumps(body)), index)

        frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if faults.empty_chunks:
            frames += [
                Frame(_KEEP_ALIVE),
                chunk({"role": "assistant"}),
                chunk({"content": ""}),
            ]
        for piece in reply.reasoning:
            frames.append(chunk(self._reasoning_delta(piece)))
        error_after = faults.error_event_after
        for i, text in enumerate(reply.chunks):
            if error_after == i:
                break
            if faults.empty_chunks and i:
                frames += [chunk({"content": ""}), Frame(_KEEP_ALIVE)]
            delta: dict[str, Any] = {"content": quirks.text(text)}
            if quirks.null_reasoning_beside_content:
                delta["reasoning_content"] = None
            frames.append(chunk(delta, index=i))
        if error_after is not None:
            frames.append(Frame(self.render_stream_error(self.stream_error_text or "")))
            if self.done_marker and not self.quirks.error_event:
                # As OpenRouter does: the error, then [DONE] (Groq's error event ends the
                # body instead). Either way the stream is broken.
                frames.append(Frame(encode_event("[DONE]")))
            return frames
        if quirks.whole_tool_calls and reply.tool_calls:
            whole = [
                {
                    "id": id_,
                    "type": "function",
                    "function": {"name": name, "arguments": quirks.arguments(args)},
                }
                for id_, name, args in reply.tool_calls
            ]
            frames.append(chunk({"tool_calls": whole}))
        for j, (id_, name, args) in enumerate(() if quirks.whole_tool_calls else reply.tool_calls):
            function = {"name": name, "arguments": ""}
            call = {"index": j, "id": id_, "type": "function", "function": function}
            frames.append(chunk({"tool_calls": [call]}))
            for fragment in reply.argument_fragments(args):
                fragment_call: dict[str, Any] = {"index": j, "function": {"arguments": fragment}}
                if quirks.repeat_tool_identity:
                    fragment_call = {
                        "index": j,
                        "id": id_,
                        "type": "function",
                        "function": {"name": name, "arguments": fragment},
                    }
                frames.append(chunk({"tool_calls": [fragment_call]}))
        if faults.omit_terminal:
            return frames
        frames.append(chunk({}, self.wire_finish_reason(reply)))
        if reports and not quirks.usage_on_finish_chunk:
            body = {
                "id": reply.id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": reply.model,
                "system_fingerprint": None,
                "choices": [],
            }
            self._put_usage(body, _usage(reply))
            frames.append(Frame(encode_event(dumps(body))))
        if self.done_marker:
            frames.append(Frame(encode_event("[DONE]")))
        return frames

    def render_error(self, status: int, message: str, *, error_type: str | None = None) -> bytes:
        default_type, code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        body = {
            "error": {
                "message": message,
                "type": error_type or default_type,
                "param": None,
                "code": code,
            }
        }
        return (json.dumps(body, ensure_ascii=False, indent=4) + "\n").encode()

    def render_stream_error(self, message: str, error_type: str | None = None) -> bytes:
        body = {"error": {"message": message, "type": error_type or "server_error"}}
        if self.quirks.error_event:
            return encode_event(dumps(body), event="error")
        return encode_event(dumps(body))

    def _put_usage(self, body: dict[str, Any], usage: dict[str, Any] | None) -> None:
        if self.quirks.groq_usage:
            body["x_groq"] = {"id": "req_scripted", "usage": usage}
        else:
            body["usage"] = usage

    def read_stream(self, body: bytes) -> StreamExpectation:
        """Choice 0's text, reasoning and tool calls and the last usage reported; clean at
        ``[DONE]``, or at the end of a body whose last choice carried a ``finish_reason``;
        an error event or object (even with ``[DONE]`` after it) is not clean."""
        events, truncated = decode_body(body)
        reading = _Reading()
        done = failed = False
        for event in events:
            if event.event == "error":
                failed = True
                break
            if event.data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(event.data)
            except ValueError:
                failed = True
                break
            if not isinstance(chunk, dict) or chunk.get("error"):
                failed = True
                break
            reading.chunk(chunk)
        clean = not failed and not truncated and (done or reading.finish is not None)
        return reading.expectation(clean)

    def read_completion(self, body: bytes) -> StreamExpectation | None:
        """Choice 0's message, finish reason and usage of a non-streamed answer."""
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            return None
        reading = _Reading()
        reading.model = data.get("model") if isinstance(data.get("model"), str) else None
        reading.id = data.get("id") if isinstance(data.get("id"), str) else None
        for choice in data["choices"]:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            message = choice.get("message") or {}
            reading.message(message)
            if choice.get("finish_reason"):
                reading.finish = choice["finish_reason"]
        reading.usage(data.get("usage"))
        return reading.expectation(True)

    models_form: Literal["list", "bare", "unnamed"] = "list"
    """How :meth:`render_models` writes the list: OpenAI's ``{"object": "list", "data":
    [...]}``, a bare JSON array (Together), or OpenAI's with entries that name no model."""

    def model_list_forms(self) -> dict[str, WireDialect]:
        forms: dict[str, WireDialect] = {}
        for label, form in _MODEL_LIST_FORMS.items():
            variant = copy.copy(self)
            variant.models_form = form
            forms[label] = variant
        return forms

    def validate_request(self, body: Mapping[str, Any]) -> list[str]:
        """Tool messages answer the calls before them, every call is answered, arguments
        are JSON text, ``tool_choice`` and ``parallel_tool_calls`` come with ``tools``."""
        return validate_chat_request(body)

    def render_models(self, ids: Sequence[str]) -> bytes:
        data: list[dict[str, Any]] = [
            {"id": id_, "object": "model", "created": CREATED, "owned_by": "scripted"}
            for id_ in ids
        ]
        if self.models_form == "unnamed":
            data.insert(len(data) // 2, {"object": "model", "created": CREATED})
            data.append({"object": "model", "owned_by": "system", "permission": []})
        body: Any = data if self.models_form == "bare" else {"object": "list", "data": data}
        return json.dumps(body, ensure_ascii=False).encode()


_MODEL_LIST_FORMS: Final[Mapping[str, Literal["list", "bare", "unnamed"]]] = {
    "as OpenAI sends it": "list",
    "as a bare JSON array (Together)": "bare",
    "with entries that carry no id": "unnamed",
}


def _usage(reply: CannedReply, *, output_tokens: int | None = None) -> dict[str, Any] | None:
    """OpenAI usage: cached input and reasoning output are parts of the two totals."""
    input_tokens, reported_output = reply.reported_tokens()
    if input_tokens is None:
        return None
    usage: dict[str, Any] = {"prompt_tokens": input_tokens}
    if reported_output is not None:
        output = reported_output if output_tokens is None else output_tokens
        usage["completion_tokens"] = output
        usage["total_tokens"] = input_tokens + output
    if reply.cached_input_tokens and reply.usage != "zero":
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_input_tokens}
    if reply.reasoning_tokens and reported_output is not None and reply.usage != "zero":
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens}
    return usage


def _parts(text: str) -> list[dict[str, str]]:
    """``text`` as text content parts: two when it can be cut, so readers must join them."""
    middle = len(text) // 2
    pieces = [text[:middle], text[middle:]] if middle else [text]
    return [{"type": "text", "text": piece} for piece in pieces]


class _Reading:
    """What the reference reader gathered so far from one answer."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, list[Any]] = {}
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.finish: str | None = None
        self.model: str | None = None
        self.id: str | None = None

    def chunk(self, chunk: Mapping[str, Any]) -> None:
        if self.model is None and isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if self.id is None and isinstance(chunk.get("id"), str):
            self.id = chunk["id"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            self.message(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        self.usage(chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage"))

    def message(self, delta: Mapping[str, Any]) -> None:
        """A stream delta or a whole message: both carry the same fields."""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str):
            self.reasoning.append(reasoning)
        content = delta.get("content")
        if isinstance(content, str):
            self.text.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    self.text.append(part["text"])
                elif part.get("type") == "thinking":
                    self.reasoning.append(_thinking_text(part.get("thinking")))
        if isinstance(delta.get("refusal"), str):
            self.text.append(delta["refusal"])
        for position, call in enumerate(delta.get("tool_calls") or ()):
            if not isinstance(call, dict):
                continue
            index = call.get("index")
            if not isinstance(index, int) or isinstance(index, bool):
                index = position
            entry = self.calls.setdefault(index, [None, None, []])
            function = call.get("function") or {}
            entry[0] = entry[0] or call.get("id") or None
            entry[1] = entry[1] or function.get("name") or None
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                entry[2].append(arguments)
            elif arguments is not None:
                entry[2].append(json.dumps(arguments, ensure_ascii=False))
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and legacy.get("name"):
            # The deprecated single function call: a tool call without an id.
            arguments = legacy.get("arguments")
            text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
            self.calls[len(self.calls)] = [None, legacy["name"], [text]]

    def usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        reported = as_count(usage.get("prompt_tokens"))
        self.input_tokens = self.input_tokens if reported is None else reported
        reported = as_count(usage.get("completion_tokens"))
        self.output_tokens = self.output_tokens if reported is None else reported

    def expectation(self, clean: bool) -> StreamExpectation:
        calls = tuple(
            (id_, name, "".join(arguments))
            for _, (id_, name, arguments) in sorted(self.calls.items())
        )
        return StreamExpectation(
            clean,
            "".join(self.text),
            self.input_tokens,
            self.output_tokens,
            self.finish,
            reasoning="".join(self.reasoning),
            tool_calls=calls,
            model=self.model,
            id=self.id,
        )


def _thinking_text(thinking: Any) -> str:
    if isinstance(thinking, str):
        return thinking
    if isinstance(thinking, list):
        return "".join(p.get("text") or "" for p in thinking if isinstance(p, dict))
    return ""
