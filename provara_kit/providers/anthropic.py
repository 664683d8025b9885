"""Anthropic's native Messages API (``POST /v1/messages``), and the base of Messages-shaped ones.

Requests are OpenAI-shaped :class:`~provara_kit.types.ChatRequest` values; the mappers in
:mod:`provara_kit.providers.anthropic_mapping` translate them to the Messages wire, and the
stream mapper at the bottom of this module reads the events back:

* ``system`` and ``developer`` messages become the top-level ``system`` text; OpenAI
  ``tool`` messages become ``tool_result`` blocks in a user turn; assistant ``tool_calls``
  become ``tool_use`` blocks. ``max_tokens`` is required by the API, so it defaults to
  :data:`DEFAULT_MAX_TOKENS`. ``stop`` becomes ``stop_sequences``, ``user`` becomes
  ``metadata.user_id``; parameters the API has no equivalent for (``seed``,
  ``response_format``, penalties, logprobs) are refused, never silently dropped.
* Input tokens are ``input_tokens + cache_creation_input_tokens + cache_read_input_tokens``:
  Anthropic's ``input_tokens`` counts only the uncached part of the prompt, but the whole
  prompt is billed input. (Cache reads and writes are billed at their own rates; pricing
  them at the plain input rate is the approximation the flat price table allows.)
* The stream ends cleanly only at ``message_stop``. An ``event: error`` inside a 200 stream
  (``overloaded_error`` is the usual one) aborts it. Events are told apart by the JSON
  ``type`` field, falling back to the SSE event name; unknown ones are ignored, so new
  event types do not break old adapters.
* Usage in ``message_start`` and ``message_delta`` is cumulative: each report replaces the
  previous one, it is never added to it.

* Counts the upstream left out come from ``POST /v1/messages/count_tokens``
  (:class:`~provara_kit.providers.anthropic_counter.AnthropicTokenCounter`, the provider's
  ``token_counter``): same key and version headers, the messages request's
  ``model``/``system``/``messages``/``tools``.

An Anthropic-shaped provider subclasses :class:`AnthropicProvider` and changes only what is
its own: ``_headers`` (key and version headers), ``_completion_path``, ``discover_models``,
``supported_params`` / ``unsupported_params``, and the class attributes
``default_max_tokens``, ``stop_reasons`` and ``count_tokens_path`` (``None`` for an
endpoint with no token counting).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

import httpx

from provara_kit.errors import MalformedResponseError
from provara_kit.json_codec import loads
from provara_kit.model_catalog import DEFAULT_MODELS as _CATALOG
from provara_kit.providers.anthropic_counter import AnthropicTokenCounter
from provara_kit.providers.anthropic_mapping import (
    finish_reason,
    map_messages,
    map_tool,
    map_tool_choice,
    usage_counts,
)
from provara_kit.providers.base import (
    KEEP_ALIVE,
    HTTPProvider,
    ParsedCompletion,
    StreamMapper,
)
from provara_kit.sse import ServerSentEvent
from provara_kit.streaming import (
    Finish,
    ResponseStarted,
    StreamDone,
    UpstreamEvent,
    UsageUpdate,
)
from provara_kit.types import (
    ChatRequest,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "AnthropicProvider",
    "AnthropicTokenCounter",
]

DEFAULT_BASE_URL: Final = "https://api.anthropic.com/v1"
ANTHROPIC_VERSION: Final = "2023-06-01"
API_KEY_ENV: Final = "ANTHROPIC_API_KEY"
BASE_URL_ENV: Final = "ANTHROPIC_BASE_URL"
DEFAULT_MAX_TOKENS: Final = 4096
"""The Messages API requires ``max_tokens``; this is sent when the request names none."""

DEFAULT_ANTHROPIC_MODELS: Final[tuple[str, ...]] = _CATALOG.get(
    "anthropic", ("claude-sonnet-4-5", "claude-haiku-4-5")
)

# Request fields OpenAI clients send that the Messages API also understands, under the same
# name. The API rejects unknown fields with a 400, so other fields are not forwarded: the
# ones it has no equivalent for are refused (``unsupported_params``), the rest (n,
# stream_options ...) have no effect on a Messages answer.
_PASSTHROUGH: Final = frozenset({"top_p", "top_k", "metadata", "thinking", "service_tier"})

_STOP_REASONS: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class AnthropicProvider(HTTPProvider):
    """Claude models through Anthropic's Messages API (or any endpoint speaking it)."""

    wire: ClassVar[str] = "anthropic-messages"
    supported_params: ClassVar[frozenset[str] | None] = frozenset(
        {
            "max_tokens",
            "metadata",
            "stop",
            "temperature",
            "tool_choice",
            "tools",
            "top_k",
            "top_p",
            "user",
        }
    )
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "presence_penalty",
            "response_format",
            "seed",
            "top_logprobs",
        }
    )
    default_max_tokens: ClassVar[int] = DEFAULT_MAX_TOKENS
    """Sent as ``max_tokens`` when a request names none (the wire requires it)."""
    stop_reasons: ClassVar[Mapping[str, str]] = _STOP_REASONS
    """The wire's stop reasons as OpenAI finish reasons; one not listed passes unchanged."""
    count_tokens_path: ClassVar[str | None] = "/messages/count_tokens"
    """The token-count endpoint under ``base_url`` (``None``: the endpoint has none, and
    missing usage is ``chars / 4``)."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "anthropic",
        default_models: tuple[str, ...] = DEFAULT_ANTHROPIC_MODELS,
        stream_timeout: float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        """Talk to ``base_url`` (which ends in ``/v1``) with ``api_key`` as ``x-api-key``.

        ``transport`` replaces the network (``httpx.MockTransport`` in tests);
        ``stream_timeout`` is the idle limit in seconds (default: from
        ``PROVARA_STREAM_TIMEOUT_MS``); ``pricing`` replaces the global price table.
        """
        super().__init__(
            name=name,
            base_url=base_url,
            api_key=api_key,
            transport=transport,
            default_models=default_models,
            stream_timeout=stream_timeout,
            pricing=pricing,
        )
        if self.count_tokens_path is not None:
            self.token_counter = AnthropicTokenCounter(self, path=self.count_tokens_path)

    # -- wire requests ------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _completion_path(self) -> str:
        return "/messages"

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system, messages = map_messages(request.messages)
        extra = request.passthrough()
        max_tokens = (
            request.max_tokens or extra.get("max_completion_tokens") or self.default_max_tokens
        )
        payload: dict[str, Any] = {
            "model": request.model,
            "max_tokens": max_tokens,
            "messages": messages,
        }
        if system:
            payload["system"] = system
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.stop is not None:
            payload["stop_sequences"] = (
                [request.stop] if isinstance(request.stop, str) else request.stop
            )
        if request.tools:
            payload["tools"] = [map_tool(tool) for tool in request.tools]
            # The API rejects a tool_choice sent without tools; OpenAI tolerates it.
            tool_choice = map_tool_choice(request.tool_choice)
            # With "none" no tool is called, and the API refuses the flag on it.
            if extra.get("parallel_tool_calls") is False and request.tool_choice != "none":
                tool_choice = {
                    **(tool_choice or {"type": "auto"}),
                    "disable_parallel_tool_use": True,
                }
            if tool_choice is not None:
                payload["tool_choice"] = tool_choice
        payload.update({key: value for key, value in extra.items() if key in _PASSTHROUGH})
        if extra.get("user") is not None:
            # OpenAI's end-user id is the Messages API's metadata.user_id.
            payload["metadata"] = {"user_id": extra["user"], **(payload.get("metadata") or {})}
        if stream:
            payload["stream"] = True
        return payload

    async def discover_models(self) -> list[str] | None:
        ids: list[str] = []
        query: dict[str, str] = {"limit": "1000"}
        while True:
            body = await self._get_json(f"/models?{urlencode(query)}")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                if isinstance(body, dict) and body.get("type") == "error":
                    raise self._error_in_body(json.dumps(body))
                raise MalformedResponseError(
                    f"{self.name} /models answered with an unexpected body shape",
                    provider=self.name,
                )
            page = [str(m["id"]) for m in body["data"] if isinstance(m, dict) and m.get("id")]
            ids.extend(page)
            last_id = body.get("last_id") or (page[-1] if page else None)
            if not body.get("has_more") or not last_id or last_id == query.get("after_id"):
                return ids
            query["after_id"] = str(last_id)

    # -- wire responses -----------------------------------------------------------------

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        if not isinstance(body, dict):
            raise TypeError(f"expected a JSON object, got {type(body).__name__}")
        if body.get("type") == "error":
            raise self._error_in_body(json.dumps(body))
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        for block in body["content"]:
            kind = block.get("type")
            if kind == "text":
                text.append(block.get("text") or "")
            elif kind == "thinking":
                reasoning.append(block.get("thinking") or "")
            elif kind == "tool_use":
                calls.append(
                    ToolCall(
                        id=block.get("id"),
                        name=block.get("name"),
                        arguments=json.dumps(block.get("input") or {}, ensure_ascii=False),
                    )
                )
        input_tokens, output_tokens = usage_counts(body.get("usage"))
        return ParsedCompletion(
            text="".join(text),
            reasoning="".join(reasoning),
            finish_reason=finish_reason(body.get("stop_reason"), self.stop_reasons),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            id=body.get("id"),
            model=body.get("model"),
            tool_calls=calls,
        )

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        return _EventMapper(self)


# -- stream mapper ------------------------------------------------------------------------


class _EventMapper:
    """Maps one Messages stream's events (a
    :class:`~provara_kit.providers.base.StreamMapper`)."""

    __slots__ = ("_no_args_yet", "_provider", "_stop_reasons", "done")

    def __init__(self, provider: AnthropicProvider) -> None:
        self._provider = provider
        self._stop_reasons = provider.stop_reasons
        # Tool blocks whose arguments have not streamed yet: a call with no arguments gets
        # "{}" when its block stops, so OpenAI clients can always json.loads them.
        self._no_args_yet: set[int] = set()
        self.done = False

    def feed(self, sse: ServerSentEvent) -> list[UpstreamEvent]:
        data = loads(sse.data)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        kind = data.get("type") or sse.event
        if kind == "message_stop":
            self.done = True
            return [StreamDone()]
        if kind == "error":
            raise self._provider._stream_error(sse.data)
        try:
            return _map_event(kind, data, self._no_args_yet, self._stop_reasons)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{kind} event has an unexpected shape: {exc!r}") from None

    def end(self) -> list[UpstreamEvent]:
        return []  # a Messages stream always ends with message_stop


def _map_event(
    kind: Any, data: dict[str, Any], no_args_yet: set[int], stop_reasons: Mapping[str, str]
) -> list[UpstreamEvent]:
    """Upstream events for one decoded stream event (other than message_stop and error)."""
    if kind == "content_block_delta":
        delta = data["delta"]
        delta_type = delta.get("type")
        if delta_type == "text_delta":
            return [TextDelta(delta.get("text") or "")]
        if delta_type == "thinking_delta":
            return [ReasoningDelta(delta.get("thinking") or "")]
        if delta_type == "input_json_delta":
            partial = delta.get("partial_json") or ""
            if not partial:
                return [KEEP_ALIVE]
            no_args_yet.discard(data["index"])
            return [ToolCallDelta(index=data["index"], arguments=partial)]
        return [KEEP_ALIVE]  # signature_delta, citations_delta, newer delta types
    if kind == "content_block_start":
        block = data["content_block"]
        block_type = block.get("type")
        if block_type == "text":
            return [TextDelta(block.get("text") or "")]
        if block_type == "thinking":
            return [ReasoningDelta(block.get("thinking") or "")]
        if block_type in ("tool_use", "server_tool_use"):
            index = data["index"]
            arguments = ""
            if block.get("input"):
                # Anthropic streams the input as input_json_delta and starts with {}; an
                # endpoint that sends the whole input here sends no deltas for it.
                arguments = json.dumps(block["input"], ensure_ascii=False)
            else:
                no_args_yet.add(index)
            return [
                ToolCallDelta(
                    index=index, id=block.get("id"), name=block.get("name"), arguments=arguments
                )
            ]
        return [KEEP_ALIVE]  # redacted_thinking and other opaque blocks
    if kind == "content_block_stop":
        index = data.get("index")
        if index in no_args_yet:
            no_args_yet.discard(index)
            return [ToolCallDelta(index=index, arguments="{}")]
        return [KEEP_ALIVE]
    if kind == "message_start":
        message = data["message"]
        input_tokens, output_tokens = usage_counts(message.get("usage"))
        return [
            ResponseStarted(id=message.get("id"), model=message.get("model")),
            UsageUpdate(input_tokens=input_tokens, output_tokens=output_tokens),
        ]
    if kind == "message_delta":
        events: list[UpstreamEvent] = []
        reason = finish_reason((data.get("delta") or {}).get("stop_reason"), stop_reasons)
        if reason is not None:
            events.append(Finish(reason))
        input_tokens, output_tokens = usage_counts(data.get("usage"))
        if input_tokens is not None or output_tokens is not None:
            events.append(UsageUpdate(input_tokens=input_tokens, output_tokens=output_tokens))
        return events or [KEEP_ALIVE]
    return [KEEP_ALIVE]  # ping and event types this adapter does not know yet
