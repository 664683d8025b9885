"""Google's Gemini API (``POST /models/{model}:generateContent``), as in the wire corpus.

The model and the streaming choice travel in the URL: ``:generateContent`` answers in one
body, ``:streamGenerateContent`` streams, as Server-Sent Events with ``?alt=sse`` and as
one streamed JSON array without it. Each chunk is a whole ``GenerateContentResponse``: the
first candidate's new parts (text, ``thought: true`` text, whole ``functionCall`` parts),
``usageMetadata`` (cumulative; counts not known yet left out), ``modelVersion`` and ``responseId``.
The last chunk carries the ``finishReason`` beside an empty text part. There is no
terminal marker: the body ends (for an array: after its ``]``). An error inside a stream
is an ``{"error": {...}}`` chunk (an array element, or an SSE ``data`` event), then the
end of the body.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal
from urllib.parse import parse_qsl, quote, unquote

from provara_kit.sse import encode_comment, encode_event
from provara_kit.testing.conversation import LIMITS, NormalizedConversation
from provara_kit.testing.dialects.base import (
    Frame,
    StreamExpectation,
    WireDialect,
    dumps,
    stand_in_token_count,
)
from provara_kit.testing.dialects.gemini_requests import (
    read_gemini_conversation,
    read_gemini_param,
    validate_gemini_request,
)
from provara_kit.testing.dialects.gemini_responses import (
    ENUM_NUMBERS,
    FINISH_REASONS,
    read_gemini_completion,
    read_gemini_stream,
)
from provara_kit.testing.script import CannedReply, StreamFaults, UsageMode

__all__ = ["FINISH_REASONS", "GeminiDialect", "GeminiQuirks"]

_TO_WIRE: Final[Mapping[str, str]] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}
_STATUSES: Final[Mapping[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_COMPLETION: Final = re.compile(r"/models/([^/]+):(generateContent|streamGenerateContent)$")
_COUNT: Final = re.compile(r"/models/([^/]+):countTokens$")
_KEEP_ALIVE: Final = encode_comment("keep-alive")

StreamFramingName = Literal["sse", "json-array"]


@dataclass(frozen=True, slots=True)
class GeminiQuirks:
    """Forms the Gemini wire takes besides the plainest one (all off).

    * ``call_ids``: ``functionCall`` parts carry an ``id`` (most answers give none).
    * ``finish_on_last_content``: the ``finishReason`` rides on the last content chunk
      instead of a chunk of its own.
    * ``int_enums``: enums as numbers (``$alt=json;enum-encoding=int``).
    * ``parts_together``: a stream sends the reasoning with the first text, and every
      function call of the answer in one chunk (several parts per chunk).
    * ``usage_every_chunk``: ``usageMetadata`` on every chunk, the prompt count only until
      the last one (what ``present`` usage looks like from Google).
    * ``prompt_blocked``: the prompt is blocked before any candidate: the answer (and the
      stream's one chunk) is ``promptFeedback.blockReason`` with the prompt's usage, no
      ``candidates``; a ``content_filter`` finish with nothing said.
    """

    call_ids: bool = False
    finish_on_last_content: bool = False
    int_enums: bool = False
    parts_together: bool = False
    usage_every_chunk: bool = False
    prompt_blocked: bool = False


_VARIANTS: Final[Mapping[str, GeminiQuirks]] = {
    "function calls with ids, the finish on the last content chunk": GeminiQuirks(
        call_ids=True, finish_on_last_content=True
    ),
    "integer enums (enum-encoding=int), usage on every chunk": GeminiQuirks(
        int_enums=True, usage_every_chunk=True
    ),
    "several parts per chunk": GeminiQuirks(parts_together=True),
    "the prompt blocked before any candidate": GeminiQuirks(prompt_blocked=True),
}


class GeminiDialect(WireDialect):
    """The ``gemini-generate-content`` wire.

    ``stream_framing`` is how a stream is written when the request does not say
    (``sse``, or ``json-array``); a request's own ``alt=sse`` (or its absence) decides
    otherwise. ``quirks`` plays the wire's other forms (:class:`GeminiQuirks`).
    """

    name: ClassVar[str] = "gemini-generate-content"
    completion_path: ClassVar[str] = ":generateContent"
    models_path: ClassVar[str] = "/models"
    invalid_api_key_message: ClassVar[str] = "API key not valid. Please pass a valid API key."
    finish_reasons: ClassVar[Mapping[str, str]] = FINISH_REASONS
    usage_modes: ClassVar[tuple[UsageMode, ...]] = (
        "present",
        "absent",
        "partial",
        "zero",
        "cumulative",
    )
    carries_reasoning: ClassVar[bool] = True
    reports_cached_tokens: ClassVar[bool] = True
    auth_header: ClassVar[str] = "x-goog-api-key"
    conversation_limits: ClassVar[Mapping[str, str]] = {"message-name": LIMITS["message-name"]}

    def __init__(
        self,
        *,
        stream_framing: StreamFramingName = "sse",
        quirks: GeminiQuirks | None = None,
    ) -> None:
        if stream_framing not in ("sse", "json-array"):
            raise ValueError(f"stream_framing must be 'sse' or 'json-array': {stream_framing!r}")
        self.stream_framing: StreamFramingName = stream_framing
        self.quirks = quirks or GeminiQuirks()

    def __repr__(self) -> str:
        return f"GeminiDialect(stream_framing={self.stream_framing!r})"

    @property
    def has_terminal_marker(self) -> bool:
        # An SSE stream ends with the body; a JSON array ends at its "]", whatever the
        # connection does after it.
        return self.stream_framing == "json-array"

    def wire_variants(self) -> dict[str, WireDialect]:
        variants: dict[str, WireDialect] = {"as Google sends it": self}
        for label, quirks in _VARIANTS.items():
            variant = copy.copy(self)
            variant.quirks = quirks
            variants[label] = variant
        return variants

    def framings(self) -> tuple[Any, ...]:
        from provara_kit.testing.framing import JSON_ARRAY_FRAMINGS, SSE_FRAMINGS

        return SSE_FRAMINGS if self.stream_framing == "sse" else JSON_ARRAY_FRAMINGS

    def wire_finish_reason(self, reply: CannedReply) -> str:
        return reply.wire_finish_reason or _TO_WIRE.get(reply.finish_reason, "OTHER")

    def expected_finish_reason(self, reply: CannedReply) -> str:
        reason = super().expected_finish_reason(reply)
        return "tool_calls" if reason == "stop" and reply.tool_calls else reason

    # -- the URL ---------------------------------------------------------------------------

    def is_completion_path(self, path: str) -> bool:
        return _COMPLETION.search(path) is not None

    def completion_path_for(self, model: str, *, stream: bool) -> str:
        method = "streamGenerateContent" if stream else "generateContent"
        return f"/models/{quote(model, safe='-._~')}:{method}"

    def is_count_path(self, path: str) -> bool:
        return _COUNT.search(path) is not None

    def url_fields(self, path: str, query: str) -> dict[str, Any]:
        """The model and the streaming choice (``alt`` too, when the query names one)."""
        match = _COMPLETION.search(path) or _COUNT.search(path)
        if match is None:
            return {}
        fields: dict[str, Any] = {"model": unquote(match.group(1))}
        if match.re is _COMPLETION:
            fields["stream"] = match.group(2) == "streamGenerateContent"
        alt = dict(parse_qsl(query)).get("alt")
        if alt is not None:
            fields["alt"] = alt
        return fields

    def _framing_of(self, request: Mapping[str, Any] | None) -> StreamFramingName:
        if request is None or "stream" not in request:
            return self.stream_framing
        return "sse" if request.get("alt") == "sse" else "json-array"

    def stream_media_type(self, request: Mapping[str, Any]) -> str:
        if self._framing_of(request) == "sse":
            return "text/event-stream"
        return "application/json; charset=UTF-8"

    # -- rendering -------------------------------------------------------------------------

    def _finish(self, reply: CannedReply) -> Any:
        reason = self.wire_finish_reason(reply)
        return ENUM_NUMBERS.get(reason, reason) if self.quirks.int_enums else reason

    def _call(self, call: tuple[str, str, str]) -> dict[str, Any]:
        id_, name, args = call
        function: dict[str, Any] = {"name": name, "args": json.loads(args)}
        if self.quirks.call_ids:
            function["id"] = id_
        return {"functionCall": function}

    def _chunk(
        self,
        reply: CannedReply,
        parts: list[dict[str, Any]] | None,
        *,
        finish: bool = False,
        usage: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model"}, "index": 0}
        if parts is not None:
            candidate["content"]["parts"] = parts
        if finish:
            candidate["finishReason"] = self._finish(reply)
        body: dict[str, Any] = {"candidates": [candidate]}
        if usage is not None:
            body["usageMetadata"] = usage
        body["modelVersion"] = reply.model
        body["responseId"] = reply.id
        return body

    def _blocked(self, reply: CannedReply) -> dict[str, Any]:
        body: dict[str, Any] = {
            "promptFeedback": {
                "blockReason": 3 if self.quirks.int_enums else "PROHIBITED_CONTENT",
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}
                ],
            }
        }
        input_tokens, _ = reply.reported_tokens()
        if input_tokens is not None:
            body["usageMetadata"] = {
                "promptTokenCount": input_tokens,
                "totalTokenCount": input_tokens,
            }
        body["modelVersion"] = reply.model
        body["responseId"] = reply.id
        return body

    def render_completion(self, reply: CannedReply) -> bytes:
        if self.quirks.prompt_blocked:
            return (json.dumps(self._blocked(reply), indent=2) + "\n").encode()
        parts: list[dict[str, Any]] = []
        if reply.reasoning:
            parts.append({"text": reply.reasoning_text, "thought": True})
        if reply.text or not reply.tool_calls:
            parts.append({"text": reply.text})
        parts += [self._call(call) for call in reply.tool_calls]
        usage = _usage(reply, reply.output_tokens)
        body = self._chunk(reply, parts, finish=True, usage=usage)
        return (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode()

    def stream_frames(
        self,
        reply: CannedReply,
        faults: StreamFaults,
        *,
        request: Mapping[str, Any] | None = None,
    ) -> list[Frame]:
        framing = self._framing_of(request)
        quirks = self.quirks
        chunks: list[tuple[dict[str, Any] | bytes, int | None]] = []
        if quirks.prompt_blocked:
            error = faults.error_event_after is not None
            if not error and not faults.omit_terminal:
                chunks.append((self._blocked(reply), None))
            return self._frames(framing, chunks, error=error, close=True)
        produced = 0
        total = max(1, len(reply.reasoning) + len(reply.chunks) + len(reply.tool_calls))
        every = reply.usage == "cumulative" or (
            quirks.usage_every_chunk and reply.usage == "present"
        )

        def running_usage() -> dict[str, Any] | None:
            nonlocal produced
            if not every:
                return None
            produced += 1
            if reply.usage == "present":  # the prompt count, the output only at the end
                input_tokens = reply.input_tokens
                return {"promptTokenCount": input_tokens, "totalTokenCount": input_tokens}
            return _usage(reply, min(reply.output_tokens, reply.output_tokens * produced // total))

        def add(parts: list[dict[str, Any]], index: int | None = None) -> None:
            chunks.append((self._chunk(reply, parts, usage=running_usage()), index))

        if faults.empty_chunks:
            chunks.append((self._chunk(reply, [{"text": ""}]), None))
            chunks.append((self._chunk(reply, None), None))
            chunks.append((_KEEP_ALIVE, None))
        pieces = list(reply.reasoning)
        together = quirks.parts_together
        if together and pieces and reply.chunks:
            first = [{"text": piece, "thought": True} for piece in pieces]
            pieces = []
        else:
            first = []
        for piece in pieces:
            add([{"text": piece, "thought": True}])
        error_after = faults.error_event_after
        for i, text in enumerate(reply.chunks):
            if error_after == i:
                break
            if faults.empty_chunks and i:
                chunks.append((self._chunk(reply, [{"text": ""}]), None))
                chunks.append((_KEEP_ALIVE, None))
            add([*first, {"text": text}] if i == 0 else [{"text": text}], i)
        if error_after is not None:
            return self._frames(framing, chunks, error=True, close=True)
        calls = [self._call(call) for call in reply.tool_calls]
        if together and calls:
            add(calls)
        else:
            for call in calls:
                add([call])
        if faults.omit_terminal:
            return self._frames(framing, chunks, close=True)
        usage = None if reply.usage == "absent" else _usage(reply, reply.output_tokens)
        last = chunks[-1][0] if chunks else None
        if quirks.finish_on_last_content and isinstance(last, dict):
            candidate = last["candidates"][0]
            candidate["finishReason"] = self._finish(reply)
            if usage is not None:
                last["usageMetadata"] = usage
        else:
            chunks.append((self._chunk(reply, [{"text": ""}], finish=True, usage=usage), None))
        return self._frames(framing, chunks, close=True)

    def _frames(
        self,
        framing: StreamFramingName,
        chunks: list[tuple[dict[str, Any] | bytes, int | None]],
        *,
        error: bool = False,
        close: bool,
    ) -> list[Frame]:
        items = list(chunks)
        if error:
            items.append((_error_body(500, "An internal error has occurred.", "INTERNAL"), None))
        frames: list[Frame] = []
        if framing == "sse":
            for item, index in items:
                if isinstance(item, bytes):
                    frames.append(Frame(item, index))
                else:
                    frames.append(Frame(encode_event(dumps(item)), index))
            return frames
        first = True
        for item, index in items:
            if isinstance(item, bytes):
                frames.append(Frame(b"\n", index))  # whitespace between elements
                continue
            lead = "[" if first else ","
            first = False
            frames.append(Frame((lead + dumps(item)).encode(), index))
        if first:
            frames.append(Frame(b"["))
        if close:
            frames.append(Frame(b"]"))
        return frames

    def render_error(self, status: int, message: str, *, error_type: str | None = None) -> bytes:
        default = _STATUSES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        body = json.dumps(
            {"error": {"code": status, "message": message, "status": error_type or default}},
            indent=2,
        )
        return (body + "\n").encode()

    def render_stream_error(self, message: str, error_type: str | None = None) -> bytes:
        if self.stream_framing == "sse":
            return encode_event(dumps(_error_body(500, message, error_type or "INTERNAL")))
        return ("," + dumps(_error_body(500, message, error_type or "INTERNAL"))).encode()

    def render_models(self, ids: Sequence[str]) -> bytes:
        return _models_page(ids, None, embedder=True)

    def render_models_page(
        self, ids: Sequence[str], query: Mapping[str, str], *, page_size: int | None = None
    ) -> bytes:
        """The page ``GET /models`` serves: ``pageSize`` entries (default 50, at most
        1000 and ``page_size``) from the ``pageToken`` on, ``nextPageToken`` when more
        follow. The first page also lists an embedding model, which cannot generate."""
        ids = list(ids)
        size_text = query.get("pageSize", "")
        size = int(size_text) if size_text.isdigit() and int(size_text) > 0 else 50
        size = min(size, 1000, page_size or 1000)
        token = query.get("pageToken", "")
        start = int(token[5:]) if token.startswith("page-") and token[5:].isdigit() else 0
        end = start + size
        following = f"page-{end}" if end < len(ids) else None
        return _models_page(ids[start:end], following, embedder=start == 0)

    def render_token_count(self, body: Mapping[str, Any]) -> bytes:
        """``{"totalTokens": N}`` over the request's text (its ``generateContentRequest``
        when it wraps one)."""
        inner = body.get("generateContentRequest")
        source = inner if isinstance(inner, Mapping) else body
        text = self.prompt_text(source)
        tools = source.get("tools")
        if isinstance(tools, list):
            text += json.dumps(tools)
        count = stand_in_token_count(text)
        answer = {
            "totalTokens": count,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": count}],
        }
        return (json.dumps(answer, indent=2) + "\n").encode()

    def validate_count_request(self, body: Mapping[str, Any]) -> list[str]:
        """Either ``contents`` or a ``generateContentRequest`` naming its ``model``, and
        what ``generateContent`` refuses in them."""
        inner = body.get("generateContentRequest")
        if ("contents" in body) == (inner is not None):
            return ["* CountTokensRequest: exactly one of contents and generateContentRequest"]
        if inner is None:
            return validate_gemini_request(body)
        if not isinstance(inner, Mapping):
            return ["* CountTokensRequest.generate_content_request: must be an object"]
        model = inner.get("model")
        problems = validate_gemini_request(inner)
        if not isinstance(model, str) or not model.startswith("models/"):
            problems.append(
                f"* CountTokensRequest.generate_content_request.model: unexpected model name "
                f"format {model!r}"
            )
        return problems

    # -- reference readers -----------------------------------------------------------------

    def read_stream(self, body: bytes) -> StreamExpectation:
        """The first candidate's text, thoughts and function calls, the last usage, the
        first finish reason; clean when the body ended (an array: closed) after a finish or
        a blocked prompt, with no error chunk."""
        return read_gemini_stream(body)

    def read_completion(self, body: bytes) -> StreamExpectation | None:
        """A whole ``GenerateContentResponse``; ``None`` for any other body."""
        return read_gemini_completion(body)

    # -- reading requests ------------------------------------------------------------------

    def prompt_text(self, body: Mapping[str, Any]) -> str:
        parts = [_parts_text(body.get("systemInstruction"))]
        parts += [_parts_text(content) for content in _contents(body)]
        return "".join(parts)

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        for content in reversed(_contents(body)):
            if content.get("role", "user") == "user":
                return _parts_text(content)
        return ""

    def read_param(self, body: Mapping[str, Any], name: str) -> Any:
        """Request parameters in OpenAI's shape: ``system`` is ``systemInstruction``, the
        sampling ones live in ``generationConfig`` under Gemini's names, tools are
        ``functionDeclarations``, ``tool_choice`` is ``toolConfig``."""
        return read_gemini_param(body, name)

    def read_conversation(self, body: Mapping[str, Any]) -> NormalizedConversation:
        """``systemInstruction``, ``contents`` (``functionCall`` and ``functionResponse``
        parts, inline and file images), ``tools`` and ``toolConfig``, ``maxOutputTokens``
        and ``stopSequences``, in OpenAI's terms."""
        return read_gemini_conversation(body)

    def validate_request(self, body: Mapping[str, Any]) -> list[str]:
        """Roles ``user`` and ``model`` only, no empty turn or part, function calls and
        responses named with object arguments, as many responses as the calls they answer,
        ``allowedFunctionNames`` only with mode ``ANY``."""
        return validate_gemini_request(body)


