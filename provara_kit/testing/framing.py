"""The ways a stream framing lets a server write the same events.

Server-Sent Events first (the rest of this paragraph), then NDJSON and the streamed JSON
array at the end of the module; each variant has a ``label`` and ``apply(frames)``
(:class:`StreamFraming`), so a dialect's :meth:`~provara_kit.testing.WireDialect.framings`
returns the variants of its own framing and the ``sse-framing`` check plays them all.


A real upstream may end lines with CRLF or a lone CR, omit the space after ``data:``, spread
one JSON value over several ``data:`` lines, number its events, send a ``retry:`` field,
put comments inside an event or start the body with a byte order mark. Every one of them
carries the same events, so an adapter must read them all alike. :class:`SSEFraming` rewrites
a rendered stream's frames into one such variant; :data:`SSE_FRAMINGS` lists one variant
per rule of the format (WHATWG HTML, "Server-sent events", the event stream
interpretation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal, Protocol

from provara_kit.testing.dialects.base import Frame

__all__ = [
    "JSON_ARRAY_FRAMINGS",
    "NDJSON_FRAMINGS",
    "SSE_FRAMINGS",
    "JSONArrayFraming",
    "NDJSONFraming",
    "SSEFraming",
    "StreamFraming",
]


class StreamFraming(Protocol):
    """One way of writing a dialect's rendered frames that carries the same events."""

    @property
    def label(self) -> str: ...

    def apply(self, frames: Sequence[Frame]) -> list[Frame]: ...


_BOM: Final = "\ufeff".encode()


