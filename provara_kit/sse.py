"""Incremental Server-Sent Events decoder and encoder.

The decoder follows the WHATWG HTML "event stream interpretation" rules: LF, CR and
CRLF line ends (a CRLF split across two network chunks counts once), a leading UTF-8
BOM is dropped, ``:`` lines are comments, ``data`` lines are joined with ``"\\n"``,
``event`` sets the type (default ``"message"``), ``id`` persists across events (ignored
if it contains NUL), ``retry`` is honoured only when it is all ASCII digits, unknown
fields are ignored, and a blank line dispatches the event unless its data buffer is
empty. Bytes are decoded as UTF-8 with ``errors="replace"``; a character may be split
across chunks. At end of stream an incomplete event is discarded, as the spec says, but
:attr:`SSEDecoder.truncated` tells the caller the body was cut short.

How it stays fast: each chunk is decoded once and normalised to LF, then cut with
``str.split`` on ``"\\n\\ndata: "`` (any ``"\\n\\n"`` is a blank line, so the state is
clean after it), which yields the payloads of ``data: {...}`` events without per-line
work; everything else takes a general per-block path. The lines of an event are
interpreted when its terminating blank line arrives (or at :meth:`SSEDecoder.end`),
which is observably the same, since nothing is dispatched before that blank line.
"""

from __future__ import annotations

from codecs import utf_8_decode
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from provara_kit import json_codec

__all__ = [
    "SSEDecoder",
    "ServerSentEvent",
    "aiter_sse",
    "encode_comment",
    "encode_event",
]

_SEP = "\n\ndata: "  # blank line, then the next event's first line is a data line


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event. ``id`` is the last event ID in force (``None`` if none was
    ever set); ``retry`` is the reconnection time given in this event's own block."""

    data: str = ""
    event: str = "message"
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """Parse :attr:`data` as JSON."""
        return json_codec.loads(self.data)


