"""Messages API request bodies: read back as an OpenAI-shaped conversation, and the rules
the real API enforces with a 400.

The reading inverts what an adapter does: the top-level ``system`` is the system text,
``tool_use`` blocks are an assistant turn's tool calls, each ``tool_result`` block is a
``tool`` turn (results of parallel calls share one user turn on this wire), image blocks
with a ``base64`` or ``url`` source are image parts, ``stop_sequences`` is ``stop`` and
``tool_choice.disable_parallel_tool_use`` is ``parallel_tool_calls: false``.

The rules are the API's documented ones, with its own wording where it has one. Turns of
the same role in a row are not refused: the API joins them into one turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from provara_kit.testing.conversation import (
    EMPTY_SCHEMA,
    Image,
    NormalizedConversation,
    Part,
    ToolCallRef,
    ToolSpec,
    Turn,
    merge_text,
    parallel_flag,
    split_tool_results,
)

__all__ = ["IMAGE_MEDIA_TYPES", "read_messages_conversation", "validate_messages_request"]

IMAGE_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""The media types a ``base64`` image source may have."""

_CHOICES: Final[Mapping[str, str]] = {"auto": "auto", "any": "required", "none": "none"}


def read_messages_conversation(body: Mapping[str, Any]) -> NormalizedConversation:
    """The conversation a Messages API request body holds, in OpenAI's terms."""
    system = _system_text(body.get("system"))
    turns: list[Turn] = []
    for message in _list(body.get("messages")):
        if isinstance(message, Mapping):
            turns.extend(_turns(message))
    tools = tuple(_tool(tool) for tool in _list(body.get("tools")))
    choice_body = body.get("tool_choice")
    choice = _tool_choice(choice_body, bool(tools))
    disabled = isinstance(choice_body, Mapping) and choice_body.get("disable_parallel_tool_use")
    limit = body.get("max_tokens")
    stop = body.get("stop_sequences")
    metadata = body.get("metadata")
    return NormalizedConversation(
        system=(system,) if system else (),
        turns=tuple(turns),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel_flag(choice, disabled is not True),
        max_tokens=limit if isinstance(limit, int) else None,
        stop=tuple(stop) if isinstance(stop, list) else None,
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def validate_messages_request(body: Mapping[str, Any]) -> list[str]:
    """What the Messages API would answer 400 to in ``body`` (``[]``: nothing)."""
    problems: list[str] = []
    limit = body.get("max_tokens")
    if "max_tokens" not in body:
        problems.append("max_tokens: Field required")
    elif not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        problems.append(f"max_tokens: Input should be an integer of at least 1, got {limit!r}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        problems.append("messages: at least one message is required")
        messages = []
    previous_calls: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, Mapping):
            problems.append(f"{where}: Input should be a valid dictionary")
            previous_calls = set()
            continue
        role = message.get("role")
        if role not in ("user", "assistant"):
            problems.append(f"{where}.role: Input should be 'user' or 'assistant', got {role!r}")
        elif i == 0 and role != "user":
            problems.append('messages: first message must use the "user" role')
        content = message.get("content")
        if content in ("", [], None) and not (role == "assistant" and i == len(messages) - 1):
            problems.append(
                f"{where}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        blocks = [b for b in content if isinstance(b, Mapping)] if isinstance(content, list) else []
        problems += _block_problems(where, blocks, previous_calls if role == "user" else set())
        calls = {
            str(b.get("id")) for b in blocks if b.get("type") == "tool_use" and role == "assistant"
        }
        if previous_calls:
            answered = {str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"}
            missing = (
                sorted(previous_calls - answered) if role == "user" else sorted(previous_calls)
            )
            if missing:
                problems.append(
                    f"{where}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )
        previous_calls = calls
    problems += _tool_choice_problems(body)
    return problems


def _block_problems(where: str, blocks: list[Mapping[str, Any]], calls: set[str]) -> list[str]:
    problems: list[str] = []
    seen_other = False
    for j, block in enumerate(blocks):
        at = f"{where}.content.{j}"
        kind = block.get("type")
        if kind == "text" and not block.get("text"):
            problems.append(f"{at}: text content blocks must be non-empty")
        elif kind == "image":
            problems += _image_problems(at, block.get("source"))
        elif kind == "tool_use" and not isinstance(block.get("input"), Mapping):
            problems.append(f"{at}.tool_use.input: Input should be a valid dictionary")
        elif kind == "tool_result":
            use_id = block.get("tool_use_id")
            if not use_id:
                problems.append(f"{at}.tool_result.tool_use_id: Field required")
            elif use_id not in calls:
                problems.append(
                    f"{at}: unexpected `tool_use_id` found in `tool_result` blocks: {use_id}. "
                    "Each `tool_result` block must have a corresponding `tool_use` block in the "
                    "previous message."
                )
            if seen_other:
                problems.append(f"{at}: `tool_result` blocks must come first in the content")
        if kind != "tool_result":
            seen_other = True
    return problems


def _image_problems(at: str, source: Any) -> list[str]:
    if not isinstance(source, Mapping):
        return [f"{at}.image.source: Field required"]
    kind = source.get("type")
    if kind == "base64":
        problems = []
        if source.get("media_type") not in IMAGE_MEDIA_TYPES:
            problems.append(
                f"{at}.image.source.base64.media_type: Input should be one of "
                f"{sorted(IMAGE_MEDIA_TYPES)}, got {source.get('media_type')!r}"
            )
        if not source.get("data"):
            problems.append(f"{at}.image.source.base64.data: Field required")
        return problems
    if kind == "url":
        return [] if source.get("url") else [f"{at}.image.source.url.url: Field required"]
    return [f"{at}.image.source: unknown source type {kind!r}"]


def _tool_choice_problems(body: Mapping[str, Any]) -> list[str]:
    choice = body.get("tool_choice")
    if choice is None:
        return []
    if not body.get("tools"):
        return ["tool_choice: tool_choice may only be specified while providing tools"]
    if not isinstance(choice, Mapping) or choice.get("type") not in ("auto", "any", "tool", "none"):
        return [f"tool_choice: Input tag {choice!r} does not match 'auto', 'any', 'tool', 'none'"]
    if choice.get("type") == "none" and "disable_parallel_tool_use" in choice:
        return ["tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted"]
    if choice.get("type") == "tool" and not choice.get("name"):
        return ["tool_choice.tool.name: Field required"]
    return []


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    return "".join(
        block["text"]
        for block in _list(system)
        if isinstance(block, Mapping) and isinstance(block.get("text"), str)
    )


def _parts(content: Any) -> tuple[Part, ...]:
    if isinstance(content, str):
        return merge_text([content])
    parts: list[Part] = []
    for block in _list(content):
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block.get("type") == "image":
            image = _image(block.get("source"))
            if image is not None:
                parts.append(image)
    return merge_text(parts)


def _image(source: Any) -> Image | None:
    if not isinstance(source, Mapping):
        return None
    if source.get("type") == "base64":
        return Image("base64", str(source.get("data") or ""), source.get("media_type"))
    if source.get("type") == "url":
        return Image("url", str(source.get("url") or ""))
    return None


def _turns(message: Mapping[str, Any]) -> list[Turn]:
    """One wire turn as OpenAI messages: a user turn's tool results are ``tool`` turns."""
    role = str(message.get("role"))
    content = message.get("content")
    if role == "assistant":
        calls = tuple(
            ToolCallRef(block.get("id"), block.get("name"), block.get("input"))
            for block in _list(content)
            if isinstance(block, Mapping) and block.get("type") == "tool_use"
        )
        return [Turn(role, _parts(content), tool_calls=calls)]
    if not isinstance(content, list):
        return [Turn(role, _parts(content))]
    return split_tool_results(role, content, _tool_result, _parts)


def _tool_result(block: Any) -> tuple[Any, Any] | None:
    if isinstance(block, Mapping) and block.get("type") == "tool_result":
        return block.get("content"), block.get("tool_use_id")
    return None


def _tool(tool: Any) -> ToolSpec:
    if not isinstance(tool, Mapping):
        return ToolSpec(None, "", tool)
    return ToolSpec(
        tool.get("name"), tool.get("description") or "", tool.get("input_schema") or EMPTY_SCHEMA
    )


def _tool_choice(choice: Any, tools: bool) -> str | tuple[str, str | None] | None:
    if not tools:
        return None
    if choice is None:
        return "auto"
    if not isinstance(choice, Mapping):
        return repr(choice)
    kind = choice.get("type")
    if kind == "tool":
        return ("function", choice.get("name"))
    return _CHOICES.get(kind, repr(dict(choice))) if isinstance(kind, str) else repr(choice)
