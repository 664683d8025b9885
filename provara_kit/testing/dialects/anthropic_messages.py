"""Anthropic's Messages API (``POST /v1/messages``), as in the wire corpus recordings.

A stream is ``message_start`` (usage with the input tokens and ``output_tokens: 1``), one
content block per text or tool call (``content_block_start``, a ``ping`` after the first,
``content_block_delta`` per piece, ``content_block_stop``), ``message_delta`` with the stop
reason and the cumulative usage, and ``message_stop``, the terminal marker.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Final

from provara_kit.sse import encode_comment, encode_event
from provara_kit.testing.conversation import LIMITS, NormalizedConversation
from provara_kit.testing.dialects.anthropic_requests import (
    read_messages_conversation,
    validate_messages_request,
)
from provara_kit.testing.dialects.base import (
    MISSING,
    Frame,
    StreamExpectation,
    WireDialect,
    as_count,
    decode_body,
    dumps,
    stand_in_token_count,
)
from provara_kit.testing.script import CannedReply, StreamFaults

__all__ = ["API_VERSION", "STOP_REASONS", "AnthropicMessagesDialect"]

API_VERSION: Final = "2023-06-01"
"""The ``anthropic-version`` header every request carries."""

STOP_REASONS: Final[Mapping[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI finish reasons to Anthropic stop reasons; others are sent unchanged."""

_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_COUNT_FIELDS: Final = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}
)
"""The fields ``POST /v1/messages/count_tokens`` takes."""

_KEEP_ALIVE: Final = encode_comment("keep-alive")
_PING: Final = encode_event('{"type": "ping"}', event="ping")
_REQUEST_ID: Final = "req_scripted"


def _event(data: dict[str, Any], index: int | None = None) -> Frame:
    return Frame(encode_event(dumps(data), event=str(data["type"])), index)


@dataclass(frozen=True, slots=True)
class AnthropicQuirks:
    """How an Anthropic-shaped endpoint departs from Anthropic's own stream (all off).

    * ``first_piece_in_block_start``: text and thinking blocks start with their first piece
      (``content_block_start`` carries it) instead of an empty block.
    * ``whole_tool_input``: a ``tool_use`` block starts with its whole ``input``, and no
      ``input_json_delta`` follows.
    * ``delta_usage_output_only``: ``message_delta`` reports ``output_tokens`` alone, as the
      API did before it repeated the input counts there.
    * ``block_per_piece``: a whole answer holds one text (and thinking) block per piece,
      as answers interleaved with server tool results do.
    * ``no_event_names``: events carry no ``event:`` line; the JSON ``type`` names them.
    * ``input_grows``: ``message_start`` reports fewer input tokens than ``message_delta``
      (server tools add input as the answer runs); the last report is the count.
    """

    first_piece_in_block_start: bool = False
    whole_tool_input: bool = False
    delta_usage_output_only: bool = False
    block_per_piece: bool = False
    no_event_names: bool = False
    input_grows: bool = False


_VARIANTS: Final[Mapping[str, AnthropicQuirks]] = {
    "blocks that start with their first piece, tool input whole": AnthropicQuirks(
        first_piece_in_block_start=True, whole_tool_input=True
    ),
    "message_delta reports output tokens only": AnthropicQuirks(delta_usage_output_only=True),
    "a block per piece, no event names, input counted up in message_delta": AnthropicQuirks(
        block_per_piece=True, no_event_names=True, input_grows=True
    ),
}