class SSEDecoder:
    """Incremental event-stream parser: :meth:`feed` it network chunks, then call :meth:`end`.

    Attributes:
        truncated: set by :meth:`end`: ``True`` if the body stopped inside a line, or
            after field lines (comments do not count) that no blank line dispatched.
        comments: comment lines seen so far (keep-alives); a comment is counted once
            the blank line closing its block arrives, or at :meth:`end`.
        last_event_id: the last event ID string, ``None`` until an ``id`` field is
            dispatched; it persists across events.
    """

    __slots__ = (
        "_pending",
        "_skip_lf",
        "_started",
        "_tail",
        "_tail_data",
        "comments",
        "last_event_id",
        "truncated",
    )

    closed = False  # an SSE body has no end of its own: the end of the body ends it

    def __init__(self) -> None:
        self._pending = b""  # bytes of a UTF-8 character split across chunks
        self._started = False  # the first character of the stream was seen (BOM check)
        self._skip_lf = False  # the previous text ended with CR: drop a leading LF
        # Normalised text after the last blank line; it never contains "\n\n".
        self._tail: list[str] = []
        self._tail_data = False  # the tail is preceded by "data: ", which is not stored
        self.truncated = False
        self.comments = 0
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume a chunk of the body; return the events it completed, in order."""
        if self._pending:
            chunk = self._pending + chunk
        text, used = utf_8_decode(chunk, "replace", False)
        self._pending = chunk[used:] if used != len(chunk) else b""
        out: list[ServerSentEvent] = []
        if not text:
            return out
        if not self._started or self._skip_lf:
            text = self._edges(text)
            if not text:
                return out
        if "\r" in text:
            if text[-1] == "\r":
                self._skip_lf = True
            text = "\n".join(text.split("\r\n"))  # faster than .replace() here
            if "\r" in text:
                text = text.replace("\r", "\n")
        tail = self._tail
        sse = ServerSentEvent
        if tail or self._tail_data:
            # A blank line is either inside ``text`` or made of the tail's last LF and
            # the LF starting ``text`` (the tail itself never holds "\n\n").
            if "\n\n" not in text and (text[0] != "\n" or not tail or tail[-1][-1] != "\n"):
                tail.append(text)
                return out
            parts = text.split(_SEP)
            if len(parts) == 1:
                if self._tail_data:
                    self._tail_data = False
                    tail.insert(0, "data: ")
                tail.append(text)
                text = "".join(tail)
                tail.clear()
                self._general(text, out)
                return out
            # A blank line or "\n\ndata: " across the boundary ends up inside ``first``,
            # which _block handles.
            tail.append(parts[0])
            first = "".join(tail)
            tail.clear()
            if self._tail_data:
                self._tail_data = False
                if "\n" in first:
                    self._block("data: " + first, out)
                else:
                    out.append(sse(first, "message", self.last_event_id, None))
            elif first[:6] == "data: " and "\n" not in first:
                out.append(sse(first[6:], "message", self.last_event_id, None))
            else:
                self._block(first, out)
        else:
            if text[:6] != "data: ":
                self._general(text, out)
                return out
            # One whole "data: ...\n\n" event per chunk: the usual streaming case.
            if text[-2:] == "\n\n" and text.find("\n") == len(text) - 2:
                out.append(sse(text[6:-2], "message", self.last_event_id, None))
                return out
            parts = text.split(_SEP)
            if len(parts) == 1:
                self._general(text, out)
                return out
            first = parts[0]
            if "\n" in first:
                self._block(first, out)
            else:
                out.append(sse(first[6:], "message", self.last_event_id, None))
        # parts[1:] are what follows each "\n\ndata: "; all but the last are complete.
        last = parts.pop()
        if len(parts) > 1:
            lid = self.last_event_id
            for payload in parts[1:]:
                if "\n" in payload:
                    self._block("data: " + payload, out)
                    lid = self.last_event_id
                else:
                    out.append(sse(payload, "message", lid, None))
        if "\n" in last:
            self._general("data: " + last, out)
        else:
            self._tail_data = True
            if last:
                tail.append(last)
        return out

    def _edges(self, text: str) -> str:
        """Drop a BOM at stream start and an LF completing a CRLF split across chunks."""
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return text
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        return text

    def _general(self, text: str, out: list[ServerSentEvent]) -> None:
        """Dispatch every block of ``text`` that a blank line closes; keep the rest as tail.

        The tail must be empty on entry.
        """
        blocks = text.split("\n\n")
        last = blocks.pop()
        if last:
            self._tail.append(last)
        lid = self.last_event_id
        sse = ServerSentEvent
        for block in blocks:
            if block[:6] == "data: ":
                if "\n" not in block:
                    out.append(sse(block[6:], "message", lid, None))
                    continue
            elif block[:7] == "event: ":  # "event: x\ndata: y", the Anthropic shape
                head, sep, data = block.partition("\ndata: ")
                if sep and "\n" not in data and "\n" not in head:
                    out.append(sse(data, head[7:] or "message", lid, None))
                    continue
            self._block(block, out)
            lid = self.last_event_id

    def _block(self, block: str, out: list[ServerSentEvent]) -> None:
        """Interpret the lines of ``block``, which is followed by a blank line."""
        lid = self.last_event_id
        etype = ""
        data: list[str] | None = None
        retry: int | None = None
        comments = 0
        lines = block.split("\n")
        lines.append("")  # the blank line that closes the block
        for line in lines:
            if not line:  # blank line: dispatch
                if data is not None:
                    out.append(
                        ServerSentEvent(
                            data[0] if len(data) == 1 else "\n".join(data),
                            etype or "message",
                            lid,
                            retry,
                        )
                    )
                etype = ""
                data = None
                retry = None
                continue
            colon = line.find(":")
            if colon == 0:
                comments += 1
                continue
            if colon < 0:
                name = line
                value = ""
            else:
                name = line[:colon]
                start = colon + 2 if line[colon + 1 : colon + 2] == " " else colon + 1
                value = line[start:]
            if name == "data":
                if data is None:
                    data = [value]
                else:
                    data.append(value)
            elif name == "event":
                etype = value
            elif name == "id":
                if "\0" not in value:
                    lid = value
            elif name == "retry" and value.isascii() and value.isdigit():
                retry = int(value)
        self.last_event_id = lid
        if comments:
            self.comments += comments

    def end(self) -> list[ServerSentEvent]:
        """Signal the end of the body. Returns ``[]`` (an unfinished event is discarded)
        and sets :attr:`truncated` if one, or a partial line, was left over."""
        tail = self._tail
        if self._pending:
            tail.append(utf_8_decode(self._pending, "replace", True)[0])
        rest = "".join(tail)
        if self._tail_data:
            rest = "data: " + rest
        tail.clear()
        self._tail_data = False
        self._pending = b""
        self._skip_lf = False
        self._started = False
        truncated = False
        if rest:
            lines = rest.split("\n")
            if lines.pop():
                truncated = True
            for line in lines:
                if line:
                    if line[0] == ":":
                        self.comments += 1
                    else:
                        truncated = True
        self.truncated = truncated
        return []


async def aiter_sse(
    chunks: AsyncIterable[bytes], decoder: SSEDecoder | None = None
) -> AsyncIterator[ServerSentEvent]:
    """Yield events from an async byte stream as they complete, then call ``decoder.end()``.

    Pass your own ``decoder`` to inspect :attr:`SSEDecoder.truncated` afterwards.
    """
    dec = SSEDecoder() if decoder is None else decoder
    feed = dec.feed
    async for chunk in chunks:
        for event in feed(chunk):
            yield event
    for event in dec.end():
        yield event


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def encode_event(
    data: str, *, event: str | None = None, id: str | None = None, retry: int | None = None
) -> bytes:
    """Encode one event; each line of ``data`` (split on CRLF, CR or LF) becomes a
    ``data:`` line. Raises ``ValueError`` if ``event`` or ``id`` contains CR or LF, ``id``
    contains NUL (a decoder would ignore it) or ``retry`` is negative."""
    if event is None and id is None and retry is None and "\n" not in data and "\r" not in data:
        return f"data: {data}\n\n".encode()
    head = ""
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError("SSE event type must not contain CR or LF")
        head = f"event: {event}\n"
    if id is not None:
        if "\n" in id or "\r" in id or "\0" in id:
            raise ValueError("SSE id must not contain CR, LF or NUL")
        head += f"id: {id}\n"
    if retry is not None:
        if retry < 0:
            raise ValueError("SSE retry must be a non-negative integer")
        head += f"retry: {retry:d}\n"
    body = "".join([f"data: {line}\n" for line in _lines(data)])
    return f"{head}{body}\n".encode()


def encode_comment(text: str = "") -> bytes:
    """Encode a comment such as a keep-alive: ``b": text\\n\\n"``, one ``:`` per line."""
    body = "".join([f": {line}\n" if line else ":\n" for line in _lines(text)])
    return f"{body}\n".encode()
