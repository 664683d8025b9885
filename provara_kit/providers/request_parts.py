"""The pieces of an OpenAI-style request that every wire mapping reads the same way.

An assistant tool call (its id, name and arguments as a JSON object), the URL of an
``image_url`` content part and the parts of a ``data:`` URL, and the call a ``tool``
message answers. Each raises ValueError, with the message the mappings share, for input
the request cannot carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from provara_kit import json_codec
from provara_kit.types import ContentPart, Message

__all__ = ["DataURL", "ToolCall", "answered_call_id", "image_url", "split_data_url", "tool_call"]


class ToolCall(NamedTuple):
    """An assistant tool call: its id, the function's name and its arguments."""

    id: Any
    name: Any
    arguments: dict[str, Any]


class DataURL(NamedTuple):
    """The parts of a ``data:`` URL: media type, whether it says ``;base64``, the data."""

    media_type: str
    base64: bool
    data: str


def tool_call(call: Mapping[str, Any]) -> ToolCall:
    """The id, name and object arguments of an OpenAI assistant tool call."""
    function = call.get("function") or {}
    name = function.get("name")
    arguments = function.get("arguments")
    if not call.get("id") or not name:
        raise ValueError("an assistant tool call needs an 'id' and a 'function.name'")
    if isinstance(arguments, dict):
        parsed: Any = arguments
    else:
        try:
            parsed = json_codec.loads(arguments) if arguments else {}
        except ValueError:
            raise ValueError(
                f"tool call {call['id']!r} ({name}) has arguments that are not valid JSON: "
                f"{str(arguments)[:200]!r}"
            ) from None
    if not isinstance(parsed, dict):
        raise ValueError(
            f"tool call {call['id']!r} ({name}) arguments must be a JSON object, "
            f"got {type(parsed).__name__}"
        )
    return ToolCall(call["id"], name, parsed)


def image_url(part: ContentPart) -> str:
    """The URL of an ``image_url`` content part (a link or a ``data:`` URL)."""
    image = part.model_dump(exclude_none=True).get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise ValueError("an image_url content part needs image_url.url")
    return url


def split_data_url(url: str) -> DataURL:
    """The media type, base64 flag and data of a ``data:`` URL."""
    header, _, data = url.partition(",")
    media_type = header[len("data:") :].split(";", 1)[0]
    return DataURL(media_type, ";base64" in header, data)


def answered_call_id(message: Message) -> str:
    """The ``tool_call_id`` a ``tool`` message answers."""
    if not message.tool_call_id:
        raise ValueError("a 'tool' message needs the tool_call_id of the call it answers")
    return message.tool_call_id
