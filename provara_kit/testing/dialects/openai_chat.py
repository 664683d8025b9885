"""OpenAI Chat Completions, as OpenAI and the OpenAI-compatible providers send it.

Streams follow the recordings in the wire corpus: a role-only first chunk with
``"content": ""``, one chunk per piece of text, a finish chunk with an empty delta, then (when
the request asked ``stream_options.include_usage``) a usage chunk with ``"choices": []``
while every other chunk carries ``"usage": null``, and ``data: [DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from provara_kit.sse import encode_comment, encode_event
from provara_kit.testing.dialects.base import (
    Frame,
    StreamExpectation,
    WireDialect,
    as_count,
    decode_body,
    dumps,
)
from provara_kit.testing.script import CannedReply, StreamFaults

__all__ = ["OpenAIChatDialect"]

CREATED: Final = 1_755_691_077
"""The fixed ``created`` timestamp, so rendered bodies are reproducible."""

_KEEP_ALIVE: Final = encode_comment("keep-alive")

_ERROR_TYPES: Final[Mapping[int, tuple[str, str | None]]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class OpenAIChatDialect(WireDialect):
    """The ``openai-chat`` wire.

    ``done_marker=False`` plays a provider that never sends ``data: [DONE]`` and ends the
    body after the finish chunk instead (Perplexity), which is a clean end too.
    """

    name: ClassVar[str] = "openai-chat"
    completion_path: ClassVar[str] = "/chat/completions"
    invalid_api_key_message: ClassVar[str] = (
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )

    def __init__(self, *, done_marker: bool = True) -> None:
        self.done_marker = done_marker

    def render_completion(self, reply: CannedReply) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if reply.tool_calls and not reply.text else reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}
                for id_, name, args in reply.tool_calls
            ]
        body: dict[str, Any] = {
            "id": reply.id,
            "object": "chat.completion",
            "created": CREATED,
            "model": reply.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
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

        def chunk(
            delta: dict[str, Any], finish_reason: str | None = None, index: int | None = None
        ) -> Frame:
            body: dict[str, Any] = {
                "id": reply.id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": reply.model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if usage_field:
                body["usage"] = None
            return Frame(encode_event(dumps(body)), index)

        frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if faults.empty_chunks:
            frames += [
                Frame(_KEEP_ALIVE),
                chunk({"role": "assistant"}),
                chunk({"content": ""}),
            ]
        error_after = faults.error_event_after
        for i, text in enumerate(reply.chunks):
            if error_after == i:
                break
            if faults.empty_chunks and i:
                frames += [chunk({"content": ""}), Frame(_KEEP_ALIVE)]
            frames.append(chunk({"content": text}, index=i))
        if error_after is not None:
            frames.append(Frame(self.render_stream_error("The server had an error")))
            return frames
        for j, (id_, name, args) in enumerate(reply.tool_calls):
            function = {"name": name, "arguments": ""}
            call = {"index": j, "id": id_, "type": "function", "function": function}
            frames.append(chunk({"tool_calls": [call]}))
            frames.append(chunk({"tool_calls": [{"index": j, "function": {"arguments": args}}]}))
        if faults.omit_terminal:
            return frames
        frames.append(chunk({}, reply.finish_reason))
        if include_usage and reply.usage in ("present", "partial", "zero"):
            body = {
                "id": reply.id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": reply.model,
                "system_fingerprint": None,
                "choices": [],
                "usage": _usage(reply),
            }
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
        return encode_event(dumps(body))

    def read_stream(self, body: bytes) -> StreamExpectation:
        """Choice 0's text and the last usage reported; clean at ``[DONE]``, or at the end of
        a body whose last choice carried a ``finish_reason``; an error event or object (even
        with ``[DONE]`` after it) is not clean."""
        events, truncated = decode_body(body)
        text: list[str] = []
        input_tokens = output_tokens = None
        finish: str | None = None
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
            for choice in chunk.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if isinstance(content, str):
                    text.append(content)
                elif isinstance(content, list):
                    text.extend(
                        p["text"]
                        for p in content
                        if isinstance(p, dict)
                        and p.get("type") == "text"
                        and isinstance(p.get("text"), str)
                    )
                if isinstance(delta.get("refusal"), str):
                    text.append(delta["refusal"])
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
            usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
            if isinstance(usage, dict):
                reported = as_count(usage.get("prompt_tokens"))
                input_tokens = input_tokens if reported is None else reported
                reported = as_count(usage.get("completion_tokens"))
                output_tokens = output_tokens if reported is None else reported
        clean = not failed and not truncated and (done or finish is not None)
        return StreamExpectation(clean, "".join(text), input_tokens, output_tokens, finish)

    def render_models(self, ids: Sequence[str]) -> bytes:
        data = [
            {"id": id_, "object": "model", "created": CREATED, "owned_by": "scripted"}
            for id_ in ids
        ]
        return json.dumps({"object": "list", "data": data}, ensure_ascii=False).encode()


def _usage(reply: CannedReply) -> dict[str, int] | None:
    input_tokens, output_tokens = reply.reported_tokens()
    if input_tokens is None:
        return None
    if output_tokens is None:
        return {"prompt_tokens": input_tokens}
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
