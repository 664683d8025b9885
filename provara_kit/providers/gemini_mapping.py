"""OpenAI-shaped requests to Gemini request bodies, and the small readings of its answers.

The request side of :mod:`provara_kit.providers.gemini`: ``contents`` and
``systemInstruction`` from the messages, ``tools`` and ``toolConfig``, and the
``generationConfig``. The answer side kept here is what both the whole-answer and the stream
readers share: the finish-reason table, the usage counts and the tool-call id rule.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
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

__all__ = [
    "FINISH_REASONS",
    "SKIP_SIGNATURE",
    "build_payload",
    "call_id",
    "finish_reason",
    "usage_counts",
]

FINISH_REASONS: Final[Mapping[str, str]] = {
    "FINISH_REASON_UNSPECIFIED": "stop",
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "OTHER": "stop",
    "IMAGE_OTHER": "stop",
    "NO_IMAGE": "stop",
    # The model tried to call a function and failed: no call reaches the client.
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
}
"""Gemini finish reasons as OpenAI finish reasons (``STOP`` with calls is ``tool_calls``)."""

# The numbers of the FinishReason enum, for answers sent with enum-encoding=int.
_FINISH_NUMBERS: Final[Mapping[int, str]] = {
    0: "FINISH_REASON_UNSPECIFIED",
    1: "STOP",
    2: "MAX_TOKENS",
    3: "SAFETY",
    4: "RECITATION",
    5: "OTHER",
    6: "LANGUAGE",
    7: "BLOCKLIST",
    8: "PROHIBITED_CONTENT",
    9: "SPII",
    10: "MALFORMED_FUNCTION_CALL",
    11: "IMAGE_SAFETY",
    12: "UNEXPECTED_TOOL_CALL",
    13: "TOO_MANY_TOOL_CALLS",
}

SKIP_SIGNATURE: Final = "skip_thought_signature_validator"
"""The thought signature Google documents for function calls whose real signature is not
at hand (an OpenAI client sends none back); Gemini 3 models refuse such calls without one."""

_SIGNED_MODELS: Final = re.compile(r"^(?:models/)?gemini-(\d+)")
_TOOL_MODES: Final[Mapping[str, str]] = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def finish_reason(reason: Any, *, has_calls: bool) -> str | None:
    """The OpenAI finish reason for a Gemini one (a name or its enum number)."""
    if reason is None:
        return None
    if isinstance(reason, int) and not isinstance(reason, bool):
        reason = _FINISH_NUMBERS.get(reason, str(reason))
    mapped = FINISH_REASONS.get(str(reason), str(reason).lower())
    if has_calls and mapped == "stop":
        return "tool_calls"
    return mapped


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_counts(metadata: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(input, output)`` billed, from a ``usageMetadata`` object: thinking is billed as
    output, tool-use prompts as input; a side whose counts are all left out is not
    reported (``None``)."""
    prompt = _count(metadata.get("promptTokenCount"))
    tool_prompt = _count(metadata.get("toolUsePromptTokenCount"))
    candidates = _count(metadata.get("candidatesTokenCount"))
    thoughts = _count(metadata.get("thoughtsTokenCount"))
    input_tokens = None if prompt is None else prompt + (tool_prompt or 0)
    output_tokens = (
        None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    )
    return input_tokens, output_tokens


def call_id(response_id: Any, index: int, name: Any) -> str:
    """The id of a ``functionCall`` the API sent without one: the same for the same answer
    (``responseId``), position and name, streamed or not, and unlike any other call's."""
    seed = f"{response_id or ''}\0{index}\0{name or ''}".encode()
    return "call_" + hashlib.sha256(seed).hexdigest()[:24]


# -- requests ----------------------------------------------------------------------------


