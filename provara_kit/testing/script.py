"""What a test double plays: a canned reply, the faults to inject, and the per-request queue.

:class:`CannedReply` is what the "model" says; :class:`StreamFaults` breaks the stream that
carries it; :class:`ErrorFault` answers with an error status instead. :class:`Script` holds the
defaults plus one-shot steps queued for the next requests; the scripted upstream and the
scripted provider both play one.
"""

from __future__ import annotations

import copy
import enum
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, TypeVar

if TYPE_CHECKING:
    from provara_kit.testing.framing import StreamFraming

__all__ = [
    "UNSET",
    "CannedReply",
    "ErrorBody",
    "ErrorFault",
    "Script",
    "ScriptStep",
    "StreamFaults",
    "ToolCallScript",
    "Unset",
    "UsageMode",
    "echo_reply",
    "split_text",
]

UsageMode: TypeAlias = Literal["present", "null", "absent", "partial", "zero", "cumulative"]
"""How usage is reported: ``present`` (both counts, once at the end), ``null``
(``"usage": null``), ``absent`` (no usage field), ``partial`` (input tokens only), ``zero``
(real zeros), ``cumulative`` (reported again and again as the answer grows, each report
replacing the last: the final one is the count)."""

ErrorBody: TypeAlias = Literal["json", "html", "text", "empty"]
"""The body an error status comes with: the wire's JSON error, an HTML page (a proxy or
load balancer answering), plain text, or nothing at all."""

ToolCallScript: TypeAlias = tuple[str, str, str]
"""One tool call the model makes: ``(id, name, arguments as JSON text)``."""

_USAGE_MODES = frozenset({"present", "null", "absent", "partial", "zero", "cumulative"})
_ERROR_BODIES = frozenset({"json", "html", "text", "empty"})