def _contents(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    contents = body.get("contents")
    if not isinstance(contents, list):
        return []
    return [c for c in contents if isinstance(c, Mapping)]


def _parts_text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, Mapping) else None
    if not isinstance(parts, list):
        return ""
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part, Mapping)
        and isinstance(part.get("text"), str)
        and not part.get("thought")
    )


def _error_body(status: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": kind}}


def _usage(reply: CannedReply, output_tokens: int) -> dict[str, Any] | None:
    """``usageMetadata`` with ``output_tokens`` produced so far (``None``: not sent; the
    wire has no null usage); an output not reported is left out, as the API leaves out a
    blocked answer's."""
    if reply.usage in ("absent", "null"):
        return None
    input_tokens, reported = reply.reported_tokens()
    input_tokens = input_tokens or 0
    usage: dict[str, Any] = {"promptTokenCount": input_tokens}
    if reported is not None:
        output = min(output_tokens, reported)
        thoughts = min(reply.reasoning_tokens, output)
        usage["candidatesTokenCount"] = output - thoughts
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        usage["totalTokenCount"] = input_tokens + output
    else:
        usage["totalTokenCount"] = input_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": input_tokens}]
    if reply.cached_input_tokens and reply.usage != "zero":
        usage["cachedContentTokenCount"] = reply.cached_input_tokens
    return usage


def _models_page(ids: Sequence[str], following: str | None, *, embedder: bool) -> bytes:
    models: list[dict[str, Any]] = [
        {
            "name": f"models/{id_}",
            "version": "001",
            "displayName": id_.replace("-", " ").title(),
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        for id_ in ids
    ]
    if embedder:
        models.insert(
            len(models) // 2,
            {
                "name": "models/gemini-embedding-001",
                "version": "001",
                "displayName": "Gemini Embedding 001",
                "supportedGenerationMethods": ["embedContent", "countTextTokens"],
            },
        )
    body: dict[str, Any] = {"models": models}
    if following is not None:
        body["nextPageToken"] = following
    return (json.dumps(body, indent=2) + "\n").encode()