class AnthropicMessagesDialect(WireDialect):
    """The ``anthropic-messages`` wire; ``quirks`` plays an Anthropic-shaped endpoint's
    departures (:class:`AnthropicQuirks`)."""

    name: ClassVar[str] = "anthropic-messages"
    completion_path: ClassVar[str] = "/messages"
    invalid_api_key_message: ClassVar[str] = "invalid x-api-key"
    finish_reasons: ClassVar[Mapping[str, str]] = {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "pause_turn": "pause_turn",
        "refusal": "refusal",
    }
    carries_reasoning: ClassVar[bool] = True
    reports_cached_tokens: ClassVar[bool] = True
    stream_error_text: ClassVar[str | None] = "Overloaded"

    def __init__(self, *, quirks: AnthropicQuirks | None = None) -> None:
        self.quirks = quirks or AnthropicQuirks()

    def wire_finish_reason(self, reply: CannedReply) -> str:
        return reply.wire_finish_reason or _stop_reason(reply.finish_reason)

    def wire_variants(self) -> dict[str, WireDialect]:
        """This wire as Anthropic sends it, and as Anthropic-shaped endpoints do."""
        variants: dict[str, WireDialect] = {"as Anthropic sends it": self}
        for label, quirks in _VARIANTS.items():
            variant = copy.copy(self)
            variant.quirks = quirks
            variants[label] = variant
        return variants

    def render_completion(self, reply: CannedReply) -> bytes:
        content: list[dict[str, Any]] = []
        split = self.quirks.block_per_piece
        for thinking in (
            reply.reasoning if split else [reply.reasoning_text] * bool(reply.reasoning)
        ):
            content.append({"type": "thinking", "thinking": thinking, "signature": _SIGNATURE})
        if reply.text or not reply.tool_calls:
            pieces = reply.chunks if split and reply.chunks else (reply.text,)
            content += [{"type": "text", "text": piece} for piece in pieces]
        content.extend(
            {"type": "tool_use", "id": id_, "name": name, "input": json.loads(args)}
            for id_, name, args in reply.tool_calls
        )
        body: dict[str, Any] = {
            "id": reply.id,
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": content,
            "stop_reason": self.wire_finish_reason(reply),
            "stop_sequence": None,
        }
        if reply.usage != "absent":
            body["usage"] = _usage(reply, reply.output_tokens)
        return dumps(body).encode()

    def stream_frames(
        self,
        reply: CannedReply,
        faults: StreamFaults,
        *,
        request: Mapping[str, Any] | None = None,
    ) -> list[Frame]:
        message: dict[str, Any] = {
            "id": reply.id,
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        quirks = self.quirks
        if reply.usage != "absent":
            message["usage"] = _usage(reply, min(1, reply.output_tokens))
            started = message["usage"]
            if quirks.input_grows and started and started["input_tokens"] > 0:
                started["input_tokens"] -= 1
        frames = [_event({"type": "message_start", "message": message})]
        block = 0
        error_after = faults.error_event_after
        if reply.reasoning:
            frames += _thinking_block(reply.reasoning, quirks.first_piece_in_block_start)
            block = 1
        if reply.chunks or not reply.tool_calls:
            first = quirks.first_piece_in_block_start and bool(reply.chunks) and error_after != 0
            frames += [
                _event(
                    {
                        "type": "content_block_start",
                        "index": block,
                        "content_block": {"type": "text", "text": reply.chunks[0] if first else ""},
                    },
                    0 if first else None,
                ),
                Frame(_PING),
            ]
            if faults.empty_chunks:
                frames += [Frame(_KEEP_ALIVE), _text_delta(block, ""), Frame(_PING)]
            for i, text in enumerate(reply.chunks):
                if error_after == i:
                    break
                if first and i == 0:
                    continue
                if faults.empty_chunks and i:
                    frames += [_text_delta(block, ""), Frame(_KEEP_ALIVE)]
                frames.append(_text_delta(block, text, i))
            if error_after is not None:
                frames.append(Frame(self.render_stream_error("Overloaded")))
                return frames
            frames.append(_event({"type": "content_block_stop", "index": block}))
            block += 1
        elif error_after is not None:
            frames.append(Frame(self.render_stream_error("Overloaded")))
            return frames
        for index, (id_, name, args) in enumerate(reply.tool_calls, start=block):
            whole = quirks.whole_tool_input
            tool = {
                "type": "tool_use",
                "id": id_,
                "name": name,
                "input": json.loads(args) if whole else {},
            }
            frames.append(
                _event({"type": "content_block_start", "index": index, "content_block": tool})
            )
            if index == 0:
                frames.append(Frame(_PING))
            if not whole:
                frames.append(_json_delta(index, ""))
                if json.loads(args) != {}:
                    frames += [_json_delta(index, part) for part in reply.argument_fragments(args)]
            frames.append(_event({"type": "content_block_stop", "index": index}))
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self.wire_finish_reason(reply), "stop_sequence": None},
        }
        if reply.usage != "absent":
            usage = _usage(reply, reply.output_tokens)
            if quirks.delta_usage_output_only and usage is not None:
                usage = {k: v for k, v in usage.items() if k == "output_tokens"} or None
            delta["usage"] = usage
        frames.append(_event(delta))
        if not faults.omit_terminal:
            frames.append(_event({"type": "message_stop"}))
        if quirks.no_event_names:
            frames = [replace(f, data=_EVENT_LINE.sub(b"", f.data)) for f in frames]
        return frames

    def render_error(self, status: int, message: str, *, error_type: str | None = None) -> bytes:
        default = _ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        body = {
            "type": "error",
            "error": {"type": error_type or default, "message": message},
            "request_id": _REQUEST_ID,
        }
        return dumps(body).encode()

    def render_stream_error(self, message: str, error_type: str | None = None) -> bytes:
        body = {
            "type": "error",
            "error": {
                "details": None,
                "type": error_type or "overloaded_error",
                "message": message,
            },
        }
        return encode_event(dumps(body), event="error")

    def read_stream(self, body: bytes) -> StreamExpectation:
        """Text, thinking and tool-use blocks and the cumulative usage (input counts cache
        reads and writes too); clean only at ``message_stop``, never after an ``error``."""
        events, truncated = decode_body(body)
        text: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, list[Any]] = {}
        input_tokens = output_tokens = None
        finish: str | None = None
        model: str | None = None
        response_id: str | None = None
        stopped = False
        for event in events:
            try:
                data = json.loads(event.data)
            except ValueError:
                break
            kind = data.get("type", event.event) if isinstance(data, dict) else event.event
            if kind == "error":
                break
            if kind == "message_stop":
                stopped = True
                break
            if kind == "message_start":
                started = data.get("message") or {}
                model = started.get("model") if isinstance(started.get("model"), str) else None
                response_id = started.get("id") if isinstance(started.get("id"), str) else None
                usage = started.get("usage") or {}
                input_tokens = _billed_input(usage, input_tokens)
                output_tokens = (
                    as_count(usage.get("output_tokens"))
                    if "output_tokens" in usage
                    else output_tokens
                )
            elif kind == "content_block_start":
                block = data.get("content_block") or {}
                if block.get("type") == "tool_use":
                    given = block.get("input")
                    parts = [json.dumps(given)] if isinstance(given, dict) and given else []
                    calls[data.get("index", len(calls))] = [
                        block.get("id"),
                        block.get("name"),
                        parts,
                    ]
                elif block.get("type") == "text" and isinstance(block.get("text"), str):
                    text.append(block["text"])
                elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                    reasoning.append(block["thinking"])
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                kind = delta.get("type")
                if kind == "text_delta" and isinstance(delta.get("text"), str):
                    text.append(delta["text"])
                elif kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
                    reasoning.append(delta["thinking"])
                elif kind == "input_json_delta" and data.get("index") in calls:
                    calls[data["index"]][2].append(delta.get("partial_json") or "")
            elif kind == "message_delta":
                usage = data.get("usage") or {}
                input_tokens = _billed_input(usage, input_tokens)
                if as_count(usage.get("output_tokens")) is not None:
                    output_tokens = usage["output_tokens"]
                reason = (data.get("delta") or {}).get("stop_reason")
                if reason:
                    finish = self.finish_reasons.get(reason, reason)
        return StreamExpectation(
            stopped and not truncated,
            "".join(text),
            input_tokens,
            output_tokens,
            finish,
            reasoning="".join(reasoning),
            tool_calls=tuple(
                (id_, name, "".join(parts)) for _, (id_, name, parts) in sorted(calls.items())
            ),
            model=model,
            id=response_id,
        )

    def read_completion(self, body: bytes) -> StreamExpectation | None:
        """The content blocks, stop reason and usage of a non-streamed message."""
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            return None
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[tuple[str | None, str | None, str]] = []
        for block in data["content"]:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                text.append(block["text"])
            elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                reasoning.append(block["thinking"])
            elif block.get("type") == "tool_use":
                arguments = block.get("input")
                calls.append(
                    (
                        block.get("id"),
                        block.get("name"),
                        "" if arguments in (None, {}) else json.dumps(arguments),
                    )
                )
        usage = data.get("usage") or {}
        reason = data.get("stop_reason")
        return StreamExpectation(
            True,
            "".join(text),
            _billed_input(usage, None) if isinstance(usage, dict) else None,
            as_count(usage.get("output_tokens")) if isinstance(usage, dict) else None,
            self.finish_reasons.get(reason, reason) if isinstance(reason, str) else None,
            reasoning="".join(reasoning),
            tool_calls=tuple(calls),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            id=data.get("id") if isinstance(data.get("id"), str) else None,
        )

    def render_models(self, ids: Sequence[str]) -> bytes:
        return _models_page(ids, has_more=False)

    def render_models_page(
        self, ids: Sequence[str], query: Mapping[str, str], *, page_size: int | None = None
    ) -> bytes:
        """The page ``GET /v1/models`` serves: ``limit`` entries (default 20, 1 to 1000, at
        most ``page_size``) after ``after_id`` or before ``before_id``, ``first_id`` and
        ``last_id`` naming its ends, ``has_more`` whether more lie in that direction."""
        ids = list(ids)
        limit = _models_limit(query.get("limit"))
        if page_size is not None:
            limit = min(limit, page_size)
        before = query.get("before_id")
        if before is not None:
            end = ids.index(before) if before in ids else 0
            start = max(0, end - limit)
            return _models_page(ids[start:end], has_more=start > 0)
        after = query.get("after_id")
        start = 0 if after is None else ids.index(after) + 1 if after in ids else len(ids)
        return _models_page(ids[start : start + limit], has_more=start + limit < len(ids))

    auth_header: ClassVar[str] = "x-api-key"

    def version_headers(self) -> Mapping[str, str]:
        return {"anthropic-version": API_VERSION}

    conversation_limits: ClassVar[Mapping[str, str]] = {
        "message-name": LIMITS["message-name"],
        "user-in-metadata": LIMITS["user-in-metadata"],
    }
    requires_max_tokens: ClassVar[bool] = True

    def read_conversation(self, body: Mapping[str, Any]) -> NormalizedConversation:
        """The top-level ``system``, ``tool_use``/``tool_result`` and image blocks,
        ``stop_sequences`` and ``disable_parallel_tool_use``, in OpenAI's terms."""
        return read_messages_conversation(body)

    def validate_request(self, body: Mapping[str, Any]) -> list[str]:
        """``max_tokens`` required; user and assistant turns only, the first a user turn;
        every ``tool_use`` answered by a ``tool_result`` in the next turn; image sources,
        non-empty text and a ``tool_choice`` the API takes."""
        return validate_messages_request(body)

    count_tokens_path: ClassVar[str] = "/messages/count_tokens"

    def is_count_path(self, path: str) -> bool:
        return path.endswith(self.count_tokens_path)

    def render_token_count(self, body: Mapping[str, Any]) -> bytes:
        """``{"input_tokens": N}``: the stand-in count of the system text, every message's
        text and the tools, plus 3 a message (the turn's framing)."""
        messages = body.get("messages")
        turns = len(messages) if isinstance(messages, list) else 0
        tools = json.dumps(body["tools"]) if body.get("tools") else ""
        count = stand_in_token_count(self.prompt_text(body) + tools) + 3 * turns
        return dumps({"input_tokens": count}).encode()

    def validate_count_request(self, body: Mapping[str, Any]) -> list[str]:
        """``model`` and ``messages`` required, the fields a count takes only (a
        ``max_tokens`` or ``stream`` is refused), and the messages as a completion's."""
        problems = [f"{key}: Field required" for key in ("model", "messages") if key not in body]
        problems += [
            f"{key}: Extra inputs are not permitted" for key in sorted(set(body) - _COUNT_FIELDS)
        ]
        return problems + validate_messages_request({**body, "max_tokens": 1})

    def read_param(self, body: Mapping[str, Any], name: str) -> Any:
        """Messages-API fields in OpenAI's shape: ``system`` is the top-level ``system``,
        ``stop`` is ``stop_sequences``, ``user`` is ``metadata.user_id``, tools and
        ``tool_choice`` are mapped back to OpenAI's function shapes."""
        if name == "system":
            return _system_text(body["system"]) if "system" in body else MISSING
        if name == "stop":
            return body.get("stop_sequences", MISSING)
        if name == "user":
            metadata = body.get("metadata")
            return metadata.get("user_id", MISSING) if isinstance(metadata, Mapping) else MISSING
        if name == "tools" and isinstance(body.get("tools"), list):
            return [_openai_tool(tool) for tool in body["tools"]]
        if name == "tool_choice" and isinstance(body.get("tool_choice"), Mapping):
            return _openai_tool_choice(body["tool_choice"])
        return super().read_param(body, name)


