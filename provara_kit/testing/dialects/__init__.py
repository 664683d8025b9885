"""Wire dialects: how each provider API looks on the network, for the scripted upstream.

:data:`DIALECTS` maps a wire name (the ``Provider.wire`` of an adapter) to its dialect; add
your own :class:`WireDialect` to it to script a new wire.
"""

from __future__ import annotations

from provara_kit.testing.dialects.anthropic_messages import AnthropicMessagesDialect
from provara_kit.testing.dialects.base import Frame, WireDialect
from provara_kit.testing.dialects.bedrock_converse import BedrockConverseDialect
from provara_kit.testing.dialects.gemini import GeminiDialect
from provara_kit.testing.dialects.ollama_chat import OllamaChatDialect
from provara_kit.testing.dialects.openai_chat import OpenAIChatDialect

__all__ = [
    "DIALECTS",
    "AnthropicMessagesDialect",
    "BedrockConverseDialect",
    "Frame",
    "GeminiDialect",
    "OllamaChatDialect",
    "OpenAIChatDialect",
    "WireDialect",
    "get_dialect",
]

DIALECTS: dict[str, WireDialect] = {
    OpenAIChatDialect.name: OpenAIChatDialect(),
    AnthropicMessagesDialect.name: AnthropicMessagesDialect(),
    GeminiDialect.name: GeminiDialect(),
    OllamaChatDialect.name: OllamaChatDialect(),
    BedrockConverseDialect.name: BedrockConverseDialect(),
}


def get_dialect(dialect: str | WireDialect) -> WireDialect:
    """The dialect registered under ``dialect`` (a dialect object is returned as is)."""
    if isinstance(dialect, WireDialect):
        return dialect
    try:
        return DIALECTS[dialect]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown wire dialect {dialect!r}; known: {known}") from None
