"""Writing AWS event-stream messages, for scripted upstreams and tests.

A message is ``total length (4) | headers length (4) | prelude CRC32 (4) | headers |
payload | message CRC32 (4)``, big-endian, both CRCs over everything before them. A header
is ``name length (1) | name | type (1) | value``; strings and byte arrays carry a 2-byte
length. The decoder of the kit is botocore's; this writer is independent of it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from provara_kit.testing.dialects.base import Frame

__all__ = [
    "EVENT_STREAM_FRAMINGS",
    "BrokenChecksum",
    "EventStreamFraming",
    "Header",
    "Timestamp",
    "encode_message",
    "event",
    "exception",
]

_PRELUDE: Final = struct.Struct("!II")
_CRC: Final = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A timestamp header value (type 8): milliseconds since the epoch."""

    millis: int


Header: TypeAlias = "str | bytes | bool | int | Timestamp"
"""A header value: string (type 7), byte array (6), boolean (0/1), 32-bit integer (4),
timestamp (8)."""


def _header(name: str, value: Header) -> bytes:
    encoded = name.encode("utf-8")
    head = bytes([len(encoded)]) + encoded
    if isinstance(value, bool):
        return head + bytes([0 if value else 1])
    if isinstance(value, Timestamp):
        return head + bytes([8]) + struct.pack("!q", value.millis)
    if isinstance(value, int):
        return head + bytes([4]) + struct.pack("!i", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return head + bytes([7]) + struct.pack("!H", len(data)) + data
    return head + bytes([6]) + struct.pack("!H", len(value)) + value


def encode_message(
    headers: Mapping[str, Header] | Iterable[tuple[str, Header]], payload: bytes = b""
) -> bytes:
    """One event-stream message with ``headers`` (in order) and ``payload``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    encoded = b"".join(_header(name, value) for name, value in items)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(encoded))
    prelude += _CRC.pack(zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + encoded + payload
    return body + _CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)


def event(event_type: str, payload: bytes) -> bytes:
    """An ``event`` message carrying a JSON payload, headers in Bedrock's order."""
    return encode_message(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        payload,
    )


def exception(exception_type: str, payload: bytes) -> bytes:
    """An ``exception`` message (``throttlingException`` ...) with a JSON payload."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        payload,
    )


@dataclass(frozen=True, slots=True)
class EventStreamFraming:
    """One way of writing the same event-stream messages (all off: as rendered).

    * ``reverse_headers``: the headers in the opposite order (the format fixes none).
    * ``typed_headers``: extra headers of every other value type (timestamp, integer,
      boolean, byte array), as AWS services add ``:date`` and request ids.
    * ``no_content_type``: no ``:content-type`` header (the event type says enough).
    * ``merge``: two messages in one network read.
    """

    reverse_headers: bool = False
    typed_headers: bool = False
    no_content_type: bool = False
    merge: bool = False

    @property
    def label(self) -> str:
        """The settings that differ from the plain form."""
        on = [name for name in self.__dataclass_fields__ if getattr(self, name)]
        return ", ".join(on) or "plain"

    def apply(self, frames: Sequence[Frame]) -> list[Frame]:
        """``frames`` written in this variant; each frame keeps its content index."""
        out = [replace(frame, data=self._rewrite(frame.data)) for frame in frames]
        if not self.merge:
            return out
        merged: list[Frame] = []
        for i in range(0, len(out), 2):
            pair = out[i : i + 2]
            chunk = next((f.chunk for f in pair if f.chunk is not None), None)
            merged.append(replace(pair[0], data=b"".join(f.data for f in pair), chunk=chunk))
        return merged

    def _rewrite(self, data: bytes) -> bytes:
        if not (self.reverse_headers or self.typed_headers or self.no_content_type):
            return data
        from provara_kit.framings.event_stream import EVENT_STREAM

        decoder = EVENT_STREAM.decoder()
        out = b""
        for message in decoder.feed(data):
            headers: list[tuple[str, Header]] = [
                (name, value)
                for name, value in message.headers.items()
                if not (self.no_content_type and name == ":content-type")
            ]
            if self.typed_headers:
                headers += [
                    (":date", Timestamp(1_764_000_000_000)),
                    ("x-amzn-sequence", 7),
                    ("x-amzn-final", False),
                    ("x-amzn-trace", b"\x00\x01\xff"),
                ]
            if self.reverse_headers:
                headers.reverse()
            out += encode_message(headers, message.payload)
        return out


EVENT_STREAM_FRAMINGS: Final[tuple[EventStreamFraming, ...]] = (
    EventStreamFraming(reverse_headers=True),
    EventStreamFraming(typed_headers=True),
    EventStreamFraming(no_content_type=True),
    EventStreamFraming(merge=True),
    EventStreamFraming(reverse_headers=True, typed_headers=True, no_content_type=True, merge=True),
)
"""One variant per freedom of the format, and all of them at once."""


@dataclass(frozen=True, slots=True)
class BrokenChecksum:
    """The first content message with one bit of its message CRC32 flipped: the payload is
    intact, so only a decoder that checks the CRC sees the damage."""

    @property
    def label(self) -> str:
        return "message CRC32 of the first content message flipped"

    def apply(self, frames: Sequence[Frame]) -> list[Frame]:
        out = list(frames)
        index = next((i for i, f in enumerate(out) if f.chunk is not None), len(out) - 1)
        if index < 0:
            return out
        data = bytearray(out[index].data)
        data[-1] ^= 0x01
        out[index] = replace(out[index], data=bytes(data))
        return out
