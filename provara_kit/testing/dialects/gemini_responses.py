"""Gemini answers read independently of any adapter: the reference readers the conformance
suite holds an adapter's reading to.

A whole answer is one ``GenerateContentResponse``; a stream is a run of them, as SSE
``data`` events or as the elements of one JSON array. The first candidate's parts are the
answer (``thought: true`` text is reasoning, ``functionCall`` parts are calls, which get the
kit's derived id when the wire gives none); the first ``finishReason`` (a name or its
enum number) is the finish; ``promptFeedback.blockReason`` with no candidate is a blocked
prompt; each ``usageMetadata`` replaces the last. A stream is clean when it ended (an
array: closed) after a finish or a block, with no ``error`` chunk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from provara_kit.providers.gemini_mapping import call_id
from provara_kit.testing.dialects.base import StreamExpectation, as_count, decode_body

__all__ = ["ENUM_NUMBERS", "FINISH_REASONS", "read_gemini_completion", "read_gemini_stream"]

FINISH_REASONS: Final[Mapping[str, str]] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "OTHER": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
}
"""Gemini finish reasons and what they mean in OpenAI's terms (``STOP`` with function
calls is ``tool_calls``)."""

ENUM_NUMBERS: Final[Mapping[str, int]] = {
    "STOP": 1,
    "MAX_TOKENS": 2,
    "SAFETY": 3,
    "RECITATION": 4,
    "OTHER": 5,
    "LANGUAGE": 6,
    "BLOCKLIST": 7,
    "PROHIBITED_CONTENT": 8,
    "SPII": 9,
    "MALFORMED_FUNCTION_CALL": 10,
    "IMAGE_SAFETY": 11,
}
_ENUM_NAMES: Final[Mapping[int, str]] = {number: name for name, number in ENUM_NUMBERS.items()}


def read_gemini_stream(body: bytes) -> StreamExpectation:
    """What a streamed body (SSE or a JSON array) holds."""
    text = body.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        chunks, complete = _array_elements(text)
    else:
        events, truncated = decode_body(body)
        chunks = []
        complete = not truncated
        for event in events:
            try:
                chunks.append(json.loads(event.data))
            except ValueError:
                complete = False
                break
    reading = _Reading()
    for chunk in chunks:
        if not isinstance(chunk, dict) or chunk.get("error"):
            complete = False
            break
        reading.chunk(chunk)
    return reading.expectation(complete and reading.finished)


def read_gemini_completion(body: bytes) -> StreamExpectation | None:
    """What a whole answer holds; ``None`` for a body that is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or not (
        isinstance(data.get("candidates"), list) or "promptFeedback" in data
    ):
        return None
    reading = _Reading()
    reading.chunk(data)
    return reading.expectation(True)


def _array_elements(text: str) -> tuple[list[Any], bool]:
    """The elements of a streamed JSON array, and whether the array was closed."""
    decoder = json.JSONDecoder()
    elements: list[Any] = []
    pos = 1
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return elements, False
        if text[pos] == "]":
            return elements, not text[pos + 1 :].strip()
        if elements:
            if text[pos] != ",":
                return elements, False
            pos += 1
            while pos < n and text[pos] in " \t\r\n":
                pos += 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError:
            return elements, False
        elements.append(value)


class _Reading:
    """What the reference reader gathered from one answer's chunks."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[tuple[str | None, str | None, str]] = []
        self.finish: str | None = None
        self.blocked = False
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.model: str | None = None
        self.id: str | None = None

    @property
    def finished(self) -> bool:
        return self.finish is not None or self.blocked

    def chunk(self, chunk: Mapping[str, Any]) -> None:
        if self.model is None and isinstance(chunk.get("modelVersion"), str):
            self.model = chunk["modelVersion"]
        if self.id is None and isinstance(chunk.get("responseId"), str):
            self.id = chunk["responseId"]
        candidates = chunk.get("candidates")
        first = candidates[0] if isinstance(candidates, list) and candidates else None
        if isinstance(first, Mapping):
            content = first.get("content")
            parts = content.get("parts") if isinstance(content, Mapping) else None
            for part in parts if isinstance(parts, list) else ():
                self.part(part)
            reason = first.get("finishReason")
            if isinstance(reason, int) and not isinstance(reason, bool):
                reason = _ENUM_NAMES.get(reason, str(reason))
            if isinstance(reason, str) and self.finish is None:
                self.finish = reason
        feedback = chunk.get("promptFeedback")
        if first is None and isinstance(feedback, Mapping) and feedback.get("blockReason"):
            self.blocked = True
        usage = chunk.get("usageMetadata")
        if isinstance(usage, Mapping):
            # Each report replaces the last; a side with no count at all is not reported.
            prompt = as_count(usage.get("promptTokenCount"))
            self.input_tokens = (
                None
                if prompt is None
                else prompt + (as_count(usage.get("toolUsePromptTokenCount")) or 0)
            )
            produced = [
                count
                for count in (
                    as_count(usage.get("candidatesTokenCount")),
                    as_count(usage.get("thoughtsTokenCount")),
                )
                if count is not None
            ]
            self.output_tokens = sum(produced) if produced else None

    def part(self, part: Any) -> None:
        if not isinstance(part, Mapping):
            return
        if isinstance(part.get("text"), str):
            (self.reasoning if part.get("thought") else self.text).append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, Mapping):
            args = call.get("args")
            name = call.get("name") if isinstance(call.get("name"), str) else None
            given = call.get("id")
            # A call the wire gave no id gets the one the kit derives (call_id).
            id_ = given if isinstance(given, str) and given else None
            self.calls.append(
                (
                    id_ or call_id(self.id, len(self.calls), name),
                    name,
                    "" if args in (None, {}) else json.dumps(args),
                )
            )

    def expectation(self, clean: bool) -> StreamExpectation:
        finish: str | None = None
        if self.finish is not None:
            finish = FINISH_REASONS.get(self.finish, self.finish.lower())
            if finish == "stop" and self.calls:
                finish = "tool_calls"
        elif self.blocked:
            finish = "content_filter"
        return StreamExpectation(
            clean,
            "".join(self.text),
            self.input_tokens,
            self.output_tokens,
            finish,
            reasoning="".join(self.reasoning),
            tool_calls=tuple(self.calls),
            model=self.model,
            id=self.id,
        )
