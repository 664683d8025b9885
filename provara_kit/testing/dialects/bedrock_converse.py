"""Amazon Bedrock's Converse and ConverseStream (``POST /model/{modelId}/converse[-stream]``),
as in the wire corpus recordings.

A stream is AWS event-stream messages, each a JSON event with a ``"p"`` padding field:
``messageStart``, per content block ``contentBlockDelta`` pieces (a tool-use block opens
with ``contentBlockStart`` naming the call, and its input streams as ``toolUse.input``
fragments, the first one empty), ``contentBlockStop``, then ``messageStop`` with the stop
reason and ``metadata`` with the usage and latency: the terminal marker. The wire has no
keep-alive: the ``empty_chunks`` fault plays empty text deltas, as ``gpt-oss`` sends them.
An error inside the stream is an ``exception`` message (``modelStreamErrorException``,
``throttlingException`` ...). Usage is always reported (``metadata``); the ``absent`` mode
plays a stream that ends after ``messageStop`` with no ``metadata`` at all (the adapter
finishes it with estimated counts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import quote

from provara_kit.framings.event_stream import EVENT_STREAM, EventStreamMessage
from provara_kit.testing.conversation import LIMITS, NormalizedConversation
from provara_kit.testing.dialects.base import (
    MISSING,
    Frame,
    StreamExpectation,
    WireDialect,
    as_count,
    dumps,
)
from provara_kit.testing.dialects.bedrock_requests import (
    ROUTE,
    read_converse_conversation,
    signature_matches,
    url_fields,
    validate_converse_request,
)
from provara_kit.testing.event_stream import (
    EVENT_STREAM_FRAMINGS,
    BrokenChecksum,
    event,
    exception,
)
from provara_kit.testing.script import CannedReply, StreamFaults, UsageMode

if TYPE_CHECKING:
    from provara_kit.testing.framing import StreamFraming

__all__ = ["SCRIPTED_ACCESS_KEY", "STOP_REASONS", "BedrockConverseDialect", "decode_messages"]

STOP_REASONS: Final[Mapping[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "guardrail_intervened",
}
"""OpenAI finish reasons to Converse stop reasons; others are sent unchanged."""

SCRIPTED_ACCESS_KEY: Final = "AKIACONFORMANCE00000"
"""The access key id of the credentials a scripted run signs with."""
_SIGNATURE: Final = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
_PADDING: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def decode_messages(body: bytes) -> tuple[list[EventStreamMessage], bool]:
    """All messages of a whole event-stream body, and whether it is broken (cut inside a
    message, or failing a CRC check: what a reader gets up to the break)."""
    decoder = EVENT_STREAM.decoder()
    messages: list[EventStreamMessage] = []
    for offset in range(0, len(body), 1 << 16):
        try:
            messages += decoder.feed(body[offset : offset + (1 << 16)])
        except ValueError:
            return messages, True
    decoder.end()
    return messages, decoder.truncated


def _event(kind: str, data: dict[str, Any], chunk: int | None = None) -> Frame:
    # Real events carry a "p" field of random length that pads the frame size.
    padded = {**data, "p": _PADDING[: 3 + (len(kind) * 7) % 50]}
    return Frame(event(kind, dumps(padded).encode()), chunk)


class BedrockConverseDialect(WireDialect):
    """The ``bedrock-converse`` wire."""

    name: ClassVar[str] = "bedrock-converse"
    completion_path: ClassVar[str] = "/converse"
    models_path: ClassVar[str] = "/foundation-models"
    invalid_api_key_message: ClassVar[str] = (
        "The request signature we calculated does not match the signature you provided."
    )
    finish_reasons: ClassVar[Mapping[str, str]] = {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "guardrail_intervened": "content_filter",
        "content_filtered": "content_filter",
    }
    usage_modes: ClassVar[tuple[UsageMode, ...]] = ("present", "absent", "zero")
    carries_reasoning: ClassVar[bool] = True
    reports_cached_tokens: ClassVar[bool] = True
    names_model: ClassVar[bool] = False
    stream_error_text: ClassVar[str | None] = "The model stream failed."
    auth_header: ClassVar[str] = "authorization"
    auth_scheme: ClassVar[str] = "AWS4-HMAC-SHA256"  # scripted runs sign (scripted_key)

    def wire_finish_reason(self, reply: CannedReply) -> str:
        return reply.wire_finish_reason or STOP_REASONS.get(
            reply.finish_reason, reply.finish_reason
        )

    def framings(self) -> tuple[StreamFraming, ...]:
        """Header order, header value types, no ``:content-type`` and two messages in one
        read: the same events, written as the event-stream format allows."""
        return EVENT_STREAM_FRAMINGS

    def corruption(self) -> StreamFraming:
        """A message whose CRC32 does not match (its payload intact)."""
        return BrokenChecksum()

    # -- the URL and the transport ---------------------------------------------------------

    def completion_path_for(self, model: str, *, stream: bool) -> str:
        return f"/model/{quote(model, safe='')}/{'converse-stream' if stream else 'converse'}"

    def is_completion_path(self, path: str) -> bool:
        return ROUTE.search(path) is not None

    def url_fields(self, path: str, query: str) -> dict[str, Any]:
        """The model (URL-decoded) and whether the path is ``converse-stream``."""
        return url_fields(path)

    def stream_media_type(self, request: Mapping[str, Any]) -> str:
        return EVENT_STREAM.media_type

    def scripted_key(self, key: str) -> str:
        """AWS credentials whose secret is ``key``: scripted runs check a real signature."""
        return key if ":" in key else f"{SCRIPTED_ACCESS_KEY}:{key}"

    def key_matches(
        self,
        expected: str,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> bool:
        """AWS credentials (``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]``, or a plain
        key in its :meth:`scripted_key` form) as a SigV4 signature over this very request;
        a plain key also as a Bedrock API key (``Authorization: Bearer``)."""
        signed = signature_matches(
            self.scripted_key(expected),
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
        )
        return signed or (
            ":" not in expected
            and super().key_matches(
                expected, method=method, path=path, query=query, headers=headers, body=body
            )
        )

    # -- rendering -------------------------------------------------------------------------

    def render_completion(self, reply: CannedReply) -> bytes:
        content: list[dict[str, Any]] = []
        if reply.reasoning:
            text = {"text": reply.reasoning_text, "signature": _SIGNATURE}
            content.append({"reasoningContent": {"reasoningText": text}})
        if reply.text or not reply.tool_calls:
            content.append({"text": reply.text})
        content += [
            {"toolUse": {"toolUseId": id_, "name": name, "input": json.loads(args)}}
            for id_, name, args in reply.tool_calls
        ]
        body: dict[str, Any] = {
            "metrics": {"latencyMs": 412},
            "output": {"message": {"content": content, "role": "assistant"}},
            "stopReason": self.wire_finish_reason(reply),
        }
        if reply.usage != "absent":
            body["usage"] = _usage(reply)
        return dumps(body).encode()

    def stream_frames(
        self,
        reply: CannedReply,
        faults: StreamFaults,
        *,
        request: Mapping[str, Any] | None = None,
    ) -> list[Frame]:
        frames = [_event("messageStart", {"role": "assistant"})]
        block = 0
        error_after = faults.error_event_after
        if reply.reasoning:
            for piece in reply.reasoning:
                frames.append(_delta(block, {"reasoningContent": {"text": piece}}))
            frames.append(_delta(block, {"reasoningContent": {"signature": _SIGNATURE}}))
            frames.append(_event("contentBlockStop", {"contentBlockIndex": block}))
            block += 1
        if reply.chunks or not reply.tool_calls:
            if faults.empty_chunks:
                frames.append(_delta(block, {"text": ""}))
            for i, text in enumerate(reply.chunks):
                if error_after == i:
                    break
                if faults.empty_chunks and i:
                    frames.append(_delta(block, {"text": ""}))
                frames.append(_delta(block, {"text": text}, i))
            if error_after is not None:
                frames.append(Frame(self.render_stream_error(self.stream_error_text or "")))
                return frames
            frames.append(_event("contentBlockStop", {"contentBlockIndex": block}))
            block += 1
        elif error_after is not None:
            frames.append(Frame(self.render_stream_error(self.stream_error_text or "")))
            return frames
        for index, (id_, name, args) in enumerate(reply.tool_calls, start=block):
            start = {"toolUse": {"name": name, "toolUseId": id_}}
            frames.append(_event("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            frames.append(_delta(index, {"toolUse": {"input": ""}}))
            if json.loads(args) != {}:
                frames += [
                    _delta(index, {"toolUse": {"input": part}})
                    for part in reply.argument_fragments(args)
                ]
            frames.append(_event("contentBlockStop", {"contentBlockIndex": index}))
        if faults.omit_terminal:
            return frames
        frames.append(_event("messageStop", {"stopReason": self.wire_finish_reason(reply)}))
        if reply.usage != "absent":
            metadata = {"metrics": {"latencyMs": 412}, "usage": _usage(reply)}
            frames.append(_event("metadata", metadata))
        return frames

    def render_error(self, status: int, message: str, *, error_type: str | None = None) -> bytes:
        return dumps({"message": message}).encode()

    def render_stream_error(self, message: str, error_type: str | None = None) -> bytes:
        kind = error_type or "modelStreamErrorException"
        return exception(kind, dumps({"message": message}).encode())

    def render_models(self, ids: Sequence[str]) -> bytes:
        """ListFoundationModels (on the control-plane host, which adapters need not read)."""
        summaries = [
            {
                "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{id_}",
                "modelId": id_,
                "providerName": id_.split(".", 1)[0],
                "inputModalities": ["TEXT"],
                "outputModalities": ["TEXT"],
                "responseStreamingSupported": True,
                "inferenceTypesSupported": ["ON_DEMAND"],
            }
            for id_ in ids
        ]
        return dumps({"modelSummaries": summaries}).encode()

    # -- reference readers -----------------------------------------------------------------

    def read_stream(self, body: bytes) -> StreamExpectation:
        """Text, reasoning and tool-use blocks, the stop reason and the usage (input counts
        cache reads and writes too). Clean at ``metadata``, or at a whole body's end after
        ``messageStop``; never after an ``exception`` or ``error`` message."""
        messages, broken = decode_messages(body)
        text: list[str] = []
        reasoning: list[str] = []
        calls: dict[int, list[Any]] = {}
        input_tokens = output_tokens = None
        finish: str | None = None
        stopped = finished = False
        for message in messages:
            if message.message_type != "event":
                broken = True
                break
            try:
                data = json.loads(message.payload) if message.payload else {}
            except ValueError:
                broken = True
                break
            kind = message.event_type
            if kind == "contentBlockStart":
                tool = (data.get("start") or {}).get("toolUse")
                if isinstance(tool, dict):
                    calls[data.get("contentBlockIndex", len(calls))] = [
                        tool.get("toolUseId"),
                        tool.get("name"),
                        [],
                    ]
            elif kind == "contentBlockDelta":
                delta = data.get("delta") or {}
                index = data.get("contentBlockIndex")
                if isinstance(delta.get("text"), str):
                    text.append(delta["text"])
                elif isinstance(delta.get("reasoningContent"), dict):
                    piece = delta["reasoningContent"].get("text")
                    reasoning.append(piece if isinstance(piece, str) else "")
                elif isinstance(delta.get("toolUse"), dict) and index in calls:
                    calls[index][2].append(delta["toolUse"].get("input") or "")
            elif kind == "messageStop":
                stopped = True
                reason = data.get("stopReason")
                finish = (
                    self.finish_reasons.get(reason, reason) if isinstance(reason, str) else None
                )
            elif kind == "metadata":
                input_tokens, output_tokens = _read_usage(data.get("usage"))
                finished = True
                break
        return StreamExpectation(
            not broken and (finished or stopped),
            "".join(text),
            input_tokens,
            output_tokens,
            finish,
            reasoning="".join(reasoning),
            tool_calls=tuple(
                (id_, name, "".join(parts)) for _, (id_, name, parts) in sorted(calls.items())
            ),
        )

    def read_completion(self, body: bytes) -> StreamExpectation | None:
        """The content blocks, stop reason and usage of a Converse answer."""
        try:
            data = json.loads(body)
        except ValueError:
            return None
        message = (
            ((data.get("output") or {}).get("message") or {}) if isinstance(data, dict) else {}
        )
        if not isinstance(message.get("content"), list):
            return None
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[tuple[str | None, str | None, str]] = []
        for block in message["content"]:
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                text.append(block["text"])
            elif isinstance(block.get("reasoningContent"), dict):
                piece = (block["reasoningContent"].get("reasoningText") or {}).get("text")
                reasoning.append(piece if isinstance(piece, str) else "")
            elif isinstance(block.get("toolUse"), dict):
                use = block["toolUse"]
                arguments = use.get("input")
                calls.append(
                    (
                        use.get("toolUseId"),
                        use.get("name"),
                        "" if arguments in (None, {}) else json.dumps(arguments),
                    )
                )
        input_tokens, output_tokens = _read_usage(data.get("usage"))
        reason = data.get("stopReason")
        return StreamExpectation(
            True,
            "".join(text),
            input_tokens,
            output_tokens,
            self.finish_reasons.get(reason, reason) if isinstance(reason, str) else None,
            reasoning="".join(reasoning),
            tool_calls=tuple(calls),
        )

    # -- reading requests ------------------------------------------------------------------

    conversation_limits: ClassVar[Mapping[str, str]] = {
        name: LIMITS[name] for name in ("message-name", "image-url", "no-tool-choice-none")
    }

    def prompt_text(self, body: Mapping[str, Any]) -> str:
        conversation = read_converse_conversation(body)
        return "".join(conversation.system) + "".join(turn.text for turn in conversation.turns)

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for turn in reversed(read_converse_conversation(body).turns):
            if turn.role == "user":
                return turn.text
        return ""

    def read_param(self, body: Mapping[str, Any], name: str) -> Any:
        """Converse fields in OpenAI's shape: ``system`` blocks, ``inferenceConfig``
        (``maxTokens``, ``temperature``, ``topP``, ``stopSequences``), ``toolConfig``
        mapped back to OpenAI tools and tool choice, ``requestMetadata`` as ``metadata``;
        the model and the streaming choice come from the URL."""
        inference = body.get("inferenceConfig")
        inference = inference if isinstance(inference, Mapping) else {}
        renamed = {
            "max_tokens": "maxTokens",
            "max_completion_tokens": "maxTokens",
            "temperature": "temperature",
            "top_p": "topP",
            "stop": "stopSequences",
        }
        if name in renamed:
            return inference.get(renamed[name], MISSING)
        if name == "system":
            texts = read_converse_conversation(body).system
            return "\n\n".join(texts) if "system" in body else MISSING
        if name == "metadata":
            return body.get("requestMetadata", MISSING)
        config = body.get("toolConfig")
        if name in ("tools", "tool_choice"):
            if not isinstance(config, Mapping):
                return MISSING
            conversation = read_converse_conversation(body)
            if name == "tools":
                return [
                    {
                        "type": "function",
                        "function": {
                            "name": tool.name,
                            **({"description": tool.description} if tool.description else {}),
                            "parameters": tool.parameters,
                        },
                    }
                    for tool in conversation.tools
                ]
            if "toolChoice" not in config:
                return MISSING
            choice = conversation.tool_choice
            if isinstance(choice, tuple):
                return {"type": "function", "function": {"name": choice[1]}}
            return choice
        return super().read_param(body, name)

    def read_conversation(self, body: Mapping[str, Any]) -> NormalizedConversation:
        """``system`` blocks, ``toolUse``/``toolResult`` and image blocks,
        ``inferenceConfig`` and ``toolConfig``, in OpenAI's terms."""
        return read_converse_conversation(body)

    def validate_request(self, body: Mapping[str, Any]) -> list[str]:
        """Known fields only; user and assistant turns with non-empty content, the first a
        user turn; every ``toolUse`` answered by a ``toolResult`` in the next turn; a
        ``toolConfig`` whenever tool blocks are present; image formats and sources."""
        return validate_converse_request(body)


