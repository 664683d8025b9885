"""AWS event-stream (``application/vnd.amazon.eventstream``): binary frames with CRC32 checks.

Each message is a 12-byte prelude (total length, headers length, the prelude's CRC32),
typed headers, a payload and the whole message's CRC32. Amazon Bedrock's ConverseStream
sends one JSON event per message: ``:message-type`` is ``event`` (``:event-type`` names
it), ``exception`` (``:exception-type`` names it) or ``error`` (``:error-code`` and
``:error-message`` headers).

The bytes are decoded by botocore's ``botocore.eventstream.EventStreamBuffer``, which checks
both CRCs; botocore is the optional ``bedrock`` extra, imported when a decoder is made, so
importing the kit needs none. A frame is an :class:`EventStreamMessage`. A CRC mismatch, a
bad prelude or a header the format does not know raise ``ValueError``; a body that stops
inside a message is ``truncated``.
"""

from __future__ import annotations

import importlib
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from provara_kit.errors import ConfigurationError
from provara_kit.framings.base import Framing

__all__ = [
    "EVENT_STREAM",
    "INSTALL_HINT",
    "EventStreamDecoder",
    "EventStreamMessage",
    "HeaderValue",
    "require_botocore",
]

INSTALL_HINT: Final = 'pip install "provara-kit[bedrock]"'
PRELUDE_LENGTH: Final = 12
MESSAGE_OVERHEAD: Final = 16  # the prelude and the message CRC
_SLICE: Final = 16 * 1024
_MODULES: Final = (
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.credentials",
    "botocore.eventstream",
)

HeaderValue: TypeAlias = "bool | int | str | bytes"
"""A header value as botocore decodes it: booleans, integers (byte to long, and
timestamps in milliseconds), UTF-8 strings, byte arrays and UUIDs (16 bytes)."""


def require_botocore(what: str = "AWS event-stream decoding") -> Any:
    """The ``botocore`` package, or a :class:`ConfigurationError` saying how to install it."""
    try:
        for module in _MODULES:
            importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"{what} needs botocore, which is not installed: {INSTALL_HINT}"
        ) from None
    return sys.modules["botocore"]


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One event-stream message: its headers (by name) and its payload bytes."""

    headers: Mapping[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str | None:
        """A string header's value (``None`` when absent or not a string)."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str | None:
        """``event``, ``exception`` or ``error``."""
        return self.header(":message-type")

    @property
    def event_type(self) -> str | None:
        """The event's name (``contentBlockDelta`` ...) for an ``event`` message."""
        return self.header(":event-type")

    @property
    def exception_type(self) -> str | None:
        """The exception's name (``throttlingException`` ...) for an ``exception`` message."""
        return self.header(":exception-type")


class EventStreamDecoder:
    """Incremental event-stream decoder (a :class:`~provara_kit.framings.FrameDecoder`)."""

    __slots__ = ("_buffer", "_errors", "_unread", "truncated")

    closed = False  # only the end of the body ends an event stream

    def __init__(self) -> None:
        botocore = require_botocore()
        self._buffer = botocore.eventstream.EventStreamBuffer()
        self._errors: tuple[type[Exception], ...] = (
            botocore.eventstream.ParserError,
            struct.error,
            KeyError,  # a header value type the format does not define
            IndexError,
            UnicodeDecodeError,
        )
        self._unread = 0  # bytes fed that no whole message has used yet
        self.truncated = False

    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        """Consume one network read; return the messages it completed."""
        messages: list[EventStreamMessage] = []
        # botocore copies the rest of its buffer after each message: fed a large read
        # whole, the cost grows with its square, so it gets slices.
        for start in range(0, len(chunk), _SLICE):
            messages += self._decode(chunk[start : start + _SLICE])
        return messages

    def _decode(self, chunk: bytes) -> list[EventStreamMessage]:
        self._buffer.add_data(chunk)
        self._unread += len(chunk)
        messages: list[EventStreamMessage] = []
        try:
            for message in self._buffer:
                prelude = message.prelude
                if prelude.total_length < MESSAGE_OVERHEAD + prelude.headers_length:
                    raise ValueError(
                        f"event-stream prelude: total length {prelude.total_length} cannot "
                        f"hold {prelude.headers_length} bytes of headers"
                    )
                self._unread -= prelude.total_length
                # botocore builds a fresh dict and bytes slice per message: no copies needed
                messages.append(EventStreamMessage(message.headers, message.payload))
        except self._errors as exc:
            raise ValueError(f"corrupt event-stream message: {type(exc).__name__}: {exc}") from None
        return messages

    def end(self) -> list[EventStreamMessage]:
        """The end of the body: ``truncated`` when it stopped inside a message."""
        self.truncated = self._unread > 0
        return []


EVENT_STREAM: Framing[EventStreamMessage] = Framing(
    "event-stream", "application/vnd.amazon.eventstream", EventStreamDecoder
)
"""AWS event-stream, as Amazon Bedrock's ConverseStream sends it."""
