"""Known-bad adapters for an AWS event-stream wire (Bedrock's ConverseStream): the mistakes
authors of Converse adapters make, each caught by a check."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from provara_kit.framings import EventStreamMessage, Framing
from provara_kit.providers.base import KEEP_ALIVE, StreamMapper
from provara_kit.providers.bedrock import STOP_REASONS, BedrockProvider
from provara_kit.streaming import StreamDone, UpstreamEvent
from provara_kit.types import ChatRequest
from tests.conformance.case import Case


class _Mapper:
    """The real mapper, each message passed through ``before`` first."""

    def __init__(self, inner: StreamMapper, provider: _Rewrites) -> None:
        self._inner = inner
        self._provider = provider
        self.done = False

    def feed(self, message: EventStreamMessage) -> list[UpstreamEvent]:
        rewritten = self._provider._message(message)
        if rewritten is not None:
            return rewritten
        events = self._inner.feed(message)
        self.done = self._inner.done
        if self._provider.stop_at_message_stop and message.event_type == "messageStop":
            self.done = True
            events.append(StreamDone())
        return events

    def end(self) -> list[UpstreamEvent]:
        return self._inner.end()


class _Rewrites(BedrockProvider):
    """Shared plumbing: ``_message`` may answer for a message instead of the real mapper."""

    stop_at_message_stop: ClassVar[bool] = False

    def _message(self, message: EventStreamMessage) -> list[UpstreamEvent] | None:
        return None

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        inner = super()._stream_mapper(request)
        assert inner is not None
        return _Mapper(inner, self)


class IgnoresExceptionEvents(_Rewrites):
    """Reads only ``:message-type: event`` messages and lets exception messages
    (``throttlingException``, ``modelStreamErrorException``) pass as nothing: the stream
    still aborts for want of an end, but the upstream's reason is lost."""

    def _message(self, message: EventStreamMessage) -> list[UpstreamEvent] | None:
        return [KEEP_ALIVE] if message.message_type != "event" else None


class EndsAtMessageStop(_Rewrites):
    """Takes ``messageStop`` for the end of the stream, as Anthropic's ``message_stop`` is:
    the ``metadata`` event after it, which carries the usage, is never read, so every
    count is an estimate."""

    stop_at_message_stop = True


class GuardrailIsStop(BedrockProvider):
    """Maps ``guardrail_intervened`` (and ``content_filtered``) to ``stop``, as if a
    guardrail's masked answer had finished normally."""

    stop_reasons: ClassVar[Mapping[str, str]] = {
        **STOP_REASONS,
        "guardrail_intervened": "stop",
        "content_filtered": "stop",
    }


class SignsTheWrongPayload(BedrockProvider):
    """Signs ``json.dumps(payload)`` with the default separators while the body on the wire
    is compact JSON: the signature covers other bytes, and AWS refuses every request."""

    def _finalize_request(self, request: httpx.Request) -> None:
        pretty = json.dumps(json.loads(request.content)).encode()
        signed = httpx.Request(request.method, request.url, headers=request.headers, content=pretty)
        super()._finalize_request(signed)
        for name in ("authorization", "x-amz-date", "x-amz-security-token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]


class _HandRolledDecoder:
    """An event-stream decoder written from the format's picture rather than a library."""

    check_crc: ClassVar[bool] = True
    strings_only: ClassVar[bool] = False

    def __init__(self) -> None:
        self._buffer = b""
        self.truncated = False

    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        self._buffer += chunk
        out: list[EventStreamMessage] = []
        while len(self._buffer) >= 12:
            total, headers_length = struct.unpack("!II", self._buffer[:8])
            if len(self._buffer) < total:
                break
            message, self._buffer = self._buffer[:total], self._buffer[total:]
            if self.check_crc and not _crc_ok(message):
                raise ValueError("event-stream CRC mismatch")
            headers = self._headers(message[12 : 12 + headers_length])
            out.append(EventStreamMessage(headers, message[12 + headers_length : total - 4]))
        return out

    def _headers(self, data: bytes) -> dict[str, Any]:
        headers: dict[str, Any] = {}
        while data:
            size = data[0]
            name = data[1 : 1 + size].decode()
            data = data[2 + size :]  # the type byte is assumed to be 7, a string
            length = struct.unpack("!H", data[:2])[0]
            headers[name] = data[2 : 2 + length].decode("utf-8", "replace")
            data = data[2 + length :]
        return headers

    def end(self) -> list[EventStreamMessage]:
        self.truncated = bool(self._buffer)
        return []


def _crc_ok(message: bytes) -> bool:
    import zlib

    prelude_crc, message_crc = struct.unpack("!I", message[8:12])[0], message[-4:]
    return (
        zlib.crc32(message[:8]) == prelude_crc
        and struct.pack("!I", zlib.crc32(message[:-4])) == message_crc
    )


class _NoChecksums(_HandRolledDecoder):
    check_crc = False


class SkipsChecksums(BedrockProvider):
    """Decodes event-stream messages by their lengths alone, never checking the prelude and
    message CRC32s: a message damaged on the way is read as if it were whole."""

    framing = Framing("event-stream", "application/vnd.amazon.eventstream", _NoChecksums)


class ReadsStringHeadersOnly(BedrockProvider):
    """Parses every header value as a string (all Bedrock's own are): a timestamp, integer,
    boolean or byte-array header, which the format allows and AWS adds, derails it."""

    framing = Framing("event-stream", "application/vnd.amazon.eventstream", _HandRolledDecoder)


CASES: tuple[Case, ...] = (
    Case(
        "stream-aborted",
        IgnoresExceptionEvents,
        r"upstream error event after the first content: the abort does not carry the "
        r"upstream's message 'The model stream failed.'",
    ),
    Case("status-200", EndsAtMessageStop, r"stream: usage \(\d+, \d+\) != upstream's"),
    Case(
        "outcome-fidelity",
        GuardrailIsStop,
        r"finish_reason 'stop' != 'content_filter'",
    ),
    Case("request-shape", SignsTheWrongPayload, r"the upstream did not accept the key as sent"),
    Case(
        "stream-aborted",
        SkipsChecksums,
        r"a message that fails the framing's integrity check \(message CRC32 of the first "
        r"content message flipped\): ended with a clean end, expected StreamAbortedError",
    ),
    Case("sse-framing", ReadsStringHeadersOnly, r"typed_headers"),
)