def _system_text(system: Any) -> Any:
    if not isinstance(system, list):
        return system
    return "".join(block.get("text") or "" for block in system if isinstance(block, Mapping))


def _openai_tool(tool: Any) -> Any:
    if not isinstance(tool, Mapping) or "input_schema" not in tool:
        return tool
    function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
    if "description" in tool:
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


_TOOL_CHOICES: Final[Mapping[str, str]] = {"auto": "auto", "any": "required", "none": "none"}


def _openai_tool_choice(choice: Mapping[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return _TOOL_CHOICES.get(kind, dict(choice)) if isinstance(kind, str) else dict(choice)


_EVENT_LINE: Final = re.compile(rb"^event:[^\n]*\n", re.MULTILINE)
_SIGNATURE: Final = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def _thinking_block(pieces: Sequence[str], first_in_start: bool = False) -> list[Frame]:
    """A thinking block at index 0: its pieces, then the signature."""
    first = pieces[0] if first_in_start and pieces else ""
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": first, "signature": ""},
    }
    frames = [_event(start)]
    for piece in pieces[1:] if first else pieces:
        delta = {"type": "thinking_delta", "thinking": piece}
        frames.append(_event({"type": "content_block_delta", "index": 0, "delta": delta}))
    signature = {"type": "signature_delta", "signature": _SIGNATURE}
    frames.append(_event({"type": "content_block_delta", "index": 0, "delta": signature}))
    frames.append(_event({"type": "content_block_stop", "index": 0}))
    return frames


def _models_limit(value: str | None) -> int:
    """The page size a ``limit`` query asks for (default 20, clamped to 1-1000)."""
    if value is None or not value.isdigit():
        return 20
    return max(1, min(int(value), 1000))


def _models_page(ids: Sequence[str], *, has_more: bool) -> bytes:
    data = [
        {
            "type": "model",
            "id": id_,
            "display_name": id_.replace("-", " ").title(),
            "created_at": "2025-01-01T00:00:00Z",
        }
        for id_ in ids
    ]
    body = {
        "data": data,
        "has_more": has_more,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }
    return dumps(body).encode()


def _stop_reason(finish_reason: str) -> str:
    return STOP_REASONS.get(finish_reason, finish_reason)


def _text_delta(index: int, text: str, chunk: int | None = None) -> Frame:
    return _event(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        },
        chunk,
    )


def _json_delta(index: int, partial: str) -> Frame:
    return _event(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": partial},
        }
    )


def _usage(reply: CannedReply, output_tokens: int) -> dict[str, int] | None:
    """Anthropic usage; ``output_tokens`` is the count to report at this point."""
    input_tokens, reported_output = reply.reported_tokens()
    if input_tokens is None:
        return None
    # Anthropic's input_tokens leaves out the cached part; the two cache fields carry it.
    cached = 0 if reply.usage == "zero" else reply.cached_input_tokens
    written = cached // 3
    usage = {
        "input_tokens": input_tokens - cached,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached - written,
    }
    if reported_output is not None:
        usage["output_tokens"] = min(output_tokens, reported_output)
    return usage


def _billed_input(usage: Mapping[str, Any], previous: int | None) -> int | None:
    uncached = as_count(usage.get("input_tokens"))
    if uncached is None:
        return previous
    cached = (as_count(usage.get("cache_creation_input_tokens")) or 0) + (
        as_count(usage.get("cache_read_input_tokens")) or 0
    )
    return uncached + cached
