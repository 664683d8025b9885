"""Known-bad adapters for ``request-shape``: what they send is not what the wire expects."""

from __future__ import annotations

from typing import Any

from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.types import ChatRequest
from tests.conformance.case import Case


class DropsZeroTemperature(OpenAICompatibleProvider):
    """``if request.temperature: payload["temperature"] = ...``: a client asking for
    ``temperature=0`` (deterministic answers) gets the provider's default instead."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        if not request.temperature:
            payload.pop("temperature", None)
        return payload


class KnownFieldsOnly(OpenAICompatibleProvider):
    """A hand-written payload builder listing the fields its author knew: ``tool_choice``,
    ``top_p``, ``seed``, ``response_format`` and ``user`` are silently dropped."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        known = {"model", "messages", "max_tokens", "temperature", "stop", "tools"}
        return {k: v for k, v in payload.items() if k in known | {"stream", "stream_options"}}


class StreamFlagOnComplete(OpenAICompatibleProvider):
    """One payload builder for both calls that always sets ``stream: true``: a plain
    completion gets an SSE body back."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return super()._build_payload(request, stream=True)


class KeyInQuery(OpenAICompatibleProvider):
    """Sends the key as ``?key=...`` (a habit from Google's APIs) instead of the
    ``Authorization`` header: the key ends up in every proxy and access log."""

    def _headers(self) -> dict[str, str]:
        return {"content-type": "application/json"}

    def _completion_path(self) -> str:
        return f"/chat/completions?key={self._api_key}"


class StopNotRenamed(AnthropicProvider):
    """Copies OpenAI's ``stop`` field as is: the Messages API calls it
    ``stop_sequences``, so stop sequences never take effect."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        if "stop_sequences" in payload:
            payload["stop"] = payload.pop("stop_sequences")
        return payload


class SystemAsMessage(AnthropicProvider):
    """Leaves the system prompt in ``messages`` with role ``system``: the Messages API
    takes it only as the top-level ``system`` field."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        system = payload.pop("system", None)
        if system:
            payload["messages"].insert(0, {"role": "system", "content": system})
        return payload


class StaleAnthropicVersion(AnthropicProvider):
    """Sends an ``anthropic-version`` date copied from an old beta announcement, which
    the API rejects."""

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "anthropic-version": "2023-01-01"}


class DropsUnsupportedSilently(AnthropicProvider):
    """Declares ``seed`` and ``response_format`` unsupported but drops them without a
    word: a client asking for JSON output gets prose, and no error says why."""

    def _refuse_unsupported(self, request: ChatRequest) -> None:
        return None


CASES: tuple[Case, ...] = (
    Case(
        "request-shape",
        DropsZeroTemperature,
        r"complete with temperature=0\.0: temperature=0\.0 did not arrive: the body has no "
        r"temperature",
    ),
    Case(
        "request-shape",
        KnownFieldsOnly,
        r"tool_choice='required' did not arrive: the body has no tool_choice",
    ),
    Case("request-shape", StreamFlagOnComplete, r"complete: the body asks for a stream"),
    Case("request-shape", KeyInQuery, r"the API key travels in the URL query string"),
    Case("request-shape", StopNotRenamed, r"stop=\[\] did not arrive: the body has no stop"),
    Case(
        "request-shape",
        SystemAsMessage,
        r"complete: the system message reads back as <missing> where the anthropic-messages",
    ),
    Case(
        "request-shape",
        StaleAnthropicVersion,
        r"anthropic-version is '2023-01-01'; the anthropic-messages wire expects '2023-06-01'",
    ),
    Case(
        "request-shape",
        DropsUnsupportedSilently,
        r"complete with seed=0: seed is declared unsupported but was dropped, not refused",
    ),
)