def build_payload(request: ChatRequest, *, provider: str) -> dict[str, Any]:
    """The ``generateContent`` body for ``request`` (the model and the streaming choice
    travel in the URL)."""
    extra = request.model_extra or {}
    system, contents = _contents(request.messages, _signs_calls(request.model))
    payload: dict[str, Any] = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        payload["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        config = _tool_config(request.tool_choice)
        if config is not None:
            payload["toolConfig"] = {"functionCallingConfig": config}
    elif request.tool_choice is not None:
        _tool_config(request.tool_choice)  # refuse a malformed one all the same
    n = extra.get("n")
    if n is not None and n != 1:
        raise UnsupportedParameterError("n", provider=provider)
    generation = _generation_config(request, extra)
    if generation:
        payload["generationConfig"] = generation
    return payload


def _signs_calls(model: str) -> bool:
    """Whether the model refuses function calls sent back without a thought signature."""
    match = _SIGNED_MODELS.match(model)
    return match is not None and int(match.group(1)) >= 3


def _generation_config(request: ChatRequest, extra: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    for source, target in (
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if extra.get(source) is not None:
            config[target] = extra[source]
    limit = extra.get("max_completion_tokens", request.max_tokens)
    if limit is None:
        limit = request.max_tokens
    if limit is not None:
        config["maxOutputTokens"] = limit
    if request.stop is not None:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    fmt = extra.get("response_format")
    if fmt is not None:
        config.update(_response_format(fmt))
    effort = extra.get("reasoning_effort")
    if effort is not None:
        # "none" turns thinking off; other levels pass as they are, for the API to judge.
        config["thinkingConfig"] = (
            {"thinkingBudget": 0}
            if effort == "none"
            else {"thinkingLevel": effort, "includeThoughts": True}
        )
    return config


def _response_format(fmt: Any) -> dict[str, Any]:
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return {"responseMimeType": "text/plain"}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, Mapping):
            raise ValueError("response_format json_schema needs json_schema.schema")
        return {"responseMimeType": "application/json", "responseJsonSchema": dict(schema)}
    raise ValueError(
        f"response_format type must be 'text', 'json_object' or 'json_schema', got {fmt!r}"
    )


def _declaration(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise ValueError(f"only function tools can be declared to Gemini, got {tool!r:.200}")
    function = tool.get("function") or {}
    if not function.get("name"):
        raise ValueError("a function tool needs 'function.name'")
    declaration: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        declaration["parametersJsonSchema"] = function["parameters"]
    return declaration


def _tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _TOOL_MODES:
            raise ValueError(
                f"tool_choice must be 'auto', 'required', 'none' or a function, got {choice!r}"
            )
        return {"mode": _TOOL_MODES[choice]}
    if choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise ValueError("tool_choice of type 'function' needs 'function.name'")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise ValueError(f"tool_choice must be 'auto', 'required', 'none' or a function: {choice!r}")


def _contents(messages: list[Message], sign_calls: bool) -> tuple[str, list[dict[str, Any]]]:
    """(system text, ``contents``) from OpenAI-style messages."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the results
    for message in messages:
        if message.role in ("system", "developer"):
            text = message.text()
            if text:
                system.append(text)
        elif message.role == "tool":
            response = _function_response(message, names)
            previous = contents[-1] if contents else None
            if previous is not None and previous.get("_results"):
                previous["parts"].append(response)  # results of parallel calls: one turn
            else:
                contents.append({"role": "user", "parts": [response], "_results": True})
        elif message.role == "assistant":
            parts = _parts(message.content)
            calls = [_function_call(call, names) for call in message.tool_calls or ()]
            if calls and sign_calls:
                calls[0]["thoughtSignature"] = SKIP_SIGNATURE
            contents.append({"role": "model", "parts": parts + calls})
        else:
            contents.append({"role": "user", "parts": _parts(message.content)})
    for content in contents:
        content.pop("_results", None)
    return "\n\n".join(system), contents


def _function_response(message: Message, names: Mapping[str, str]) -> dict[str, Any]:
    call = answered_call_id(message)
    name = names.get(call) or message.name
    if not name:
        raise ValueError(
            f"tool message answers tool_call_id {call!r}, which no earlier assistant tool "
            "call has: Gemini needs the function's name"
        )
    return {"functionResponse": {"id": call, "name": name, "response": {"content": message.text()}}}


def _function_call(call: Mapping[str, Any], names: dict[str, str]) -> dict[str, Any]:
    parsed = tool_call(call)
    names[str(parsed.id)] = str(parsed.name)
    return {"functionCall": {"id": parsed.id, "name": parsed.name, "args": parsed.arguments}}


def _parts(content: str | list[ContentPart] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.type == "text":
            if part.text:
                parts.append({"text": part.text})
        elif part.type == "image_url":
            parts.append(_image(part))
        else:
            raise ValueError(f"content parts of type {part.type!r} cannot be sent to Gemini")
    return parts


def _image(part: ContentPart) -> dict[str, Any]:
    url = image_url(part)
    if url.startswith("data:"):
        inline = split_data_url(url)
        return {"inlineData": {"mimeType": inline.media_type, "data": inline.data}}
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    file: dict[str, Any] = {"fileUri": url}
    if guessed:
        file["mimeType"] = guessed
    return {"fileData": file}
