"""Chat completion chunks as SSE bytes, the way OpenAI streams them.

:class:`ChunkEncoder` renders the SDK's stream events for one response. The constant part
of every chunk (id, object, created, model) is encoded once; a text delta then costs one
``orjson.dumps`` of the text. orjson escapes every control character, so a chunk is always
a single ``data:`` line. The role rides on the first delta that carries content: no chunk
is ever sent without content, a finish reason, usage or the meta.

The end of a clean stream is one write: the finish chunk, the usage chunk (only when the
client asked ``stream_options.include_usage``), the ``provara`` meta chunk
(``"choices": []`` and a top-level ``"provara"`` object, which the ``openai`` SDK exposes
as ``chunk.model_extra["provara"]``) and ``data: [DONE]``. A stream that fails ends with
``data: {"error": {...}}`` and no ``[DONE]``, which the ``openai`` SDK raises as
``APIError``.
"""

from __future__ import annotations

from typing import Any

import orjson

from provara_kit.sse import encode_comment
from provara_kit.types import ProvaraMeta, ToolCallDelta

__all__ = ["DONE", "KEEP_ALIVE", "ChunkEncoder", "encode_error", "usage_object"]

DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = encode_comment("keep-alive")

_NO_FINISH = b',"logprobs":null,"finish_reason":null}]}\n\n'


def usage_object(meta: ProvaraMeta) -> dict[str, int]:
    """OpenAI's ``usage`` object from the meta."""
    return {
        "prompt_tokens": meta.input_tokens,
        "completion_tokens": meta.output_tokens,
        "total_tokens": meta.input_tokens + meta.output_tokens,
    }


def encode_error(error: dict[str, Any]) -> bytes:
    """An in-stream error event: ``data: {"error": {...}}``."""
    return b"data: " + orjson.dumps(error) + b"\n\n"


class ChunkEncoder:
    """Encodes the chunks of one streamed chat completion."""

    __slots__ = ("_head", "_header", "_role")

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        header = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
        )
        self._header = header[:-1]  # without the closing brace: fields follow
        self._head = b"data: " + self._header + b',"choices":[{"index":0,"delta":'
        self._role = b'"role":"assistant",'

    def _delta(self, fields: bytes) -> bytes:
        role, self._role = self._role, b""
        return self._head + b"{" + role + fields + b"}" + _NO_FINISH

    def text(self, text: str) -> bytes:
        return self._delta(b'"content":' + orjson.dumps(text))

    def reasoning(self, text: str) -> bytes:
        return self._delta(b'"reasoning_content":' + orjson.dumps(text))

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        call: dict[str, Any] = {"index": delta.index}
        if delta.id is not None:
            call["id"] = delta.id
            call["type"] = "function"
        function: dict[str, str] = {"arguments": delta.arguments}
        if delta.name is not None:
            function = {"name": delta.name, **function}
        call["function"] = function
        return self._delta(b'"tool_calls":' + orjson.dumps([call]))

    def end(
        self, meta: ProvaraMeta, *, include_usage: bool, provara: dict[str, Any] | None = None
    ) -> bytes:
        """Finish chunk, optional usage chunk, meta chunk and ``[DONE]``, as one write.

        ``provara`` replaces the meta's own dict (the gateway adds the served model and
        the attempts to it)."""
        finish = orjson.dumps(meta.finish_reason)
        parts = [
            self._head
            + b"{"
            + self._role.rstrip(b",")
            + b'},"logprobs":null,"finish_reason":'
            + finish
            + b"}]}\n\n"
        ]
        if include_usage:
            parts.append(
                b"data: "
                + self._header
                + b',"choices":[],"usage":'
                + orjson.dumps(usage_object(meta))
                + b"}\n\n"
            )
        parts.append(
            b"data: "
            + self._header
            + b',"choices":[],"provara":'
            + orjson.dumps(meta.to_dict() if provara is None else provara)
            + b"}\n\n"
        )
        parts.append(DONE)
        return b"".join(parts)
