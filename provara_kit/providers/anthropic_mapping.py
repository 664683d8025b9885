"""OpenAI-shaped requests to Messages-API bodies, and the small readings of its answers.

The request side of :mod:`provara_kit.providers.anthropic`: the top-level ``system`` text
and the turns from the messages (``tool_result`` and ``tool_use`` blocks, image parts),
``tools`` and ``tool_choice``. The answer side kept here is what the whole-answer and the
stream readers share: the finish reason and the usage counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from provara_kit.providers.request_parts import answered_call_id, split_data_url, tool_call
from provara_kit.types import ContentPart, Message

__all__ = [
    "finish_reason",
    "map_messages",
    "map_tool",
    "map_tool_choice",
    "token_count",
    "usage_counts",
]

_TOOL_CHOICES: Final[Mapping[str, str]] = {"auto": "auto", "required": "any", "none": "none"}


def map_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, Messages-API turns) from OpenAI-style messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            text = message.text()
            if text:
                system.append(text)
        elif message.role == "tool":
            call_id = answered_call_id(message)
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
            content = _map_content(message.content)
            if content:
                result["content"] = content
            previous = turns[-1] if turns else None
            if (
                previous is not None
                and previous["role"] == "user"
                and isinstance(previous["content"], list)
                and all(block.get("type") == "tool_result" for block in previous["content"])
            ):
                # Results of parallel calls answer one assistant turn: one user turn holds all.
                previous["content"].append(result)
            else:
                turns.append({"role": "user", "content": [result]})
        elif message.role == "assistant" and message.tool_calls:
            blocks = _as_blocks(_map_content(message.content))
            blocks.extend(_map_tool_call(call) for call in message.tool_calls)
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": message.role, "content": _map_content(message.content)})
    return "\n\n".join(system), turns


def _map_content(content: str | list[ContentPart] | None) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return [_map_part(part) for part in content]


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)


def _map_part(part: ContentPart) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "text", "text": part.text or ""}
    raw = part.model_dump(exclude_none=True)
    if part.type == "image_url":
        image = raw.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise ValueError("an image_url content part needs image_url.url")
        if url.startswith("data:"):
            inline = split_data_url(url)
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": inline.media_type, "data": inline.data},
            }
        return {"type": "image", "source": {"type": "url", "url": url}}
    return raw  # already an Anthropic block (image, document ...): passed through


def _map_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    parsed = tool_call(call)
    return {"type": "tool_use", "id": parsed.id, "name": parsed.name, "input": parsed.arguments}


def map_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A Messages-API tool from an OpenAI function tool (other tools pass unchanged)."""
    if tool.get("type") != "function":
        return dict(tool)  # an Anthropic tool already (custom or server tool)
    function = tool.get("function") or {}
    if not function.get("name"):
        raise ValueError("a function tool needs 'function.name'")
    mapped: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        mapped["description"] = function["description"]
    return mapped


def map_tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """The Messages-API ``tool_choice`` for an OpenAI one (``None`` when none is named)."""
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise ValueError(
                f"tool_choice must be 'auto', 'required', 'none' or a function, got {choice!r}"
            )
        return {"type": _TOOL_CHOICES[choice]}
    if choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise ValueError("tool_choice of type 'function' needs 'function.name'")
        return {"type": "tool", "name": name}
    return dict(choice)  # Anthropic's own shape ({"type": "any"} ...)


def finish_reason(stop_reason: Any, stop_reasons: Mapping[str, str]) -> str | None:
    """The OpenAI finish reason for a wire stop reason; one not in the table passes as is."""
    if stop_reason is None:
        return None
    return stop_reasons.get(stop_reason, str(stop_reason))


def token_count(value: Any) -> int | None:
    """``value`` if it is a token count (an int, not a bool), else ``None``."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _input_tokens(usage: Mapping[str, Any]) -> int | None:
    """Billed input: uncached + cache writes + cache reads (``None`` if not reported)."""
    uncached = token_count(usage.get("input_tokens"))
    if uncached is None:
        return None
    cache_write = token_count(usage.get("cache_creation_input_tokens")) or 0
    cache_read = token_count(usage.get("cache_read_input_tokens")) or 0
    return uncached + cache_write + cache_read


def usage_counts(usage: Any) -> tuple[int | None, int | None]:
    """(billed input, output) tokens of a ``usage`` object; ``None`` for a count left out."""
    if not isinstance(usage, dict):
        return None, None
    return _input_tokens(usage), token_count(usage.get("output_tokens"))
