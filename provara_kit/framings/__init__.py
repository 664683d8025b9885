"""Stream framings: how a streamed body is cut into frames, one decoder per framing.

================  ==========================================  ==============================
framing           frame                                       who streams so
================  ==========================================  ==============================
``SSE``           :class:`~provara_kit.sse.ServerSentEvent`   OpenAI-compatible APIs,
                                                              Anthropic, Gemini with
                                                              ``alt=sse``
``NDJSON``        the text of one line (one JSON value)       Ollama
``JSON_ARRAY``    the text of one array element               Gemini without ``alt=sse``
``EVENT_STREAM``  an :class:`EventStreamMessage` (headers     Amazon Bedrock's
                  and payload; needs botocore, the            ConverseStream
                  ``bedrock`` extra)
================  ==========================================  ==============================

An adapter names its framing in :attr:`HTTPProvider.framing
<provara_kit.providers.base.HTTPProvider.framing>`; a new framing is a
:class:`FrameDecoder` wrapped in a :class:`Framing`.
"""

from __future__ import annotations

from provara_kit.framings.base import FrameDecoder, Framing
from provara_kit.framings.event_stream import (
    EVENT_STREAM,
    EventStreamDecoder,
    EventStreamMessage,
)
from provara_kit.framings.json_array import JSON_ARRAY, JSONArrayDecoder
from provara_kit.framings.ndjson import NDJSON, NDJSONDecoder
from provara_kit.framings.sse import SSE

__all__ = [
    "EVENT_STREAM",
    "JSON_ARRAY",
    "NDJSON",
    "SSE",
    "EventStreamDecoder",
    "EventStreamMessage",
    "FrameDecoder",
    "Framing",
    "JSONArrayDecoder",
    "NDJSONDecoder",
]
