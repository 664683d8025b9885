"""OpenAI-shaped requests to Ollama ``/api/chat`` request bodies.

The request side of :mod:`provara_kit.providers.ollama`: the messages (images inline as
base64, tool calls with object arguments, tool results that name their tool), ``tools``,
the sampling ``options``, ``format`` from ``response_format`` and ``think``. What the wire
cannot carry raises ValueError, or UnsupportedParameterError for a parameter value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from provara_kit.errors import UnsupportedParameterError
from provara_kit.providers.request_parts import (
    answered_call_id,
    image_url,
    split_data_url,
    tool_call,
)
from provara_kit.types import ChatRequest, ContentPart, Message

__all__ = ["build_payload"]

# OpenAI sampling parameters Ollama takes in ``options``, by the option's name.
_OPTIONS: Final[Mapping[str, str]] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "repeat_penalty": "repeat_penalty",
}

_EFFORTS: Final[Mapping[str, bool | str]] = {
    "none": False,
    "minimal": False,
    "low": "low",
    "medium": "medium",
    "high": "high",
}


def build_payload(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The ``/api/chat`` body for ``request``; ``stream`` is always sent explicitly."""
    extra = request.passthrough()
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": _map_messages(request.messages),
        # Ollama streams unless told not to: the flag is always explicit.
        "stream": stream,
    }
    if request.tools:
        payload["tools"] = [_map_tool(tool) for tool in request.tools]
    options = _options(request, extra)
    if options:
        payload["options"] = options
    response_format = _format(extra.get("response_format"))
    if response_format is not None:
        payload["format"] = response_format
    think = _think(extra)
    if think is not None:
        payload["think"] = think
    return payload


def _options(request: ChatRequest, extra: Mapping[str, Any]) -> dict[str, Any]:
    given = extra.get("options")
    if given is not None and not isinstance(given, dict):
        raise ValueError(f"options must be a JSON object of Ollama options, got {given!r}")
    options: dict[str, Any] = dict(given or {})
    limit = request.max_tokens or extra.get("max_completion_tokens")
    if limit is not None:
        options["num_predict"] = limit
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.stop is not None:
        options["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    for field, option in _OPTIONS.items():
        if field != "temperature" and extra.get(field) is not None:
            options[option] = extra[field]
    return options


def _format(response_format: Any) -> str | dict[str, Any] | None:
    """``response_format`` as Ollama's ``format``: ``"json"``, a JSON schema, or nothing."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise ValueError(f"response_format must be an object, got {response_format!r}")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise ValueError("response_format json_schema needs json_schema.schema, an object")
        return schema
    raise ValueError(
        f"response_format type must be 'text', 'json_object' or 'json_schema', got {kind!r}"
    )


def _think(extra: Mapping[str, Any]) -> bool | str | None:
    """Ollama's ``think``: the client's own, else from ``reasoning_effort``."""
    think = extra.get("think")
    if think is not None:
        if not isinstance(think, bool | str):
            raise ValueError(f"think must be true, false or a level, got {think!r}")
        return think
    effort = extra.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise UnsupportedParameterError("reasoning_effort")
    return _EFFORTS[effort]


def _map_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Ollama messages from OpenAI-style ones; tool results name their tool."""
    names: dict[str, str] = {}  # call id -> tool name, for the results that answer them
    out: list[dict[str, Any]] = []
    for message in messages:
        role = "system" if message.role == "developer" else message.role
        text, images = _content(message.content)
        mapped: dict[str, Any] = {"role": role, "content": text}
        if images:
            mapped["images"] = images
        if message.role == "assistant" and message.tool_calls:
            calls = [_map_tool_call(call) for call in message.tool_calls]
            for call in calls:
                names[call["id"]] = call["function"]["name"]
            mapped["tool_calls"] = calls
        elif message.role == "tool":
            call_id = answered_call_id(message)
            mapped["tool_call_id"] = call_id
            name = names.get(call_id) or message.name
            if name:
                mapped["tool_name"] = name
        out.append(mapped)
    return out


def _content(content: str | list[ContentPart] | None) -> tuple[str, list[str]]:
    """(text, base64 images) of a message's content."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    text: list[str] = []
    images: list[str] = []
    for part in content:
        if part.type == "text":
            text.append(part.text or "")
        elif part.type == "image_url":
            images.append(_image(part))
        else:
            raise ValueError(f"Ollama takes text and image content parts, not {part.type!r}")
    return "".join(text), images


def _image(part: ContentPart) -> str:
    url = image_url(part)
    if not url.startswith("data:"):
        raise ValueError(
            "Ollama takes images inline only: an image by URL cannot be sent "
            "(send it as a base64 data: URL)"
        )
    inline = split_data_url(url)
    if not inline.base64 or not inline.data:
        raise ValueError("an image data: URL must carry base64 data (data:<type>;base64,...)")
    return inline.data


def _map_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    parsed = tool_call(call)
    return {"id": parsed.id, "function": {"name": parsed.name, "arguments": parsed.arguments}}


def _map_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise ValueError(f"Ollama takes function tools only, got type {tool.get('type')!r}")
    function = tool.get("function") or {}
    if not function.get("name"):
        raise ValueError("a function tool needs 'function.name'")
    mapped: dict[str, Any] = {
        "name": function["name"],
        "parameters": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        mapped["description"] = function["description"]
    return {"type": "function", "function": mapped}
