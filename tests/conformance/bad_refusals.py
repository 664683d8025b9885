"""Known-bad adapters for ``request-refusals``: broken requests crashed on, or refused
without saying why."""

from __future__ import annotations

from typing import Any

from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.types import ChatRequest
from tests.conformance.case import Case


class IndexesToolCallId(AnthropicProvider):
    """Reads ``message.model_dump()["tool_call_id"]`` while mapping tool results: a tool
    message without one raises ``KeyError`` from inside the mapper, which a gateway can
    only answer with a 500."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        for message in request.messages:
            if message.role == "tool":
                _ = {k: v for k, v in message.model_dump().items() if v is not None}["tool_call_id"]
        return super()._build_payload(request, stream=stream)


class VagueRefusals(AnthropicProvider):
    """Wraps every mapping problem in ``ValueError("invalid request")``: the client learns
    that something is wrong, not what."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        try:
            return super()._build_payload(request, stream=stream)
        except ValueError:
            raise ValueError("invalid request") from None


CASES: tuple[Case, ...] = (
    Case(
        "request-refusals",
        IndexesToolCallId,
        r"a tool result without its tool_call_id \(complete\): crashed with KeyError before "
        r"sending",
    ),
    Case(
        "request-refusals",
        VagueRefusals,
        r"an image_url part without a url \(complete\): refused with 'invalid request', "
        r"which does not name the problem",
    ),
)
