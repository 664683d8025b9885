"""The ways the Server-Sent Events format lets a server write the same events.

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
from typing import Final, Literal

from provara_kit.testing.dialects.base import Frame

__all__ = ["SSE_FRAMINGS", "SSEFraming"]

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
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(PLAIN, name)
        ]
        return ", ".join(changed) or "plain"

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
