"""Gemini ``generateContent`` request bodies: read back as an OpenAI-shaped conversation, and
the rules the real API enforces with a 400.

The reading inverts what an adapter does: ``systemInstruction`` is the system text,
``model`` turns are assistant turns whose ``functionCall`` parts are its tool calls, each
``functionResponse`` part is a ``tool`` turn (results of parallel calls share one user turn
on this wire) answering the call its ``id`` names, ``inlineData`` and ``fileData`` parts are
images, ``toolConfig.functionCallingConfig`` is the tool choice, ``maxOutputTokens`` and
``stopSequences`` are ``max_tokens`` and ``stop``.

The rules are the API's, in its own words where it has them.
"""

from __future__ import annotations

import json
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
)
from provara_kit.testing.dialects.base import MISSING

__all__ = [
    "openai_tool_choice",
    "read_gemini_conversation",
    "read_gemini_param",
    "validate_gemini_request",
]

_MODES: Final[Mapping[str, str]] = {"AUTO": "auto", "ANY": "required", "NONE": "none"}
_DATA_FIELDS: Final = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)


def openai_tool_choice(config: Any) -> Any:
    """``toolConfig`` as OpenAI's ``tool_choice`` (:data:`MISSING` when absent)."""
    calling = config.get("functionCallingConfig") if isinstance(config, Mapping) else None
    if not isinstance(calling, Mapping):
        return MISSING
    mode = calling.get("mode")
    names = calling.get("allowedFunctionNames")
    if mode == "ANY" and isinstance(names, list) and len(names) == 1:
        return {"type": "function", "function": {"name": names[0]}}
    return _MODES.get(str(mode), repr(dict(calling)))


def read_gemini_param(body: Mapping[str, Any], name: str) -> Any:
    """The OpenAI request parameter ``name`` read back from a request body, or
    :data:`MISSING`."""
    config = body.get("generationConfig")
    config = config if isinstance(config, Mapping) else {}
    if name == "system":
        system = body.get("systemInstruction")
        return _text(system) if isinstance(system, Mapping) else MISSING
    if name in _CONFIG_NAMES:
        return config.get(_CONFIG_NAMES[name], MISSING)
    if name == "response_format":
        return _response_format(config)
    if name == "reasoning_effort":
        thinking = config.get("thinkingConfig")
        if not isinstance(thinking, Mapping):
            return MISSING
        if thinking.get("thinkingBudget") == 0:
            return "none"
        return thinking.get("thinkingLevel", MISSING)
    if name == "tools":
        return _openai_tools(body.get("tools"))
    if name == "tool_choice":
        return openai_tool_choice(body.get("toolConfig"))
    return body.get(name, MISSING)


def read_gemini_conversation(body: Mapping[str, Any]) -> NormalizedConversation:
    """The conversation a ``generateContent`` request body holds, in OpenAI's terms."""
    system = _text(body.get("systemInstruction"))
    turns: list[Turn] = []
    for content in _list(body.get("contents")):
        if isinstance(content, Mapping):
            turns.extend(_turns(content))
    tools = tuple(
        _tool(declaration)
        for tool in _list(body.get("tools"))
        if isinstance(tool, Mapping)
        for declaration in _list(tool.get("functionDeclarations"))
    )
    choice = _tool_choice(body.get("toolConfig"), bool(tools))
    config = body.get("generationConfig")
    config = config if isinstance(config, Mapping) else {}
    limit = config.get("maxOutputTokens")
    stop = config.get("stopSequences")
    return NormalizedConversation(
        system=(system,) if system else (),
        turns=tuple(turns),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel_flag(choice, True),
        max_tokens=limit if isinstance(limit, int) else None,
        stop=tuple(stop) if isinstance(stop, list) else None,
    )


def validate_gemini_request(body: Mapping[str, Any]) -> list[str]:
    """What the Gemini API would answer 400 to in ``body`` (``[]``: nothing)."""
    problems: list[str] = []
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return ["* GenerateContentRequest.contents: contents is not specified"]
    calls_before = 0
    for i, content in enumerate(contents):
        where = f"GenerateContentRequest.contents[{i}]"
        if not isinstance(content, Mapping):
            problems.append(f"* {where}: must be an object")
            continue
        role = content.get("role", "user")
        if role not in ("user", "model"):
            problems.append(f"Please use a valid role: user, model. (got {role!r} in {where})")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            problems.append(f"* {where}.parts: contents.parts must not be empty.")
            parts = []
        responses = 0
        calls = 0
        for j, part in enumerate(parts):
            at = f"{where}.parts[{j}]"
            problems += _part_problems(at, part)
            if isinstance(part, Mapping):
                responses += "functionResponse" in part
                calls += "functionCall" in part
        if responses and responses != calls_before:
            problems.append(
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )
        calls_before = calls if role == "model" else 0
    problems += _tool_config_problems(body)
    return problems


