"""Test doubles that ship with the SDK, so tests of providers and gateways need no network.

* :class:`ScriptedUpstream`: a provider API (an httpx transport and an ASGI app) speaking a
  :class:`WireDialect`, for testing adapters against the wire.
* :class:`ScriptedProvider`: a :class:`~provara_kit.Provider` with no HTTP, for testing what
  sits on top of providers.
* :class:`CannedReply`, :class:`StreamFaults` and :class:`ErrorFault`: what they play.
"""

from __future__ import annotations

from provara_kit.testing.body import ScriptedBody
from provara_kit.testing.dialects import (
    DIALECTS,
    AnthropicMessagesDialect,
    Frame,
    OllamaChatDialect,
    OpenAIChatDialect,
    WireDialect,
    get_dialect,
)
from provara_kit.testing.provider import ScriptedProvider
from provara_kit.testing.script import (
    UNSET,
    CannedReply,
    ErrorFault,
    StreamFaults,
    UsageMode,
    echo_reply,
    split_text,
)
from provara_kit.testing.upstream import (
    DEFAULT_REPLY,
    RecordedRequest,
    ScriptedResponse,
    ScriptedUpstream,
)

__all__ = [
    "DEFAULT_REPLY",
    "DIALECTS",
    "UNSET",
    "AnthropicMessagesDialect",
    "CannedReply",
    "ErrorFault",
    "Frame",
    "OllamaChatDialect",
    "OpenAIChatDialect",
    "RecordedRequest",
    "ScriptedBody",
    "ScriptedProvider",
    "ScriptedResponse",
    "ScriptedUpstream",
    "StreamFaults",
    "UsageMode",
    "WireDialect",
    "echo_reply",
    "get_dialect",
    "split_text",
]
