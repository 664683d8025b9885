"""Converse request bodies read back in OpenAI's terms, the rules the API enforces with a
400, and how a request proves its key (a SigV4 signature, or a Bedrock API key).

The reading inverts what an adapter does: ``system`` text blocks are the system texts,
``toolUse`` blocks an assistant turn's tool calls, each ``toolResult`` block a ``tool`` turn,
``image`` blocks base64 images, ``inferenceConfig`` the limits and ``toolConfig`` the tools
and the tool choice (``any`` is ``required``). The model and the streaming choice travel in
the URL (:func:`url_fields`).

The signature is checked from scratch (hashlib and hmac, after the SigV4 specification),
independently of botocore, which adapters sign with.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote, unquote

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

__all__ = [
    "ROUTE",
    "read_converse_conversation",
    "signature_matches",
    "url_fields",
    "validate_converse_request",
]

ROUTE: Final = re.compile(r"/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream)$")
"""The Converse and ConverseStream paths (under any base path)."""

_CHOICES: Final[Mapping[str, str]] = {"auto": "auto", "any": "required"}
_FIELDS: Final = frozenset(
    {
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "promptVariables",
        "requestMetadata",
        "performanceConfig",
    }
)
_FORMATS: Final = frozenset({"png", "jpeg", "gif", "webp"})
_AUTH: Final = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


def url_fields(path: str) -> dict[str, Any]:
    """``{"model": ..., "stream": ...}`` from a Converse path; ``{}`` for another path."""
    match = ROUTE.search(path)
    if match is None:
        return {}
    return {"model": unquote(match["model"]), "stream": match["op"] == "converse-stream"}


def read_converse_conversation(body: Mapping[str, Any]) -> NormalizedConversation:
    """The conversation a Converse request body holds, in OpenAI's terms."""
    system = tuple(
        block["text"]
        for block in _list(body.get("system"))
        if isinstance(block, Mapping) and isinstance(block.get("text"), str)
    )
    turns: list[Turn] = []
    for message in _list(body.get("messages")):
        if isinstance(message, Mapping):
            turns.extend(_turns(message))
    config = body.get("toolConfig")
    config = config if isinstance(config, Mapping) else {}
    tools = tuple(_tool(tool) for tool in _list(config.get("tools")))
    choice = _tool_choice(config.get("toolChoice"), bool(tools))
    inference = body.get("inferenceConfig")
    inference = inference if isinstance(inference, Mapping) else {}
    limit = inference.get("maxTokens")
    stop = inference.get("stopSequences")
    metadata = body.get("requestMetadata")
    return NormalizedConversation(
        system=system,
        turns=tuple(turns),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel_flag(choice, True),  # the wire cannot forbid them
        max_tokens=limit if isinstance(limit, int) else None,
        stop=tuple(stop) if isinstance(stop, list) else None,
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def validate_converse_request(body: Mapping[str, Any]) -> list[str]:
    """What Converse would answer 400 (``ValidationException``) to in ``body``."""
    problems = [
        f"extraneous key [{field}] is not permitted" for field in body if field not in _FIELDS
    ]
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: at least one message is required"]
    previous_calls: set[str] = set()
    uses_tools = False
    for i, message in enumerate(messages):
        where = f"#/messages/{i}"
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            problems.append(f"{where}/role: expected user or assistant")
            previous_calls = set()
            continue
        role = message["role"]
        if i == 0 and role != "user":
            problems.append("A conversation must start with a user message.")
        content = message.get("content")
        if not isinstance(content, list) or not content:
            problems.append(f"{where}/content: expected minimum item count: 1")
            previous_calls = set()
            continue
        answered: set[str] = set()
        calls: set[str] = set()
        for j, block in enumerate(content):
            at = f"{where}/content/{j}"
            problems += _block_problems(at, block, role)
            if isinstance(block, Mapping) and isinstance(block.get("toolUse"), Mapping):
                uses_tools = True
                calls.add(str(block["toolUse"].get("toolUseId")))
            if isinstance(block, Mapping) and isinstance(block.get("toolResult"), Mapping):
                uses_tools = True
                answered.add(str(block["toolResult"].get("toolUseId")))
        missing = sorted(previous_calls - answered)
        if missing:
            problems.append(
                f"{where}: expected toolResult blocks for the toolUse ids {', '.join(missing)} "
                "of the previous turn"
            )
        previous_calls = calls
    config = body.get("toolConfig")
    if uses_tools and not isinstance(config, Mapping):
        problems.append("The toolConfig field must be defined when using toolUse and toolResult")
    if isinstance(config, Mapping):
        problems += _tool_config_problems(config)
    return problems


def signature_matches(
    key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> bool:
    """Whether the request carries a SigV4 signature made with ``key``
    (``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]``) over this very method, path,
    query, signed headers and body, for the ``bedrock`` service. ``headers`` are
    lower-cased."""
    access, _, rest = key.partition(":")
    secret, _, token = rest.partition(":")
    match = _AUTH.match(headers.get("authorization", "").strip())
    if match is None:
        return False
    scope = match["credential"].split("/")
    if len(scope) != 5 or scope[0] != access or scope[3:] != ["bedrock", "aws4_request"]:
        return False
    signed = match["signed"].split(";")
    stamp = headers.get("x-amz-date", "")
    if "host" not in signed or "x-amz-date" not in signed or stamp[:8] != scope[1]:
        return False
    if token and (
        headers.get("x-amz-security-token") != token or "x-amz-security-token" not in signed
    ):
        return False
    if any(name not in headers for name in signed):
        return False
    canonical = "\n".join(
        [
            method.upper(),
            quote(path or "/", safe="/~"),
            _canonical_query(query),
            "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed),
            match["signed"],
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            stamp,
            "/".join(scope[1:]),
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    signing_key = f"AWS4{secret}".encode()
    for part in scope[1:]:
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match["signature"])


def _canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, v in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def _block_problems(at: str, block: Any, role: str) -> list[str]:
    if not isinstance(block, Mapping) or len(block) != 1:
        return [f"{at}: a content block holds exactly one of text, image, toolUse, toolResult"]
    kind, value = next(iter(block.items()))
    if kind == "text":
        return [] if isinstance(value, str) and value.strip() else [f"{at}/text: blank text"]
    if kind == "image":
        source = value.get("source") if isinstance(value, Mapping) else None
        if not isinstance(value, Mapping) or value.get("format") not in _FORMATS:
            return [f"{at}/image/format: expected png, jpeg, gif or webp"]
        if not isinstance(source, Mapping) or not source.get("bytes"):
            return [f"{at}/image/source: expected bytes"]
        return []
    if kind == "toolUse":
        if role != "assistant":
            return [f"{at}: toolUse blocks belong to assistant turns"]
        if not isinstance(value, Mapping) or not isinstance(value.get("input"), Mapping):
            return [f"{at}/toolUse/input: expected an object"]
        return (
            [] if value.get("toolUseId") and value.get("name") else [f"{at}/toolUse: id and name"]
        )
    if kind == "toolResult":
        if role != "user":
            return [f"{at}: toolResult blocks belong to user turns"]
        if not isinstance(value, Mapping) or not value.get("toolUseId"):
            return [f"{at}/toolResult/toolUseId: required"]
        return []
    return [f"{at}: extraneous key [{kind}] is not permitted"]


def _tool_config_problems(config: Mapping[str, Any]) -> list[str]:
    tools = config.get("tools")
    if not isinstance(tools, list) or not tools:
        return ["toolConfig.tools: expected minimum item count: 1"]
    problems = []
    for i, tool in enumerate(tools):
        spec = tool.get("toolSpec") if isinstance(tool, Mapping) else None
        schema = spec.get("inputSchema") if isinstance(spec, Mapping) else None
        if not isinstance(spec, Mapping) or not spec.get("name"):
            problems.append(f"toolConfig.tools.{i}.toolSpec.name: required")
        elif not isinstance(schema, Mapping) or not isinstance(schema.get("json"), Mapping):
            problems.append(f"toolConfig.tools.{i}.toolSpec.inputSchema.json: required")
    choice = config.get("toolChoice")
    if choice is not None and (
        not isinstance(choice, Mapping)
        or len(choice) != 1
        or next(iter(choice)) not in ("auto", "any", "tool")
    ):
        problems.append(f"toolConfig.toolChoice: expected one of auto, any, tool, got {choice!r}")
    return problems


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _parts(blocks: Any) -> tuple[Part, ...]:
    parts: list[Part] = []
    for block in _list(blocks):
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif isinstance(block.get("image"), Mapping):
            image = block["image"]
            source = image.get("source") if isinstance(image.get("source"), Mapping) else {}
            parts.append(
                Image("base64", str(source.get("bytes") or ""), f"image/{image.get('format')}")
            )
    return merge_text(parts)


def _turns(message: Mapping[str, Any]) -> list[Turn]:
    """One wire turn as OpenAI messages: a user turn's tool results are ``tool`` turns."""
    role = str(message.get("role"))
    content = _list(message.get("content"))
    if role == "assistant":
        calls = tuple(
            ToolCallRef(use.get("toolUseId"), use.get("name"), use.get("input"))
            for block in content
            if isinstance(block, Mapping) and isinstance(use := block.get("toolUse"), Mapping)
        )
        return [Turn(role, _parts(content), tool_calls=calls)]
    return split_tool_results(role, content, _tool_result, _parts)


def _tool_result(block: Any) -> tuple[Any, Any] | None:
    result = block.get("toolResult") if isinstance(block, Mapping) else None
    if isinstance(result, Mapping):
        return result.get("content"), result.get("toolUseId")
    return None


def _tool(tool: Any) -> ToolSpec:
    spec = tool.get("toolSpec") if isinstance(tool, Mapping) else None
    if not isinstance(spec, Mapping):
        return ToolSpec(None, "", tool)
    schema = spec.get("inputSchema")
    parameters = schema.get("json") if isinstance(schema, Mapping) else None
    return ToolSpec(spec.get("name"), spec.get("description") or "", parameters or EMPTY_SCHEMA)


def _tool_choice(choice: Any, tools: bool) -> str | tuple[str, str | None] | None:
    if not tools:
        return None
    if choice is None:
        return "auto"
    if not isinstance(choice, Mapping) or len(choice) != 1:
        return repr(choice)
    kind, value = next(iter(choice.items()))
    if kind == "tool":
        return ("function", value.get("name") if isinstance(value, Mapping) else None)
    return _CHOICES.get(kind, repr(dict(choice)))
