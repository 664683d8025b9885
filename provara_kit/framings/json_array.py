"""A streamed JSON array: ``[``, elements separated by commas, ``]``; one frame per element.

Google's Gemini API streams ``streamGenerateContent`` this way unless asked for SSE. Any
whitespace (pretty printing, CRLF) may sit between and inside elements. A frame is the
text of one element. The body must close the array: a body that stops before ``]`` is
truncated. The array's ``]`` completes the body: ``closed`` then turns true, so a reader
stops there even when the server keeps the connection open. Bytes that cannot be an array
(text before ``[``, a missing comma, text after ``]``) raise ``ValueError``.

The decoder finds element boundaries with one regular-expression scan whose tokens are
whole strings and the brackets, braces and commas between them, so the Python loop runs
once per token, not per character, and a string cut by a read is scanned again from its
opening quote only; the element text is then handed over as one slice.
"""

from __future__ import annotations

import json
import re
from codecs import utf_8_decode
from typing import Final

from provara_kit.framings.base import Framing

__all__ = ["JSON_ARRAY", "JSONArrayDecoder"]

_NON_WS: Final = re.compile(r"[^ \t\r\n]")
_CONTAINER_CLOSERS: Final = re.compile(r"[\]}]")
_SCALAR_CLOSERS: Final = re.compile(r'[\]},"]')
_raw_decode: Final = json.JSONDecoder().raw_decode
_OPENERS: Final = frozenset('{["')  # elements whose own closing character ends them
_SCALAR_END: Final = re.compile(r"[\s,\]]")
_SHORT_TAIL: Final = 8  # an error this close to the end may be a literal or escape cut short
_EAGER_ATTEMPTS: Final = 64  # past this, and _EAGER_SIZE, an element is tried again only
_EAGER_SIZE: Final = 4_096  # when it doubled

# Where the decoder stands between elements.
_BEFORE_ARRAY, _FIRST, _NEXT, _AFTER_ELEMENT, _CLOSED = range(5)


class JSONArrayDecoder:
    """Incremental decoder of one streamed JSON array; frames are the elements' texts."""

    __slots__ = (
        "_attempts",
        "_buf",
        "_more",
        "_more_size",
        "_pending",
        "_state",
        "_tried",
        "closed",
        "truncated",
    )

    def __init__(self) -> None:
        self._pending = b""  # bytes of a UTF-8 character split across reads
        self._buf = ""  # an element begun and not complete yet, from its first character
        self._state = _BEFORE_ARRAY
        self._more: list[str] = []  # reads added to _buf since it was last tried
        self._more_size = 0
        self._tried = 0  # the length of _buf when it last failed to parse
        self._attempts = 0  # failed parses of the element in _buf
        self.truncated = False
        self.closed = False  # the array's "]" was read: the body is complete

    def feed(self, chunk: bytes) -> list[str]:
        """Consume one network read; return the elements it completed."""
        if self._pending:
            chunk = self._pending + chunk
        text, used = utf_8_decode(chunk, "replace", False)
        self._pending = chunk[used:] if used != len(chunk) else b""
        if not text:
            return []
        if self._state == _BEFORE_ARRAY and text[0] == "\ufeff":
            text = text[1:]
        if self._buf:
            if not self._worth_trying(text):
                self._more.append(text)  # joined once, when tried (not once per read)
                self._more_size += len(text)
                return []
            return self._scan(self._pending_text() + text)
        return self._scan(text)

    def _scan(self, buf: str) -> list[str]:
        """Hand over every element ``buf`` completes; keep an unfinished one in ``_buf``."""
        out: list[str] = []
        state = self._state
        n = len(buf)
        pos = 0
        while True:
            m = _NON_WS.search(buf, pos)
            if m is None:
                pos = n
                break
            pos = m.start()
            ch = buf[pos]
            if state == _AFTER_ELEMENT:
                if ch == ",":
                    state = _NEXT
                elif ch == "]":
                    state = _CLOSED
                else:
                    raise ValueError(f"expected ',' or ']' after an array element, got {ch!r}")
                pos += 1
                continue
            if state == _BEFORE_ARRAY:
                if ch != "[":
                    raise ValueError(f"a streamed JSON array must start with '[', got {ch!r}")
                state = _FIRST
                pos += 1
                continue
            if state == _CLOSED:
                raise ValueError(f"{ch!r} after the end of the streamed JSON array")
            if ch == "]" and state == _FIRST:
                state = _CLOSED  # an empty array
                pos += 1
                continue
            if ch == "," or ch == "]":
                raise ValueError(f"expected an array element, got {ch!r}")
            if ch not in _OPENERS:
                # A number or literal ends where a delimiter starts: a read may cut it
                # anywhere ("-0." would parse as -0 and leave ".").
                delimiter = _SCALAR_END.search(buf, pos)
                if delimiter is None:
                    break  # it may go on in the next read
                end = delimiter.start()
                try:
                    json.loads(buf[pos:end])
                except ValueError:
                    raise ValueError(f"a malformed array element: {buf[pos:end][:40]!r}") from None
                out.append(buf[pos:end])
                state = _AFTER_ELEMENT
                pos = end
                continue
            try:
                _, end = _raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if exc.pos < n - _SHORT_TAIL and not exc.msg.startswith("Unterminated string"):
                    raise ValueError(f"a malformed array element: {exc}") from None
                break  # the element goes on in the next read
            out.append(buf[pos:end])
            state = _AFTER_ELEMENT
            pos = end
        self._state = state
        self.closed = state == _CLOSED
        if pos < n:
            self._buf = buf[pos:]
            self._attempts += 1
            self._tried = n - pos
        else:
            self._buf = ""
            self._attempts = 0
        return out

    def _worth_trying(self, text: str) -> bool:
        """Whether ``text``, added to the unfinished element, may finish it: only a closing
        bracket or brace can finish an object or array. A large element that failed many
        times is tried again only once it doubled, so a huge element in tiny reads costs
        O(n log n), not O(n²)."""
        closers = _CONTAINER_CLOSERS if self._buf[0] in "{[" else _SCALAR_CLOSERS
        size = len(self._buf) + self._more_size
        if self._attempts < _EAGER_ATTEMPTS or size < _EAGER_SIZE:
            return closers.search(text) is not None
        return size + len(text) >= 2 * self._tried

    def _pending_text(self) -> str:
        """The unfinished element with every read added since it was last tried."""
        if self._more:
            self._buf += "".join(self._more)
            self._more.clear()
            self._more_size = 0
        return self._buf

    def end(self) -> list[str]:
        """The end of the body: truncated unless the array was closed."""
        tail = utf_8_decode(self._pending, "replace", True)[0] if self._pending else ""
        self._pending = b""
        text = self._pending_text() + tail
        out = self._scan(text) if text.strip(" \t\r\n") else []
        self.truncated = self._state != _CLOSED or bool(self._buf)
        self._buf = ""
        return out


JSON_ARRAY: Framing[str] = Framing("json-array", "application/json", JSONArrayDecoder)
"""A streamed JSON array, as Gemini's ``streamGenerateContent`` sends it without ``alt=sse``."""
