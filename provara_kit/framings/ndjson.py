"""Newline-delimited JSON (NDJSON, JSON Lines): one JSON value per line.

Lines end with LF or CRLF; blank lines (a server's keep-alive) carry nothing. A frame is
the text of one line. The last line may lack its line end when it is a whole JSON value;
a body that stops inside a line is truncated.
"""

from __future__ import annotations

from codecs import utf_8_decode

from provara_kit import json_codec
from provara_kit.framings.base import Framing

__all__ = ["NDJSON", "NDJSONDecoder"]


class NDJSONDecoder:
    """Incremental NDJSON decoder: frames are the lines' texts, without line ends."""

    __slots__ = ("_pending", "_started", "_tail", "blank_lines", "truncated")

    closed = False  # only the end of the body ends an NDJSON body

    def __init__(self) -> None:
        self._pending = b""  # bytes of a UTF-8 character split across reads
        self._tail = ""  # text after the last line end
        self._started = False
        self.blank_lines = 0
        self.truncated = False

    def feed(self, chunk: bytes) -> list[str]:
        """Consume one network read; return the lines it completed."""
        if self._pending:
            chunk = self._pending + chunk
        text, used = utf_8_decode(chunk, "replace", False)
        self._pending = chunk[used:] if used != len(chunk) else b""
        if not self._started and text:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        if "\n" not in text:
            self._tail += text
            return []
        if self._tail:
            text = self._tail + text
        lines = text.split("\n")
        self._tail = lines.pop()
        if "\r" in text:
            lines = [line[:-1] if line[-1:] == "\r" else line for line in lines]
        # isspace() stops at the first other character: O(1) on a JSON line.
        out = [line for line in lines if line and not line.isspace()]
        if len(out) != len(lines):
            self.blank_lines += len(lines) - len(out)
        return out

    def end(self) -> list[str]:
        """The end of the body: a last line without its line end, when it is whole JSON."""
        rest = self._tail
        if self._pending:
            rest += utf_8_decode(self._pending, "replace", True)[0]
        self._tail = ""
        self._pending = b""
        self.truncated = False
        rest = rest.strip()
        if not rest:
            return []
        try:
            json_codec.loads(rest)
        except ValueError:
            self.truncated = True
            return []
        return [rest]


NDJSON: Framing[str] = Framing("ndjson", "application/x-ndjson", NDJSONDecoder)
"""Newline-delimited JSON, as Ollama streams it."""