def _part_problems(at: str, part: Any) -> list[str]:
    if not isinstance(part, Mapping):
        return [f"* {at}: must be an object"]
    present = [name for name in _DATA_FIELDS if name in part]
    if not present:
        return [f"* {at}.data: required oneof field 'data' must have one initialized field"]
    if len(present) > 1:
        return [f"* {at}.data: oneof field 'data' is already set. Cannot set '{present[1]}'"]
    kind = present[0]
    if kind == "text" and not isinstance(part["text"], str):
        return [f"* {at}.text: Invalid value (expected a string)"]
    if kind in ("functionCall", "functionResponse"):
        item = part[kind]
        if not isinstance(item, Mapping) or not item.get("name"):
            return [f"* {at}.{kind}.name: Name cannot be empty."]
        field = "args" if kind == "functionCall" else "response"
        if field in item and not isinstance(item[field], Mapping):
            return [f"* {at}.{kind}.{field}: Invalid value (expected an object)"]
    if kind == "inlineData":
        data = part["inlineData"]
        if not isinstance(data, Mapping) or not data.get("mimeType") or not data.get("data"):
            return [f"* {at}.inline_data: mime_type and data are required"]
    if kind == "fileData":
        data = part["fileData"]
        if not isinstance(data, Mapping) or not data.get("fileUri"):
            return [f"* {at}.file_data.file_uri: file_uri is required"]
    return []


def _tool_config_problems(body: Mapping[str, Any]) -> list[str]:
    config = body.get("toolConfig")
    calling = config.get("functionCallingConfig") if isinstance(config, Mapping) else None
    if not isinstance(calling, Mapping):
        return []
    problems = []
    mode = calling.get("mode", "AUTO")
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        problems.append(
            f"* GenerateContentRequest.tool_config.function_calling_config.mode: {mode}"
        )
    if calling.get("allowedFunctionNames") and mode != "ANY":
        problems.append(
            "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names:"
            " allowed_function_names is only allowed when mode is ANY."
        )
    return problems


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return "".join(
        part["text"]
        for part in _list(parts)
        if isinstance(part, Mapping) and isinstance(part.get("text"), str)
    )


def _turns(content: Mapping[str, Any]) -> list[Turn]:
    role = "assistant" if content.get("role") == "model" else "user"
    parts = [part for part in _list(content.get("parts")) if isinstance(part, Mapping)]
    if role == "assistant":
        calls = tuple(
            ToolCallRef(call.get("id"), call.get("name"), call.get("args") or {})
            for part in parts
            if isinstance(call := part.get("functionCall"), Mapping)
        )
        return [Turn(role, _content_parts(parts), tool_calls=calls)]
    turns: list[Turn] = []
    pending: list[Mapping[str, Any]] = []
    for part in parts:
        response = part.get("functionResponse")
        if isinstance(response, Mapping):
            if pending:
                turns.append(Turn(role, _content_parts(pending)))
                pending = []
            turns.append(
                Turn("tool", merge_text([_result_text(response)]), tool_call_id=response.get("id"))
            )
        else:
            pending.append(part)
    if pending or not turns:
        turns.append(Turn(role, _content_parts(pending)))
    return turns


def _result_text(response: Mapping[str, Any]) -> str:
    result = response.get("response")
    if isinstance(result, Mapping) and set(result) == {"content"}:
        content = result["content"]
        return content if isinstance(content, str) else json.dumps(content)
    return json.dumps(result)


def _content_parts(parts: list[Mapping[str, Any]]) -> tuple[Part, ...]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part.get("text"), str) and not part.get("thought"):
            out.append(part["text"])
        elif isinstance(inline := part.get("inlineData"), Mapping):
            out.append(Image("base64", str(inline.get("data") or ""), inline.get("mimeType")))
        elif isinstance(file := part.get("fileData"), Mapping):
            out.append(Image("url", str(file.get("fileUri") or "")))
    return merge_text(out)


def _tool(declaration: Any) -> ToolSpec:
    if not isinstance(declaration, Mapping):
        return ToolSpec(None, "", declaration)
    schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
    return ToolSpec(
        declaration.get("name"), declaration.get("description") or "", schema or EMPTY_SCHEMA
    )


def _tool_choice(config: Any, tools: bool) -> str | tuple[str, str | None] | None:
    if not tools:
        return None
    calling = config.get("functionCallingConfig") if isinstance(config, Mapping) else None
    if not isinstance(calling, Mapping):
        return "auto"
    mode = calling.get("mode", "AUTO")
    names = calling.get("allowedFunctionNames")
    if mode == "ANY" and isinstance(names, list) and len(names) == 1:
        return ("function", names[0])
    return _MODES.get(str(mode), repr(dict(calling)))


_CONFIG_NAMES: Final[Mapping[str, str]] = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "stop": "stopSequences",
}


def _response_format(config: Mapping[str, Any]) -> Any:
    mime = config.get("responseMimeType")
    if mime is None:
        return MISSING
    if mime == "application/json":
        schema = config.get("responseJsonSchema", config.get("responseSchema"))
        if schema is None:
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"schema": schema}}
    return {"type": "text"} if mime == "text/plain" else {"mime": mime}


def _openai_tools(tools: Any) -> Any:
    if not isinstance(tools, list):
        return MISSING
    out: list[Any] = []
    for tool in tools:
        declarations = tool.get("functionDeclarations") if isinstance(tool, Mapping) else None
        if not isinstance(declarations, list):
            out.append(tool)
            continue
        for declaration in declarations:
            if not isinstance(declaration, Mapping):
                out.append(declaration)
                continue
            function: dict[str, Any] = {"name": declaration.get("name")}
            if "description" in declaration:
                function["description"] = declaration["description"]
            schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
            if schema is not None:
                function["parameters"] = schema
            out.append({"type": "function", "function": function})
    return out
