"""OpenAI-compatible Chat Completions: the adapter every path-A provider uses.

OpenAI itself, Fireworks, Together, Groq, DeepSeek, Z.ai, Mistral, OpenRouter, Perplexity
and xAI all speak this wire, with dialect quirks the mapper absorbs:

* ``stream_options.include_usage`` is sent; providers that ignore it send no usage and the
  pipeline estimates it. Usage may also come on the finish chunk, on every chunk as
  ``null``, or under Groq's legacy ``x_groq.usage``.
* Some providers never send ``data: [DONE]`` (Perplexity): the end of the body after a
  chunk with a ``finish_reason`` is a clean end too.
* Errors can arrive inside a 200 stream, as an ``event: error`` (Groq) or a chunk with an
  ``error`` object (OpenRouter): both abort the stream.
* Reasoning arrives as ``reasoning_content`` (DeepSeek, Z.ai), ``reasoning`` (OpenRouter,
  Groq) or as Mistral's ``thinking`` content parts.
* Tool calls stream as fragments keyed by ``index``; a call's id and name are yielded once
  even where the wire repeats them on every fragment (OpenRouter), and calls sent without
  an ``index`` (Mistral) are numbered by their position in the chunk.

Only choice 0 is streamed; requests asking for ``n > 1`` get the first choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from provara_kit.errors import MalformedResponseError
from provara_kit.json_codec import loads
from provara_kit.providers.base import (
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
from provara_kit.types import ChatRequest, ReasoningDelta, TextDelta, ToolCall, ToolCallDelta

__all__ = ["OpenAICompatibleProvider"]

DONE = "[DONE]"


class OpenAICompatibleProvider(HTTPProvider):
    """A provider that speaks OpenAI's Chat Completions API at ``base_url``."""

    wire: ClassVar[str] = "openai-chat"
    # Named fields are sent when set; every other request field is forwarded as is.
    supported_params: ClassVar[frozenset[str] | None] = frozenset(
        {
            "frequency_penalty",
            "max_tokens",
            "presence_penalty",
            "response_format",
            "seed",
            "stop",
            "temperature",
            "tool_choice",
            "tools",
            "top_p",
            "user",
        }
    )
    include_usage: bool = True
    """Whether streams ask for ``stream_options.include_usage``; a subclass for an API that
    refuses the option sets it to False (or passes ``include_usage=False``)."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
        default_models: tuple[str, ...] = (),
        include_usage: bool | None = None,
        extra_headers: Mapping[str, str] | None = None,
        stream_timeout: float | None = None,
        timeout: httpx.Timeout | float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        if include_usage is not None:
            self.include_usage = include_usage
        self._extra_headers = dict(extra_headers or {})
        super().__init__(
            name=name,
            base_url=base_url,
            api_key=api_key,
            transport=transport,
            default_models=default_models,
            stream_timeout=stream_timeout,
            timeout=timeout,
            pricing=pricing,
        )

    # -- wire requests ------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = dict(self._extra_headers)  # the JSON body brings its own content-type
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        return headers

    def _completion_path(self) -> str:
        return "/chat/completions"

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [m.model_dump(exclude_none=True) for m in request.messages],
        }
        for field in ("max_tokens", "temperature", "stop", "tools", "tool_choice"):
            value = getattr(request, field)
            if value is not None:
                payload[field] = value
        payload.update(request.passthrough())
        if stream:
            payload["stream"] = True
            if self.include_usage:
                options = dict(payload.get("stream_options") or {})
                options.setdefault("include_usage", True)
                payload["stream_options"] = options
        else:
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        return payload

    async def discover_models(self) -> list[str] | None:
        body = await self._get_json("/models")
        entries = body.get("data") if isinstance(body, dict) else body
        if not isinstance(entries, list):
            if isinstance(body, dict) and body.get("error"):
                raise self._error_in_body(json.dumps(body))
            raise MalformedResponseError(
                f"{self.name} /models answered with an unexpected body shape: no model list",
                provider=self.name,
            )
        return [str(entry["id"]) for entry in entries if isinstance(entry, dict) and "id" in entry]

    # -- wire responses -----------------------------------------------------------------

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        if isinstance(body, dict) and body.get("error"):
            # OpenRouter and others answer some errors with a 200 and the error object.
            raise self._error_in_body(json.dumps(body))
        choice = body["choices"][0]
        message = choice.get("message") or {}
        text, reasoning = _split_content(message.get("content"))
        reasoning += message.get("reasoning_content") or message.get("reasoning") or ""
        calls = [
            ToolCall(
                id=call.get("id"),
                name=(call.get("function") or {}).get("name"),
                arguments=_arguments((call.get("function") or {}).get("arguments")),
            )
            for call in message.get("tool_calls") or ()
        ]
        legacy = message.get("function_call")
        if legacy:
            calls.append(
                ToolCall(name=legacy.get("name"), arguments=_arguments(legacy.get("arguments")))
            )
        input_tokens, output_tokens = _usage(body.get("usage"))
        return ParsedCompletion(
            text=text,
            reasoning=reasoning,
            finish_reason=choice.get("finish_reason"),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            id=body.get("id"),
            model=body.get("model"),
            tool_calls=calls,
        )

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        return _ChunkMapper(self)


class _ChunkMapper:
    """Maps one stream's chunks (a :class:`~provara_kit.providers.base.StreamMapper`)."""

    __slots__ = ("_provider", "_state", "done")

    def __init__(self, provider: OpenAICompatibleProvider) -> None:
        self._provider = provider
        self._state = _StreamState()
        self.done = False

    def feed(self, sse: ServerSentEvent) -> list[UpstreamEvent]:
        data = sse.data
        if data == DONE:
            self.done = True
            return [StreamDone()]
        if sse.event == "error":
            raise self._provider._stream_error(data)
        chunk = loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"expected a JSON object, got {type(chunk).__name__}")
        if chunk.get("error"):
            raise self._provider._stream_error(data)
        try:
            return _chunk_events(chunk, self._state)
        except (AttributeError, KeyError, TypeError) as exc:
            raise ValueError(f"unexpected chunk shape: {type(exc).__name__}: {exc}") from None

    def end(self) -> list[UpstreamEvent]:
        # A body that ended cleanly after a finish_reason: providers such as Perplexity
        # never send [DONE].
        return [StreamDone()] if self._state.finished else []


