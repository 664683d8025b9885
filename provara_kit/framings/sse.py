"""Server-Sent Events as a framing: frames are :class:`~provara_kit.sse.ServerSentEvent`."""

from __future__ import annotations

from provara_kit.framings.base import Framing
from provara_kit.sse import ServerSentEvent, SSEDecoder

__all__ = ["SSE"]

SSE: Framing[ServerSentEvent] = Framing("sse", "text/event-stream", SSEDecoder)
"""Server-Sent Events (WHATWG), as OpenAI-compatible and Anthropic APIs stream."""
