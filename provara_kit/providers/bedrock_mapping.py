"""OpenAI-shaped requests to Converse request bodies, and the small readings of its answers.

The request side of :mod:`provara_kit.providers.bedrock`: ``system`` text blocks and
``messages`` of content blocks (``text``, inline ``image``, ``toolUse``, ``toolResult``),
``inferenceConfig``, ``toolConfig`` and ``requestMetadata``; what the wire cannot carry
raises ValueError. The answer side kept here is what the whole-answer and the stream
readers share: the finish reason and the usage counts.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final

from provara_kit import json_codec
from provara_kit.providers.request_parts import answered_call_id, image_url, split_data_url
from provara_kit.types import ChatRequest, ContentPart, Message

__all__ = ["build_payload", "finish_reason", "usage_counts"]

_TOOL_CHOICES: Final[Mapping[str, dict[str, Any]]] = {"auto": {"auto": {}}, "required": {"any": {}}}
_IMAGE_FORMATS: Final = frozenset({"png", "jpeg", "gif", "webp"})


def build_payload(request: ChatRequest) -> dict[str, Any]:
    """The Converse body for ``request`` (the model and streaming travel in the URL)."""
    extra = request.passthrough()
    system, messages = _map_messages(request.messages)
    payload: dict[str, Any] = {"messages": messages}
    if system:
        payload["system"] = [{"text": text} for text in system]
    config: dict[str, Any] = {}
    limit = request.max_tokens or extra.get("max_completion_tokens")
    if limit is not None:
        config["maxTokens"] = limit
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if extra.get("top_p") is not None:
        config["topP"] = extra["top_p"]
    if request.stop is not None:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if config:
        payload["inferenceConfig"] = config
    if request.tools:
        tools = [_map_tool(tool) for tool in request.tools]
        # Converse has no "none": with no tools declared, none can be called.
        if request.tool_choice != "none" or _has_tool_blocks(messages):
            tool_config: dict[str, Any] = {"tools": tools}
            choice = _map_tool_choice(request.tool_choice)
            if choice is not None:
                tool_config["toolChoice"] = choice
            payload["toolConfig"] = tool_config
    elif _has_tool_blocks(messages):
        raise ValueError(
            "Converse needs the tools declared (tools) when the conversation holds tool "
            "calls or results"
        )
    if isinstance(extra.get("metadata"), dict):
        payload["requestMetadata"] = {str(k): str(v) for k, v in extra["metadata"].items()}
    return payload


def _map_messages(messages: list[Message]) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, Converse turns) from OpenAI-style messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            text = message.text()
            if text:
                system.append(text)
            continue
        if message.role == "tool":
            result = {
                "toolResult": {
                    "toolUseId": answered_call_id(message),
                    "content": [{"text": message.text()}],
                }
            }
            previous = turns[-1] if turns else None
            if (
                previous is not None
                and previous["role"] == "user"
                and all("toolResult" in block for block in previous["content"])
            ):
                previous["content"].append(result)
            else:
                turns.append({"role": "user", "content": [result]})
            continue
        blocks = _map_content(message.content)
        if message.role == "assistant" and message.tool_calls:
            blocks.extend(_map_tool_call(call) for call in message.tool_calls)
        turns.append(
            {"role": "assistant" if message.role == "assistant" else "user", "content": blocks}
        )
    return system, turns


def _map_content(content: str | list[ContentPart] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.type == "text":
            if part.text:
                blocks.append({"text": part.text})
        elif part.type == "image_url":
            blocks.append(_map_image(part))
        else:
            raise ValueError(f"Converse cannot carry a {part.type!r} content part")
    return blocks


def _map_image(part: ContentPart) -> dict[str, Any]:
    url = image_url(part)
    if not url.startswith("data:"):
        raise ValueError(
            "Converse takes images inline only: send the image as a data: URL, not a link "
            "(image_url.url)"
        )
    media_type, _, data = split_data_url(url)
    kind = media_type.removeprefix("image/")
    if kind not in _IMAGE_FORMATS:
        raise ValueError(f"Converse takes png, jpeg, gif or webp images, not {media_type!r}")
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise ValueError("an image data: URL holds no valid base64") from None
    return {"image": {"format": kind, "source": {"bytes": data}}}


def _map_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
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
                f"tool call {call['id']!r} ({name}) has arguments that are not valid JSON"
            ) from None
    if not isinstance(parsed, dict):
        raise ValueError(f"tool call {call['id']!r} ({name}) arguments must be a JSON object")
    return {"toolUse": {"toolUseId": call["id"], "name": name, "input": parsed}}


def _has_tool_blocks(turns: list[dict[str, Any]]) -> bool:
    return any(
        "toolUse" in block or "toolResult" in block for turn in turns for block in turn["content"]
    )


def _map_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise ValueError(f"Converse carries function tools only, not {tool.get('type')!r}")
    function = tool.get("function") or {}
    if not function.get("name"):
        raise ValueError("a function tool needs 'function.name'")
    spec: dict[str, Any] = {
        "name": function["name"],
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def _map_tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice == "none":
            raise ValueError(
                "Converse has no tool_choice 'none', and a conversation that holds tool calls "
                "must declare its tools: leave tool_choice out"
            )
        if choice not in _TOOL_CHOICES:
            raise ValueError(
                f"tool_choice must be 'auto', 'required' or a function, got {choice!r}"
            )
        return dict(_TOOL_CHOICES[choice])
    if choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise ValueError("tool_choice of type 'function' needs 'function.name'")
        return {"tool": {"name": name}}
    raise ValueError(f"tool_choice must be 'auto', 'required' or a function, got {choice!r}")


def finish_reason(stop_reason: Any, stop_reasons: Mapping[str, str]) -> str | None:
    """The OpenAI finish reason for a wire stop reason; one not in the table passes as is."""
    if not isinstance(stop_reason, str):
        return None
    return stop_reasons.get(stop_reason, stop_reason)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_counts(usage: Any) -> tuple[int | None, int | None]:
    """(billed input, output): uncached input plus cache reads and writes."""
    if not isinstance(usage, dict):
        return None, None
    uncached = _count(usage.get("inputTokens"))
    if uncached is not None:
        for name, alias in (
            ("cacheReadInputTokens", "cacheReadInputTokenCount"),
            ("cacheWriteInputTokens", "cacheWriteInputTokenCount"),
        ):
            cached = _count(usage.get(name))
            uncached += (cached if cached is not None else _count(usage.get(alias))) or 0
    return uncached, _count(usage.get("outputTokens"))
