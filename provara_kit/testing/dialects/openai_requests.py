"""The rules OpenAI's Chat Completions API enforces on a request body with a 400, in its
own wording: tool messages answer the calls of the assistant message before them, every
call is answered, arguments travel as JSON text, and ``tool_choice`` or
``parallel_tool_calls`` need ``tools``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ROLES", "validate_chat_request"]

ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def validate_chat_request(body: Mapping[str, Any]) -> list[str]:
    """What the API would answer 400 to in ``body`` (``[]``: nothing)."""
    problems: list[str] = []
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["Invalid 'messages': empty array. Expected an array with minimum length 1."]
    open_calls: list[str] = []  # the calls of the last assistant message not answered yet
    answerable: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            role = message.get("role") if isinstance(message, Mapping) else message
            problems.append(f"Invalid value for '{where}.role': {role!r}")
            continue
        role = message["role"]
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not call_id:
                problems.append(f"Missing required parameter: '{where}.tool_call_id'.")
            elif call_id not in answerable:
                problems.append(
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls' ({where}, tool_call_id {call_id!r})."
                )
            open_calls = [c for c in open_calls if c != call_id]
            continue
        problems += _unanswered(open_calls)
        open_calls, answerable = [], set()
        if role == "assistant":
            for j, call in enumerate(message.get("tool_calls") or ()):
                function = call.get("function") if isinstance(call, Mapping) else None
                arguments = function.get("arguments") if isinstance(function, Mapping) else None
                if not isinstance(arguments, str):
                    problems.append(
                        f"Invalid type for '{where}.tool_calls[{j}].function.arguments': "
                        f"expected a string, but got {type(arguments).__name__} instead."
                    )
                if isinstance(call, Mapping) and call.get("id"):
                    open_calls.append(str(call["id"]))
            answerable = set(open_calls)
    problems += _unanswered(open_calls)
    for name in ("tool_choice", "parallel_tool_calls"):
        if body.get(name) is not None and not body.get("tools"):
            problems.append(
                f"Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified."
            )
    return problems


def _unanswered(open_calls: list[str]) -> list[str]:
    if not open_calls:
        return []
    return [
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(open_calls)
    ]