class _StreamState:
    """What the mapper remembers across chunks of one stream."""

    __slots__ = ("finished", "started", "tool_ids", "tool_names")

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self.tool_ids: set[int] = set()  # tool call indexes whose id was already yielded
        self.tool_names: set[int] = set()  # ... and whose name was


def _chunk_events(chunk: dict[str, Any], state: _StreamState) -> list[UpstreamEvent]:
    events: list[UpstreamEvent] = []
    if not state.started:
        state.started = True
        events.append(ResponseStarted(id=chunk.get("id"), model=chunk.get("model")))
    for choice in chunk.get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta")
        if delta:
            _delta_events(delta, state, events)
        reason = choice.get("finish_reason")
        if reason:
            state.finished = True
            events.append(Finish(reason))
    usage = chunk.get("usage")
    if not usage and "x_groq" in chunk:
        usage = (chunk["x_groq"] or {}).get("usage")
    if usage:
        input_tokens, output_tokens = _usage(usage)
        events.append(UsageUpdate(input_tokens=input_tokens, output_tokens=output_tokens))
    return events


def _arguments(value: Any) -> str:
    """Tool-call arguments as JSON text; a few wires send an object instead of its text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _split_content(content: Any) -> tuple[str, str]:
    """(text, reasoning) from a string or a list of content parts (Mistral's thinking)."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    text: list[str] = []
    reasoning: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            text.append(part.get("text") or "")
        elif part.get("type") == "thinking":
            thinking = part.get("thinking")
            if isinstance(thinking, str):
                reasoning.append(thinking)
            elif isinstance(thinking, list):
                reasoning.extend(p.get("text") or "" for p in thinking if isinstance(p, dict))
    return "".join(text), "".join(reasoning)


def _delta_events(delta: dict[str, Any], state: _StreamState, events: list[UpstreamEvent]) -> None:
    """Append the events of one choice-0 delta to ``events``."""
    # The common delta, text alone (the first one with the role): nothing else to read. The
    # general path below reads such a delta the same way, so this shortcut is left out of
    # mutation testing: a mutant of its condition only sends the delta the long way round.
    content = delta.get("content")  # pragma: no mutate
    text_only = len(delta) == 1 or (len(delta) == 2 and "role" in delta)  # pragma: no mutate
    if type(content) is str and text_only:  # pragma: no mutate
        if content:
            events.append(TextDelta(content))
        return
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        events.append(ReasoningDelta(reasoning))
    content = delta.get("content")
    if isinstance(content, str):
        if content:
            events.append(TextDelta(content))
    elif content is not None:
        text, thinking = _split_content(content)
        if thinking:
            events.append(ReasoningDelta(thinking))
        if text:
            events.append(TextDelta(text))
    refusal = delta.get("refusal")
    if isinstance(refusal, str) and refusal:
        events.append(TextDelta(refusal))
    for position, call in enumerate(delta.get("tool_calls") or ()):
        function = call.get("function") or {}
        index = call.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = position  # Mistral sends whole calls without an index
        # Some wires (OpenRouter) repeat id and name on every fragment; they are yielded
        # once per call, as clients concatenate whatever a delta carries.
        call_id = call.get("id") or None
        if call_id is not None:
            if index in state.tool_ids:
                call_id = None
            else:
                state.tool_ids.add(index)
        name = function.get("name") or None
        if name is not None:
            if index in state.tool_names:
                name = None
            else:
                state.tool_names.add(index)
        events.append(
            ToolCallDelta(
                index=index, id=call_id, name=name, arguments=_arguments(function.get("arguments"))
            )
        )
