"""A conversation in one normalized, OpenAI-shaped form, whatever wire it was read from.

A :class:`WireDialect` reads a request body back into a :class:`NormalizedConversation`
(:meth:`~provara_kit.testing.WireDialect.read_conversation`); :func:`read_openai_conversation`
is the reading of an OpenAI Chat Completions body, and of a
:class:`~provara_kit.types.ChatRequest` dumped as one. Two readings compare field by field:
system text, turns (role, text and image parts, tool calls with parsed arguments, the tool
call a result answers, ``name``), tools, tool choice, the parallel-calls flag, the token
limit, stop sequences, ``user`` and ``metadata``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeAlias

__all__ = [
    "EMPTY_SCHEMA",
    "LIMITS",
    "Image",
    "NormalizedConversation",
    "Part",
    "ToolCallRef",
    "ToolSpec",
    "Turn",
    "Unparsed",
    "expressible",
    "image_from_url",
    "merge_text",
    "openai_tool",
    "parallel_flag",
    "parse_arguments",
    "read_openai_conversation",
    "split_tool_results",
]

EMPTY_SCHEMA: Final[Mapping[str, Any]] = {"type": "object", "properties": {}}
"""The parameters of a tool declared without any."""

LIMITS: Final[Mapping[str, str]] = {
    "message-name": "messages carry no `name`",
    "user-in-metadata": "the end user travels as `metadata.user_id`; a request's own "
    "`metadata.user_id` is the wire's field and wins over `user`",
    "no-tool-choice-none": "the wire has no tool_choice `none`: the tools are left out of the "
    "request instead, and a conversation that already holds tool calls (which needs its tools "
    "declared) is refused with a typed error naming tool_choice",
    "image-url": "images travel inline (base64) only: a request with an image by URL is "
    "refused with a typed error before anything is sent",
}
"""What a wire may be unable to express by design, by the name a dialect declares it
under (:attr:`~provara_kit.testing.WireDialect.conversation_limits`)."""


@dataclass(frozen=True, slots=True)
class Image:
    """An image part: ``source`` is ``url`` (``data`` is the URL) or ``base64`` (``data``
    is the payload, ``media_type`` its type)."""

    source: str
    data: str
    media_type: str | None = None

    def __str__(self) -> str:
        shown = self.data if len(self.data) <= 40 else self.data[:37] + "..."
        kind = f"{self.source} {self.media_type}" if self.media_type else self.source
        return f"image ({kind}: {shown})"


Part: TypeAlias = str | Image
"""A content part: text, or an image."""


@dataclass(frozen=True, slots=True)
class Unparsed:
    """Tool-call arguments that are not valid JSON, as sent."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRef:
    """One call an assistant turn made; ``arguments`` is the parsed value."""

    id: str | None
    name: str | None
    arguments: Any


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A declared tool; ``parameters`` is the JSON schema (:data:`EMPTY_SCHEMA` if none)."""

    name: str | None
    description: str
    parameters: Any


@dataclass(frozen=True, slots=True)
class Turn:
    """One non-system message: ``role`` is ``user``, ``assistant`` or ``tool``.

    ``parts`` is the content, adjacent text parts joined and empty ones left out; a
    ``tool`` turn answers ``tool_call_id``.
    """

    role: str
    parts: tuple[Part, ...] = ()
    tool_calls: tuple[ToolCallRef, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        return "".join(part for part in self.parts if isinstance(part, str))

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(part for part in self.parts if isinstance(part, Image))


@dataclass(frozen=True, slots=True)
class NormalizedConversation:
    """A request as an OpenAI client means it.

    ``system`` holds each system and developer text, in order (a wire with one system
    field holds one); ``tool_choice`` is ``auto``, ``required``, ``none``, a function name
    as ``("function", name)``, or ``None`` (no tools); ``parallel_tool_calls`` is ``None``
    without tools; ``max_tokens`` is the output limit however it was named.
    """

    system: tuple[str, ...] = ()
    turns: tuple[Turn, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | tuple[str, str | None] | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    user: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def expressible(
    conversation: NormalizedConversation, limits: Mapping[str, str]
) -> NormalizedConversation:
    """``conversation`` as a wire with ``limits`` (names from :data:`LIMITS`) can carry it."""
    unknown = sorted(set(limits) - set(LIMITS))
    if unknown:
        raise ValueError(f"unknown conversation limits {unknown}; known: {sorted(LIMITS)}")
    changes: dict[str, Any] = {}
    if "message-name" in limits:
        changes["turns"] = tuple(replace(turn, name=None) for turn in conversation.turns)
    if "user-in-metadata" in limits:
        metadata = dict(conversation.metadata)
        if conversation.user is not None:
            metadata.setdefault("user_id", conversation.user)
        changes["metadata"] = metadata
        changes["user"] = None
    if "no-tool-choice-none" in limits and conversation.tool_choice == "none":
        changes.update(tools=(), tool_choice=None, parallel_tool_calls=None)
    return replace(conversation, **changes)


def merge_text(parts: Sequence[Part]) -> tuple[Part, ...]:
    """``parts`` with adjacent text joined and empty text left out."""
    merged: list[Part] = []
    for part in parts:
        if isinstance(part, str):
            if not part:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] += part
                continue
        merged.append(part)
    return tuple(merged)


def read_openai_conversation(body: Mapping[str, Any]) -> NormalizedConversation:
    """The conversation an OpenAI Chat Completions request body holds."""
    system: list[str] = []
    turns: list[Turn] = []
    for message in _list(body.get("messages")):
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        parts = _openai_parts(message.get("content"))
        if role in ("system", "developer"):
            system.append("".join(part for part in parts if isinstance(part, str)))
            continue
        name = message.get("name")
        turns.append(
            Turn(
                role=str(role),
                parts=parts,
                tool_calls=tuple(_openai_call(call) for call in _list(message.get("tool_calls"))),
                tool_call_id=message.get("tool_call_id") if role == "tool" else None,
                name=name if isinstance(name, str) else None,
            )
        )
    tools = tuple(openai_tool(tool) for tool in _list(body.get("tools")))
    choice = _openai_tool_choice(body.get("tool_choice"), bool(tools))
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    stop = body.get("stop")
    user = body.get("user")
    metadata = body.get("metadata")
    return NormalizedConversation(
        system=tuple(system),
        turns=tuple(turns),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel_flag(choice, body.get("parallel_tool_calls") is not False),
        max_tokens=limit if isinstance(limit, int) else None,
        stop=(stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else None,
        user=user if isinstance(user, str) else None,
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def parse_arguments(arguments: Any) -> Any:
    """Tool-call arguments as a value: JSON text parsed (``""``: ``{}``), an object kept."""
    if not isinstance(arguments, str):
        return {} if arguments is None else arguments
    if not arguments.strip():
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return Unparsed(arguments)


def parallel_flag(choice: object, parallel: bool) -> bool | None:
    """Whether parallel calls are allowed, where that means anything (tools that may be
    called: a tool choice other than ``None`` and ``none``)."""
    return None if choice in (None, "none") else parallel


def split_tool_results(
    role: str,
    blocks: Sequence[Any],
    result: Callable[[Any], tuple[Any, Any] | None],
    parts: Callable[[Any], tuple[Part, ...]],
) -> list[Turn]:
    """A wire turn's blocks as OpenAI turns: each tool result a ``tool`` turn, the blocks
    before, between and after them turns of ``role`` (one turn of ``role`` when there is no
    result). ``result`` gives a result block's (content, answered call id), ``None`` for any
    other block; ``parts`` reads content as parts."""
    turns: list[Turn] = []
    pending: list[Any] = []
    for block in blocks:
        answer = result(block)
        if answer is not None:
            if pending:
                turns.append(Turn(role, parts(pending)))
                pending = []
            content, call_id = answer
            turns.append(Turn("tool", parts(content), tool_call_id=call_id))
        else:
            pending.append(block)
    if pending or not turns:
        turns.append(Turn(role, parts(pending)))
    return turns


def image_from_url(url: str) -> Image:
    """An ``image_url`` URL as an image: a ``data:`` URL is its base64 payload."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[len("data:") :].split(";", 1)[0]
        return Image("base64", data, media_type or None)
    return Image("url", url)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _openai_parts(content: Any) -> tuple[Part, ...]:
    if isinstance(content, str):
        return merge_text([content])
    parts: list[Part] = []
    for part in _list(content):
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            if isinstance(url, str):
                parts.append(image_from_url(url))
    return merge_text(parts)


def _openai_call(call: Any) -> ToolCallRef:
    if not isinstance(call, Mapping):
        return ToolCallRef(None, None, Unparsed(repr(call)))
    function: Mapping[str, Any] = call.get("function") or {}
    if not isinstance(function, Mapping):
        function = {}
    return ToolCallRef(
        call.get("id"), function.get("name"), parse_arguments(function.get("arguments"))
    )


def openai_tool(tool: Any) -> ToolSpec:
    """An OpenAI function tool (``{"type": "function", "function": {...}}``) as a spec."""
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(function, Mapping):
        return ToolSpec(None, "", tool)
    return ToolSpec(
        function.get("name"),
        function.get("description") or "",
        function.get("parameters") or EMPTY_SCHEMA,
    )


def _openai_tool_choice(choice: Any, tools: bool) -> str | tuple[str, str | None] | None:
    if not tools:
        return None
    if choice is None:
        return "auto"
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        function = choice.get("function")
        return ("function", function.get("name") if isinstance(function, Mapping) else None)
    return choice if isinstance(choice, str) else repr(choice)
