"""A streamed JSON array: ``[``, elements separated by commas, ``]``; one frame per element.

Google's Gemini API streams ``streamGenerateContent`` this way unless asked for SSE. Any
whitespace (pretty printing, CRLF) may sit between and inside elements. A frame is the
text of one element. The body must close the array: a body that stops before ``]`` is
truncated. Bytes that cannot be an array (text before ``[``, a missing comma, text after
``]``) raise ``ValueError``.

The decoder finds element boundaries with one regular-expression scan over the
structural characters (quotes, backslashes, brackets, braces, commas), so each byte is
looked at once however the body is cut into reads; the element text is then handed over
as one slice.
"""

from __future__ import annotations

import re
from codecs import utf_8_decode
from typing import Final

from provara_kit.framings.base import Framing

__all__ = ["JSON_ARRAY", "JSONArrayDecoder"]

_OUTSIDE: Final = re.compile(r'["\[\]{},]')  # structure outside strings
_INSIDE: Final = re.compile(r'["\\]')  # the end of a string, or an escape
_WS: Final = " \t\r\n"

# States
_BEFORE_ARRAY, _FIRST_ELEMENT, _BEFORE_ELEMENT, _IN_ELEMENT, _AFTER_ELEMENT, _CLOSED = range(6)


class JSONArrayDecoder:
    """Incremental decoder of one streamed JSON array; frames are the elements' texts."""

    __slots__ = (
        "_buf",
        "_depth",
        "_in_string",
        "_pending",
        "_pos",
        "_start",
        "_state",
        "truncated",
    )

    def __init__(self) -> None:
        self._pending = b""
        self._buf = ""  # text not yet handed over (from the current element's start)
        self._pos = 0  # where scanning resumes in _buf
        self._start = 0  # where the current element starts in _buf
        self._state = _BEFORE_ARRAY
        self._depth = 0  # brackets/braces open inside the current element
        self._in_string = False
        self.truncated = False

    def feed(self, chunk: bytes) -> list[str]:
        """Consume one network read; return the elements it completed."""
        if self._pending:
            chunk = self._pending + chunk
        text, used = utf_8_decode(chunk, "replace", False)
        self._pending = chunk[used:] if used != len(chunk) else b""
        if not text:
            return []
        if self._state == _BEFORE_ARRAY and not self._buf and text[0] == "\ufeff":
            text = text[1:]
        buf = self._buf + text if self._buf else text
        out: list[str] = []
        pos = self._pos
        start = self._start
        state = self._state
        depth = self._depth
        in_string = self._in_string
        n = len(buf)
        while pos < n:
            if state == _IN_ELEMENT:
                if in_string:
                    m = _INSIDE.search(buf, pos)
                    if m is None:
                        pos = n
                        break
                    pos = m.end()
                    if m.group() == "\\":
                        if pos >= n:  # the escaped character is in the next read
                            pos -= 1
                            break
                        pos += 1
                        continue
                    in_string = False
                    if depth == 0:  # a bare string element ends with its quote
                        out.append(buf[start:pos])
                        state = _AFTER_ELEMENT
                    continue
                m = _OUTSIDE.search(buf, pos)
                if m is None:
                    pos = n
                    break
                ch = m.group()
                end = m.start()
                if ch == '"':
                    in_string = True
                    pos = m.end()
                elif ch in "[{":
                    depth += 1
                    pos = m.end()
                elif ch in "]}":
                    if depth == 0:  # "]" closing the array after a scalar element
                        out.append(buf[start:end].rstrip(_WS))
                        state = _AFTER_ELEMENT
                        pos = end
                        continue
                    depth -= 1
                    pos = m.end()
                    if depth == 0:
                        out.append(buf[start:pos])
                        state = _AFTER_ELEMENT
                else:  # "," at depth 0 ends a scalar element
                    if depth == 0:
                        out.append(buf[start:end].rstrip(_WS))
                        state = _AFTER_ELEMENT
                        pos = end
                    else:
                        pos = m.end()
                continue
            ch = buf[pos]
            if ch in _WS:
                pos += 1
                continue
            if state == _BEFORE_ARRAY:
                if ch != "[":
                    raise ValueError(f"a streamed JSON array must start with '[', got {ch!r}")
                state = _FIRST_ELEMENT
                pos += 1
            elif state in (_FIRST_ELEMENT, _BEFORE_ELEMENT):
                if ch == "]" and state == _FIRST_ELEMENT:
                    state = _CLOSED  # an empty array
                    pos += 1
                    continue
                if ch in ",]":
                    raise ValueError(f"expected an array element, got {ch!r}")
                state = _IN_ELEMENT
                start = pos
                depth = 0
                if ch == '"':
                    in_string = True
                    pos += 1
                elif ch in "[{":
                    depth = 1
                    pos += 1
            elif state == _AFTER_ELEMENT:
                if ch == ",":
                    state = _BEFORE_ELEMENT
                elif ch == "]":
                    state = _CLOSED
                else:
                    raise ValueError(f"expected ',' or ']' after an array element, got {ch!r}")
                pos += 1
            else:  # _CLOSED
                raise ValueError(f"text after the end of the streamed JSON array: {ch!r}")
        # Keep only what the next read still needs.
        if state == _IN_ELEMENT:
            self._buf = buf[start:]
            self._pos = pos - start
            self._start = 0
        else:
            self._buf = ""
            self._pos = 0
            self._start = 0
        self._state = state
        self._depth = depth
        self._in_string = in_string
        return out

    def end(self) -> list[str]:
        """The end of the body: truncated unless the array was closed."""
        if self._pending:
            tail = utf_8_decode(self._pending, "replace", True)[0]
            self._pending = b""
            if tail.strip(_WS):
                self.truncated = True
                return []
        self.truncated = self._state != _CLOSED
        return []


JSON_ARRAY: Framing[str] = Framing("json-array", "application/json", JSONArrayDecoder)
"""A streamed JSON array, as Gemini's ``streamGenerateContent`` sends it without ``alt=sse``."""