@dataclass(frozen=True, slots=True)
class SSEFraming:
    """One way of writing an event stream; the default is the plain form the dialects render.

    * ``line_ending``: ``"\\n"``, ``"\\r\\n"`` or ``"\\r"`` after every line.
    * ``space_after_colon``: ``data: x`` (True) or ``data:x`` (False).
    * ``multiline_data``: a JSON ``data`` value spread over several ``data:`` lines (the
      decoder joins them with newlines, which JSON reads as whitespace).
    * ``event_ids``: an ``id:`` field on every event.
    * ``retry_field``: a ``retry:`` field on the first event.
    * ``inner_comments``: a comment line inside every event.
    * ``bom``: the body starts with a UTF-8 byte order mark.
    """

    line_ending: Literal["\n", "\r\n", "\r"] = "\n"
    space_after_colon: bool = True
    multiline_data: bool = False
    event_ids: bool = False
    retry_field: bool = False
    inner_comments: bool = False
    bom: bool = False

    @property
    def label(self) -> str:
        """A short name for messages: the settings that differ from the plain form."""
        return _label(self, PLAIN)

    def apply(self, frames: Sequence[Frame]) -> list[Frame]:
        """``frames`` written in this variant; each frame keeps its content index."""
        if self == PLAIN:
            return list(frames)
        out = [
            replace(frame, data=self._rewrite(frame.data, number))
            for number, frame in enumerate(frames)
        ]
        if self.bom and out:
            out[0] = replace(out[0], data=_BOM + out[0].data)
        return out

    def _rewrite(self, data: bytes, number: int) -> bytes:
        text = data.decode("utf-8")
        if not text.endswith("\n\n"):
            return data.replace(b"\n", self.line_ending.encode())
        lines = text[:-2].split("\n")
        written: list[str] = []
        is_event = any(line.startswith("data") for line in lines)
        if is_event and self.retry_field and number == 0:
            written.append(self._field("retry", "3000"))
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon or not name:
                written.append(line)  # a comment: kept as is
                continue
            value = value.removeprefix(" ")
            if name == "data" and self.multiline_data:
                written.extend(self._field("data", part) for part in _spread(value))
            else:
                written.append(self._field(name, value))
        if is_event:
            if self.inner_comments:
                written.insert(len(written) // 2, ": a comment inside the event")
            if self.event_ids:
                written.append(self._field("id", str(number)))
        ending = self.line_ending
        return (ending.join(written) + ending + ending).encode("utf-8")

    def _field(self, name: str, value: str) -> str:
        # Without the space, a value that itself starts with one would lose it.
        space = " " if self.space_after_colon or value.startswith(" ") else ""
        return f"{name}:{space}{value}"


def _spread(value: str) -> list[str]:
    """A JSON value over several lines, or the value alone when it is not JSON."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return [value]
    return json.dumps(parsed, ensure_ascii=False, indent=1).split("\n")


PLAIN: Final = SSEFraming()

SSE_FRAMINGS: Final[tuple[SSEFraming, ...]] = (
    PLAIN,
    SSEFraming(line_ending="\r\n"),
    SSEFraming(line_ending="\r"),
    SSEFraming(space_after_colon=False),
    SSEFraming(multiline_data=True),
    SSEFraming(event_ids=True, retry_field=True),
    SSEFraming(inner_comments=True),
    SSEFraming(bom=True),
    SSEFraming(
        line_ending="\r\n",
        space_after_colon=False,
        multiline_data=True,
        event_ids=True,
        retry_field=True,
        inner_comments=True,
        bom=True,
    ),
)
"""One variant per rule of the format, and all of them at once."""


@dataclass(frozen=True, slots=True)
class NDJSONFraming:
    """One way of writing newline-delimited JSON; the default is the plain form (one compact
    value per LF-terminated line) the dialects render.

    * ``line_ending``: ``"\\n"`` or ``"\\r\\n"``.
    * ``blank_lines``: an empty line after every value (a server's keep-alive).
    * ``spaced``: values written with spaces after ``:`` and ``,``.
    * ``no_final_newline``: the last value's line has no line end.
    """

    line_ending: Literal["\n", "\r\n"] = "\n"
    blank_lines: bool = False
    spaced: bool = False
    no_final_newline: bool = False

    @property
    def label(self) -> str:
        return _label(self, NDJSONFraming())

    def apply(self, frames: Sequence[Frame]) -> list[Frame]:
        out: list[Frame] = []
        ending = self.line_ending
        for frame in frames:
            lines = frame.data.decode("utf-8").split("\n")
            written: list[str] = []
            for line in lines[:-1]:
                if line.strip() and self.spaced:
                    line = json.dumps(json.loads(line), ensure_ascii=False)
                written.append(line + ending)
                if line.strip() and self.blank_lines:
                    written.append(ending)
            written.append(lines[-1])
            out.append(replace(frame, data="".join(written).encode("utf-8")))
        if self.no_final_newline:
            for index in range(len(out) - 1, -1, -1):
                data = out[index].data
                if data.strip():
                    stripped = data.rstrip(b"\r\n")
                    out[index] = replace(out[index], data=stripped)
                    del out[index + 1 :]  # blank lines after it would end the line
                    break
        return out


NDJSON_FRAMINGS: Final[tuple[NDJSONFraming, ...]] = (
    NDJSONFraming(),
    NDJSONFraming(line_ending="\r\n"),
    NDJSONFraming(blank_lines=True),
    NDJSONFraming(spaced=True),
    NDJSONFraming(no_final_newline=True),
    NDJSONFraming(line_ending="\r\n", blank_lines=True, spaced=True, no_final_newline=True),
)
"""One variant per liberty of NDJSON a real server takes, and all of them at once."""


@dataclass(frozen=True, slots=True)
class JSONArrayFraming:
    """One way of writing a streamed JSON array; the default is the plain form the dialects
    render: ``[`` before the first element, ``,`` before each next one, ``]`` alone last.

    * ``indent``: elements pretty-printed with that many spaces (Google indents by 2).
    * ``separator``: what stands between elements instead of ``,`` (Google: ``"\\n,\\r\\n"``).
    * ``close``: what closes the array instead of ``]`` (Google: ``"\\n]"``).
    * ``leading``: whitespace before the opening bracket.
    """

    indent: int | None = None
    separator: str = ","
    close: str = "]"
    leading: str = ""

    @property
    def label(self) -> str:
        return _label(self, JSONArrayFraming())

    def apply(self, frames: Sequence[Frame]) -> list[Frame]:
        out: list[Frame] = []
        decoder = json.JSONDecoder()
        for frame in frames:
            text = frame.data.decode("utf-8")
            body = text.lstrip()
            if not body:  # whitespace between elements: a keep-alive
                out.append(frame)
                continue
            written = ""
            if body[0] == "[":
                written = self.leading + "["
                body = body[1:].lstrip()
            elif body[0] == ",":
                written = self.separator
                body = body[1:].lstrip()
            if body and body[0] != "]":
                value, end = decoder.raw_decode(body)
                written += json.dumps(value, ensure_ascii=False, indent=self.indent)
                body = body[end:].lstrip()
            if body.startswith("]"):
                written += self.close
                body = body[1:]
            out.append(replace(frame, data=(written + body).encode("utf-8")))
        return out


JSON_ARRAY_FRAMINGS: Final[tuple[JSONArrayFraming, ...]] = (
    JSONArrayFraming(),
    JSONArrayFraming(indent=2, separator="\n,\r\n", close="\n]"),  # as Google sends it
    JSONArrayFraming(separator=" ,\n\t"),
    JSONArrayFraming(indent=4, separator="\r\n,", close="\r\n]\r\n", leading="\r\n "),
)
"""The plain form, Google's, and whitespace everywhere JSON allows it."""


def _label(variant: object, plain: object) -> str:
    changed = [
        f"{name}={getattr(variant, name)!r}"
        for name in variant.__dataclass_fields__  # type: ignore[attr-defined]
        if getattr(variant, name) != getattr(plain, name)
    ]
    return ", ".join(changed) or "plain"
