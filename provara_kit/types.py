"""The normalized shapes every adapter speaks: request, response, usage and stream events.

Requests and responses are pydantic models (validated at the edge); stream events are
slotted dataclasses because a busy gateway makes millions of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "CountMethod",
    "Message",
    "ProvaraMeta",
    "ReasoningDelta",
    "Role",
    "StreamEvent",
    "TextDelta",
    "TokenMethod",
    "TokenSource",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]

Role: TypeAlias = Literal["system", "developer", "user", "assistant", "tool"]
TokenSource: TypeAlias = Literal["upstream", "estimated"]
CountMethod: TypeAlias = Literal["count-endpoint", "tokenizer"]
"""How a :class:`~provara_kit.counters.TokenCounter` counts."""
TokenMethod: TypeAlias = Literal["upstream", "count-endpoint", "tokenizer", "chars/4"]
"""What produced a count: the upstream's usage, a counter's method, or ``ceil(chars / 4)``."""


def default_method(source: TokenSource) -> TokenMethod:
    """The method a count has when only its source is known."""
    return "upstream" if source == "upstream" else "chars/4"


class ContentPart(BaseModel):
    """One part of a multi-part message; text parts count, others pass through untouched."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class Message(BaseModel):
    """A chat message; extra OpenAI fields (``tool_calls``, ``name`` ...) pass through."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text: the string content, or its text parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class ChatRequest(BaseModel):
    """An OpenAI-style chat completion request, normalized.

    Fields this model does not name (``top_p``, ``seed``, ``response_format`` ...) are kept
    and passed through by adapters whose wire understands them.
    """

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    def passthrough(self) -> dict[str, Any]:
        """Extra request fields the model does not name, for adapters to forward."""
        return dict(self.model_extra or {})


class Usage(BaseModel):
    """Token counts, each with where it came from (``source``) and what produced it
    (``method``; when not given, ``upstream`` or ``chars/4`` after the source)."""

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    input_tokens_source: TokenSource = "upstream"
    output_tokens_source: TokenSource = "upstream"
    input_tokens_method: TokenMethod = "upstream"
    output_tokens_method: TokenMethod = "upstream"

    @model_validator(mode="before")
    @classmethod
    def _imply_methods(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for side in ("input", "output"):
                if data.get(f"{side}_tokens_method") is None:
                    source = data.get(f"{side}_tokens_source", "upstream")
                    data = {**data, f"{side}_tokens_method": default_method(source)}
        return data

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def estimated(self) -> bool:
        """True when either count is an estimate rather than the provider's own."""
        return "estimated" in (self.input_tokens_source, self.output_tokens_source)


class ToolCall(BaseModel):
    """A complete tool call, arguments as the JSON text the model produced."""

    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True, frozen=True)
class TextDelta:
    """A piece of the assistant's answer. Never empty."""

    text: str
    type: ClassVar[str] = "text"


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    """A piece of the model's visible reasoning (thinking), where the wire carries it."""

    text: str
    type: ClassVar[str] = "reasoning"


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A fragment of tool call ``index``: its id and name when first seen, then arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: ClassVar[str] = "tool_call"


@dataclass(slots=True, frozen=True)
class ProvaraMeta:
    """The ``_provara`` meta event: last event of a stream that finished cleanly.

    ``cost_usd`` is None exactly when the model is unpriced (``priced`` False), never a
    silent 0. Latencies are milliseconds from the moment the request was sent.
    """

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    input_tokens_source: TokenSource
    output_tokens_source: TokenSource
    cost_usd: Decimal | None
    priced: bool
    finish_reason: str | None
    ttft_ms: float | None
    latency_ms: float
    response_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    input_tokens_method: TokenMethod | None = None
    output_tokens_method: TokenMethod | None = None
    type: ClassVar[str] = "_provara"

    def __post_init__(self) -> None:
        # A meta built with sources only gets the methods they imply.
        if self.input_tokens_method is None:
            object.__setattr__(
                self, "input_tokens_method", default_method(self.input_tokens_source)
            )
        if self.output_tokens_method is None:
            object.__setattr__(
                self, "output_tokens_method", default_method(self.output_tokens_source)
            )

    @property
    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            input_tokens_source=self.input_tokens_source,
            output_tokens_source=self.output_tokens_source,
            input_tokens_method=self.input_tokens_method,
            output_tokens_method=self.output_tokens_method,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; cost is a decimal string so no float drift creeps in."""
        return {
            "type": self.type,
            "provider": self.provider,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_tokens_source": self.input_tokens_source,
            "output_tokens_source": self.output_tokens_source,
            "input_tokens_method": self.input_tokens_method,
            "output_tokens_method": self.output_tokens_method,
            "cost_usd": None if self.cost_usd is None else format(self.cost_usd.normalize(), "f"),
            "priced": self.priced,
            "finish_reason": self.finish_reason,
            "ttft_ms": self.ttft_ms,
            "latency_ms": self.latency_ms,
            "response_id": self.response_id,
            **({"extra": self.extra} if self.extra else {}),
        }


StreamEvent: TypeAlias = TextDelta | ReasoningDelta | ToolCallDelta | ProvaraMeta


class ChatResponse(BaseModel):
    """A finished, non-streamed completion (or a stream collected into one)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str | None = None
    provider: str
    model: str
    text: str
    reasoning: str = ""
    finish_reason: str | None
    usage: Usage
    tool_calls: list[ToolCall] = Field(default_factory=list)
    meta: ProvaraMeta
