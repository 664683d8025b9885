"""The interface of a wire dialect: how one provider API renders replies, streams and errors."""

from __future__ import annotations

import enum
import hmac
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import parse_qsl

from provara_kit.sse import ServerSentEvent, SSEDecoder
from provara_kit.testing.conversation import NormalizedConversation, read_openai_conversation
from provara_kit.testing.script import CannedReply, StreamFaults, UsageMode

if TYPE_CHECKING:
    from provara_kit.testing.framing import StreamFraming

__all__ = [
    "MISSING",
    "Frame",
    "Missing",
    "StreamExpectation",
    "WireDialect",
    "as_count",
    "decode_body",
    "dumps",
    "stand_in_token_count",
]


class Missing(enum.Enum):
    """The type of :data:`MISSING`."""

    MISSING = "missing"

    def __repr__(self) -> str:
        return "<missing>"


MISSING = Missing.MISSING
"""What :meth:`WireDialect.read_param` returns for a parameter the body does not carry."""


def dumps(data: Any) -> str:
    """Compact JSON, non-ASCII kept as is (as the real APIs send it)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE event or comment of a rendered stream.

    ``chunk`` is the index in :attr:`CannedReply.chunks` of the text this frame carries, so
    faults can be placed relative to content ("stall before chunk 2").
    """

    data: bytes
    chunk: int | None = None


@dataclass(frozen=True, slots=True)
class StreamExpectation:
    """What a response body says, read by the dialect's own reference reader.

    ``clean`` is False when the body carries an error event or never reaches the wire's
    end; the token counts are what the upstream bills (``None``: not reported);
    ``finish_reason`` is in the normalized (OpenAI) vocabulary; ``tool_calls`` are
    ``(id, name, arguments JSON text)``; ``model`` and ``id`` are what the body names
    (``None``: not read).
    """

    clean: bool
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    reasoning: str = ""
    tool_calls: tuple[tuple[str | None, str | None, str], ...] = ()
    model: str | None = None
    id: str | None = None