@dataclass(frozen=True, slots=True)
class CannedReply:
    """The answer a scripted model gives, in the pieces it streams.

    ``finish_reason`` uses OpenAI's vocabulary (``stop``, ``length``, ``tool_calls``,
    ``content_filter``); a dialect maps it to its own (Anthropic: ``end_turn`` ...), unless
    ``wire_finish_reason`` names the exact value to send (``stop_sequence``, ``pause_turn``).
    ``usage`` decides how the token counts are reported (see :data:`UsageMode`);
    ``cached_input_tokens`` of the input and ``reasoning_tokens`` of the output are reported
    as the wire reports those components (the totals stay what is billed).
    ``reasoning`` is streamed before the text, where the wire carries reasoning;
    ``argument_pieces`` cuts each tool call's arguments into that many stream fragments.
    """

    chunks: tuple[str, ...]
    finish_reason: str = "stop"
    input_tokens: int = 12
    output_tokens: int = 5
    model: str = "scripted-model"
    id: str = "resp_scripted"
    usage: UsageMode = "present"
    tool_calls: tuple[ToolCallScript, ...] = ()
    reasoning: tuple[str, ...] = ()
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    argument_pieces: int = 1
    wire_finish_reason: str | None = None

    def __post_init__(self) -> None:
        chunks: Any = self.chunks
        if isinstance(chunks, str):
            chunks = (chunks,)
        object.__setattr__(self, "chunks", tuple(chunks))
        object.__setattr__(self, "tool_calls", tuple(tuple(c) for c in self.tool_calls))
        reasoning: Any = self.reasoning
        object.__setattr__(
            self, "reasoning", (reasoning,) if isinstance(reasoning, str) else tuple(reasoning)
        )
        if not 0 <= self.cached_input_tokens <= self.input_tokens:
            raise ValueError("cached_input_tokens must be between 0 and input_tokens")
        if not 0 <= self.reasoning_tokens <= self.output_tokens:
            raise ValueError("reasoning_tokens must be between 0 and output_tokens")
        if self.argument_pieces < 1:
            raise ValueError(f"argument_pieces must be >= 1, got {self.argument_pieces}")
        if self.usage not in _USAGE_MODES:
            raise ValueError(f"usage must be one of {sorted(_USAGE_MODES)}, got {self.usage!r}")
        if self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError("token counts must not be negative")
        for call in self.tool_calls:
            if len(call) != 3:
                raise ValueError(f"a tool call is (id, name, arguments JSON), got {call!r}")
            try:
                json.loads(call[2])
            except ValueError:
                raise ValueError(
                    f"tool call {call[0]!r} arguments are not JSON: {call[2]!r}"
                ) from None

    @property
    def text(self) -> str:
        """The whole answer: the chunks joined."""
        return "".join(self.chunks)

    @property
    def reasoning_text(self) -> str:
        """The whole reasoning: its pieces joined."""
        return "".join(self.reasoning)

    def argument_fragments(self, arguments: str) -> list[str]:
        """``arguments`` cut into :attr:`argument_pieces` non-empty fragments (fewer when
        the text is shorter), as a streamed tool call carries them."""
        if not arguments:
            return []
        size = -(-len(arguments) // min(self.argument_pieces, len(arguments)))
        return [arguments[i : i + size] for i in range(0, len(arguments), size)]

    def reported_tokens(self) -> tuple[int | None, int | None]:
        """``(input, output)`` as the upstream reports them; ``None`` where it does not."""
        if self.usage in ("present", "cumulative"):
            return self.input_tokens, self.output_tokens
        if self.usage == "partial":
            return self.input_tokens, None
        if self.usage == "zero":
            return 0, 0
        return None, None


@dataclass(frozen=True, slots=True)
class StreamFaults:
    """Ways to break a stream; all off by default.

    * ``empty_chunks``: an empty content delta first and between every content chunk, an
      extra role-only chunk (OpenAI) or ping (Anthropic), and ``: keep-alive`` comments.
      None of it may reach the consumer as content.
    * ``omit_terminal``: the stream never finishes. OpenAI: the body ends after the content
      (no finish chunk, usage chunk or ``[DONE]``); Anthropic: no ``message_stop``.
    * ``error_event_after``: after that many content chunks, the wire's in-stream error
      event, then the body ends.
    * ``abort_after_bytes``: the body is cut after that many bytes (nothing is cut from a
      shorter body); ``abort_with_error`` makes the cut a dropped connection
      (``httpx.RemoteProtocolError``), otherwise a clean end of file.
    * ``stall_after_chunks``: sleep ``stall_seconds`` before sending the content chunk with
      that index (with fewer chunks: before what follows the last one).
    * ``split_bytes``: deliver the body in pieces of that many bytes, to exercise decoders.
    * ``hold_open``: after the whole body (terminal marker included), keep the connection
      open for ``stall_seconds`` before it closes, as servers with keep-alive may: the
      stream must end at the marker, not when the connection closes.
    * ``framing``: write the stream in another form its framing allows (SSE: CRLF, no space
      after the colon, multi-line data ...; NDJSON: CRLF, blank lines ...; see
      :mod:`provara_kit.testing.framing`).
    """

    empty_chunks: bool = False
    omit_terminal: bool = False
    error_event_after: int | None = None
    abort_after_bytes: int | None = None
    abort_with_error: bool = True
    stall_after_chunks: int | None = None
    stall_seconds: float = 1.0
    split_bytes: int | None = None
    hold_open: bool = False
    framing: StreamFraming | None = None

    def __post_init__(self) -> None:
        for name in ("error_event_after", "abort_after_bytes", "stall_after_chunks"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.split_bytes is not None and self.split_bytes < 1:
            raise ValueError(f"split_bytes must be >= 1, got {self.split_bytes}")
        if self.stall_seconds < 0:
            raise ValueError(f"stall_seconds must be >= 0, got {self.stall_seconds}")


@dataclass(frozen=True, slots=True)
class ErrorFault:
    """Answer with ``status`` and the wire's error body carrying ``message``.

    ``body`` picks the body's form (see :data:`ErrorBody`); ``retry_after`` is sent as the
    ``Retry-After`` header (seconds, or an HTTP date string); ``error_type`` overrides the
    wire's usual error type for the status. ``wire_status`` is the status line sent with
    that body when it is not ``status``: ``200`` plays a provider that answers an error with
    a success status and the error in the body (OpenRouter, Anthropic behind some proxies).
    """

    status: int
    message: str = "scripted upstream error"
    retry_after: float | str | None = None
    error_type: str | None = None
    body: ErrorBody = "json"
    wire_status: int | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"an error status is 400-599, got {self.status}")
        if self.wire_status is not None and not 200 <= self.wire_status <= 599:
            raise ValueError(f"wire_status is 200-599, got {self.wire_status}")
        if self.body not in _ERROR_BODIES:
            raise ValueError(f"body must be one of {sorted(_ERROR_BODIES)}, got {self.body!r}")

    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` header value, or ``None``."""
        if self.retry_after is None or isinstance(self.retry_after, str):
            return self.retry_after
        seconds = float(self.retry_after)
        return str(int(seconds)) if seconds.is_integer() else str(seconds)


_WORDS = re.compile(r"\s*\S+\s*|\s+")


def split_text(text: str, parts: int = 3) -> tuple[str, ...]:
    """``text`` in at most ``parts`` stream pieces, cut between words; ``()`` for ``""``."""
    words = _WORDS.findall(text)
    if not words:
        return ()
    parts = max(1, min(parts, len(words)))
    size, extra = divmod(len(words), parts)
    pieces: list[str] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append("".join(words[start:end]))
        start = end
    return tuple(pieces)


def _ceil4(text: str) -> int:
    return -(-len(text) // 4)


def echo_reply(prompt_text: str, user_text: str, *, model: str) -> CannedReply:
    """The "local echo" reply: ``user_text`` back in a few chunks.

    Token counts are ``ceil(chars / 4)``: input over ``prompt_text`` (the text of every
    message), output over the echoed text.
    """
    return CannedReply(
        chunks=split_text(user_text),
        input_tokens=_ceil4(prompt_text),
        output_tokens=_ceil4(user_text),
        model=model,
        id="resp_echo",
    )


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = enum.auto()


UNSET = Unset.UNSET
"""Marks an argument that was not given (``None`` is meaningful: "echo", "no error")."""

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class ScriptStep(Generic[E]):
    """What one request gets: a reply (``None`` = echo the request), faults, or an error."""

    reply: CannedReply | None
    faults: StreamFaults = field(default_factory=StreamFaults)
    error: E | None = None


class Script(Generic[E]):
    """Default behaviour plus a queue of one-shot steps, consumed in order."""

    def __init__(self, default: ScriptStep[E]) -> None:
        self.default = default
        self._queue: deque[ScriptStep[E]] = deque()

    def queue(
        self,
        *,
        reply: CannedReply | Unset | None = UNSET,
        faults: StreamFaults | Unset = UNSET,
        error: E | Unset | None = UNSET,
    ) -> None:
        """Push a step for the next request; what is not given comes from the default."""
        default = self.default
        self._queue.append(
            ScriptStep(
                reply=default.reply if reply is UNSET else reply,
                faults=default.faults if faults is UNSET else faults,
                error=default.error if error is UNSET else error,
            )
        )

    def next(self) -> ScriptStep[E]:
        """The step for the request arriving now."""
        step = self._queue.popleft() if self._queue else self.default
        if step.error is not None:
            # A fresh exception each time, so tracebacks do not pile up on one instance.
            step = ScriptStep(step.reply, step.faults, copy.copy(step.error))
        return step

    @property
    def pending(self) -> int:
        """How many queued steps have not been used yet."""
        return len(self._queue)