def _delta(index: int, delta: dict[str, Any], chunk: int | None = None) -> Frame:
    return _event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}, chunk)


def _usage(reply: CannedReply) -> dict[str, int] | None:
    """Converse usage: ``inputTokens`` leaves out the cached part, reported beside it.
    The wire always reports both counts; the script's ``partial`` and ``null`` forms are
    played as an input count alone and ``"usage": null``."""
    input_tokens, output_tokens = reply.reported_tokens()
    if input_tokens is None:
        return None
    cached = 0 if reply.usage == "zero" else reply.cached_input_tokens
    written = cached // 3
    usage = {"inputTokens": input_tokens - cached}
    if output_tokens is not None:
        usage["outputTokens"] = output_tokens
        usage["totalTokens"] = input_tokens + output_tokens
    if cached:
        usage["cacheReadInputTokens"] = cached - written
        usage["cacheWriteInputTokens"] = written
    return usage


def _read_usage(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None
    uncached = as_count(usage.get("inputTokens"))
    if uncached is not None:
        for name, alias in (
            ("cacheReadInputTokens", "cacheReadInputTokenCount"),
            ("cacheWriteInputTokens", "cacheWriteInputTokenCount"),
        ):
            value = as_count(usage.get(name))
            uncached += (value if value is not None else as_count(usage.get(alias))) or 0
    return uncached, as_count(usage.get("outputTokens"))
