"""Provara Kit: add an LLM provider to an OpenAI-compatible gateway, and know it behaves."""

from __future__ import annotations

from provara_kit.counters import TokenCounter, TokenizerCounter
from provara_kit.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProvaraError,
    ProviderError,
    ProviderStatusError,
    RateLimitError,
    StreamAbortedError,
    StreamTimeoutError,
    UpstreamServerError,
)
from provara_kit.provider import Provider
from provara_kit.streaming import ChatStream
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    Message,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "ConfigurationError",
    "ContentPart",
    "Message",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProvaraError",
    "ProvaraMeta",
    "Provider",
    "ProviderError",
    "ProviderStatusError",
    "RateLimitError",
    "ReasoningDelta",
    "StreamAbortedError",
    "StreamEvent",
    "StreamTimeoutError",
    "TextDelta",
    "TokenCounter",
    "TokenizerCounter",
    "ToolCall",
    "ToolCallDelta",
    "UpstreamServerError",
    "Usage",
    "__version__",
]