class WireDialect(ABC):
    """How one wire (request and response format) looks on the network.

    Subclasses implement the ``render_*`` methods and :meth:`stream_frames`; the request
    readers below understand both OpenAI- and Anthropic-shaped messages.
    """

    name: ClassVar[str]
    completion_path: ClassVar[str]
    models_path: ClassVar[str] = "/models"
    invalid_api_key_message: ClassVar[str] = "invalid API key"
    finish_reasons: ClassVar[Mapping[str, str]] = {
        "stop": "stop",
        "length": "length",
        "tool_calls": "tool_calls",
        "content_filter": "content_filter",
    }
    """Every finish reason the wire sends, and the normalized (OpenAI) reason it means."""
    usage_modes: ClassVar[tuple[UsageMode, ...]] = (
        "present",
        "null",
        "absent",
        "partial",
        "zero",
        "cumulative",
    )
    """The ways this wire reports usage (:data:`~provara_kit.testing.UsageMode`)."""
    carries_reasoning: ClassVar[bool] = False
    """Whether the wire streams the model's reasoning (``CannedReply.reasoning``)."""
    reports_cached_tokens: ClassVar[bool] = False
    """Whether the wire reports cached input tokens as a component of the usage."""
    stream_error_text: ClassVar[str | None] = None
    """The message of the error event :meth:`stream_frames` sends for
    ``StreamFaults.error_event_after``: an abort must carry it (``None``: not declared)."""
    names_model: ClassVar[bool] = True
    """Whether an answer names the model that served it (Bedrock's Converse does not: the
    model is in the request's URL only)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @abstractmethod
    def render_completion(self, reply: CannedReply) -> bytes:
        """The JSON body of a non-streamed answer."""

    @abstractmethod
    def stream_frames(
        self,
        reply: CannedReply,
        faults: StreamFaults,
        *,
        request: Mapping[str, Any] | None = None,
    ) -> list[Frame]:
        """The streamed answer, one frame per SSE event or comment.

        ``request`` is the parsed request body (``None``: as a typical adapter sends it).
        """

    def render_stream(
        self,
        reply: CannedReply,
        faults: StreamFaults | None = None,
        *,
        request: Mapping[str, Any] | None = None,
    ) -> list[bytes]:
        """The streamed body as a list of wire frames, terminal marker included unless
        ``faults.omit_terminal``."""
        frames = self.stream_frames(reply, faults or StreamFaults(), request=request)
        return [frame.data for frame in frames]

    @abstractmethod
    def render_error(self, status: int, message: str, *, error_type: str | None = None) -> bytes:
        """The JSON body of an error response with ``status``."""

    @abstractmethod
    def render_stream_error(self, message: str, error_type: str | None = None) -> bytes:
        """The wire's error event inside a 200 stream."""

    @abstractmethod
    def render_models(self, ids: Sequence[str]) -> bytes:
        """The JSON body of the model list."""

    def render_models_page(
        self, ids: Sequence[str], query: Mapping[str, str], *, page_size: int | None = None
    ) -> bytes:
        """The body answering ``GET models_path?query``. A wire that pages its list serves
        the page the query asks for, of at most ``page_size`` entries (a server's own cap);
        by default the whole list, :meth:`render_models`."""
        return self.render_models(ids)

    def model_list_forms(self) -> dict[str, WireDialect]:
        """The forms the model list takes at the providers that speak this wire, labelled
        (each one a dialect whose :meth:`render_models` writes it); by default the wire's."""
        return {"as specified": self}

    def read_stream(self, body: bytes) -> StreamExpectation | None:
        """What a real stream body holds, independently of any adapter (``None``: this
        dialect has no reference reader, and replays check the stream rules only)."""
        return None

    def read_completion(self, body: bytes) -> StreamExpectation | None:
        """What a real non-streamed answer holds, independently of any adapter (``None``:
        no reference reader)."""
        return None

    @property
    def has_terminal_marker(self) -> bool:
        """Whether a stream ends with a marker of its own (``[DONE]``, ``message_stop``)
        rather than with the end of the body."""
        return True

    def wire_finish_reason(self, reply: CannedReply) -> str:
        """The finish reason as this wire sends it for ``reply``."""
        return reply.wire_finish_reason or reply.finish_reason

    def expected_finish_reason(self, reply: CannedReply) -> str:
        """The normalized finish reason an adapter must report for ``reply``."""
        wire = self.wire_finish_reason(reply)
        return self.finish_reasons.get(wire, wire)

    def wire_variants(self) -> dict[str, WireDialect]:
        """The forms this wire takes at the providers that speak it, labelled (each one a
        dialect); by default the wire alone."""
        return {"as specified": self}

    def framings(self) -> tuple[StreamFraming, ...]:
        """The forms the wire's stream framing allows for the same events."""
        from provara_kit.testing.framing import SSE_FRAMINGS

        return SSE_FRAMINGS

    def is_stream_request(self, body: Mapping[str, Any]) -> bool:
        """Whether the request asks for a streamed answer (``body`` is the request's
        :attr:`~provara_kit.testing.RecordedRequest.view`, URL fields included)."""
        return body.get("stream") is True

    # -- the URL and the transport ---------------------------------------------------------

    def is_completion_path(self, path: str) -> bool:
        """Whether ``path`` (no query, no trailing slash) is the completion endpoint."""
        return path.endswith(self.completion_path)

    def completion_path_for(self, model: str, *, stream: bool) -> str:
        """The path (under the base URL, no query) a request for ``model`` goes to:
        :attr:`completion_path`, unless the wire puts the model or the streaming choice in
        the URL (Gemini's ``/models/{model}:streamGenerateContent``)."""
        return self.completion_path

    def is_models_path(self, path: str) -> bool:
        """Whether ``path`` (no query, no trailing slash) is the model listing."""
        return path.endswith(self.models_path)

    def is_count_path(self, path: str) -> bool:
        """Whether ``path`` (no query, no trailing slash) is the wire's token-count endpoint
        (Anthropic's ``/messages/count_tokens``, Gemini's ``:countTokens``). None by
        default; a dialect that has one also renders it (:meth:`render_token_count`)."""
        return False

    def render_token_count(self, body: Mapping[str, Any]) -> bytes:
        """The body answering a token-count request ``body`` (its view): the wire's count
        of it, by :func:`stand_in_token_count` over what the request holds."""
        raise NotImplementedError(f"the {self.name} wire has no token-count endpoint")

    def validate_count_request(self, body: Mapping[str, Any]) -> list[str]:
        """What the real API would answer 400 to in a token-count request (``[]``: nothing,
        the default)."""
        return []

    def url_fields(self, path: str, query: str) -> dict[str, Any]:
        """Request parameters the wire carries in the URL, under the names this dialect's
        readers look for (Gemini: the model and the streaming choice). By default none."""
        return {}

    def stream_media_type(self, request: Mapping[str, Any]) -> str:
        """The content type of a streamed answer to ``request`` (its view)."""
        return "text/event-stream; charset=utf-8"

    def scripted_key(self, key: str) -> str:
        """The form the suite's fake key takes on this wire when an adapter is built for a
        scripted run: the key itself by default. A wire that signs requests makes it the
        credentials to sign with (Bedrock: an access key pair whose secret is ``key``), so
        the checks see a real signature; :meth:`key_matches` takes ``key`` back."""
        return key

    def corruption(self) -> StreamFraming | None:
        """A rewrite of a rendered stream that breaks the framing's own integrity check (an
        event-stream message whose CRC32 does not match), which an adapter must refuse as
        an aborted stream; ``None`` where the framing has no such check (SSE, NDJSON)."""
        return None

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
        """Whether a request presents the API key ``expected``. By default the key travels
        as ``Authorization: Bearer``, ``x-api-key``, ``api-key``, ``x-goog-api-key`` or a
        ``key`` query parameter; a wire that signs requests (AWS SigV4) checks the
        signature instead. ``headers`` are lower-cased."""
        presented = (
            headers.get("x-api-key") or headers.get("api-key") or headers.get("x-goog-api-key")
        )
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            presented = token.strip()
        if not presented and "key=" in query:
            presented = dict(parse_qsl(query)).get("key")
        return hmac.compare_digest((presented or "").encode(), expected.encode())

    # -- reading requests ------------------------------------------------------------------

    def prompt_text(self, body: Mapping[str, Any]) -> str:
        """The text of every message (and the top-level ``system``), joined."""
        parts = [_text(body.get("system"))]
        parts.extend(_text(m.get("content")) for m in _messages(body))
        return "".join(parts)

    def last_user_text(self, body: Mapping[str, Any]) -> str:
        """The text of the last user message (``""`` if there is none)."""
        for message in reversed(_messages(body)):
            if message.get("role") == "user":
                return _text(message.get("content"))
        return ""

    auth_header: ClassVar[str] = "authorization"
    """The header that carries the API key (``authorization`` carries ``Bearer <key>``)."""
    auth_scheme: ClassVar[str] = "Bearer"
    """The scheme an ``authorization`` header names (``AWS4-HMAC-SHA256`` for SigV4)."""

    def version_headers(self) -> Mapping[str, str]:
        """Headers every request on this wire carries besides auth (an API version)."""
        return {}

    def read_param(self, body: Mapping[str, Any], name: str) -> Any:
        """The value of the OpenAI request parameter ``name`` read back from a wire request
        body, in OpenAI's shape, or :data:`MISSING`.

        ``system`` is the system (and developer) text. By default a parameter travels
        under its own name, as on OpenAI's wire; a dialect that renames or reshapes one
        (``stop`` as ``stop_sequences``) overrides this.
        """
        if name == "system":
            texts = [
                _text(m.get("content"))
                for m in _messages(body)
                if m.get("role") in ("system", "developer")
            ]
            return "\n\n".join(texts) if texts else MISSING
        return body.get(name, MISSING)

    # -- whole conversations ---------------------------------------------------------------

    conversation_limits: ClassVar[Mapping[str, str]] = {}
    """What the wire cannot express by design, by a name from
    :data:`~provara_kit.testing.conversation.LIMITS`, each with the reason (data the
    ``request-conversation`` check reads, so a limit is never a finding)."""
    requires_max_tokens: ClassVar[bool] = False
    """Whether every request must name an output limit (an adapter sends its default)."""

    def read_conversation(self, body: Mapping[str, Any]) -> NormalizedConversation:
        """The conversation a wire request body holds, in OpenAI's terms: the reference
        the ``request-conversation`` check holds what an adapter sent to. By default the
        body is read as OpenAI's Chat Completions."""
        return read_openai_conversation(body)

    def validate_request(self, body: Mapping[str, Any]) -> list[str]:
        """What the real API would answer 400 to in a completion request ``body``, in its
        words (``[]``: nothing, the default). The scripted upstream answers so."""
        return []


_WORDS: Final = re.compile(r"\w+|[^\w\s]")


def stand_in_token_count(text: str) -> int:
    """A scripted upstream's token count of ``text``: words and punctuation marks, one
    each. Deterministic and unlike ``ceil(chars / 4)``, so a test tells which was used."""
    return len(_WORDS.findall(text))


def decode_body(body: bytes) -> tuple[list[ServerSentEvent], bool]:
    """All events of a whole SSE body, and whether it ended inside an event."""
    decoder = SSEDecoder()
    events = decoder.feed(body)
    events += decoder.end()
    return events, decoder.truncated


def as_count(value: Any) -> int | None:
    """An upstream token count, or ``None`` when it is not a plain integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, Mapping)]


def _text(content: Any) -> str:
    """A string content, or the text parts/blocks of a list content."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        )
    return ""
