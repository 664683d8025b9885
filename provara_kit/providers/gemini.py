"""Google's Gemini API, natively (``POST /models/{model}:generateContent``).

Requests are OpenAI-shaped :class:`~provara_kit.types.ChatRequest` values; the mappers in
:mod:`provara_kit.providers.gemini_mapping` translate them to the Gemini wire:

* ``system`` and ``developer`` messages become ``systemInstruction``; the other messages
  become ``contents`` with the roles ``user`` and ``model``. Assistant ``tool_calls`` become
  ``functionCall`` parts, ``tool`` messages ``functionResponse`` parts that name the
  function (looked up from the call they answer) and carry the text as
  ``{"content": ...}``; results of parallel calls share one turn. Function tools become
  ``tools[].functionDeclarations`` (their schema as ``parametersJsonSchema``) and
  ``tool_choice`` becomes ``toolConfig.functionCallingConfig``.
* Sampling goes in ``generationConfig``: ``max_tokens`` (or ``max_completion_tokens``) is
  ``maxOutputTokens``, ``stop`` is ``stopSequences``, ``response_format`` JSON is
  ``responseMimeType`` (with ``responseJsonSchema`` for a schema), ``reasoning_effort`` is
  ``thinkingConfig``. What the wire has no field for (``logit_bias``, ``logprobs``,
  ``user``, ``metadata``, ``n`` above 1, ``parallel_tool_calls`` other than ``true``) is refused,
  never dropped.
* The key travels in the ``x-goog-api-key`` header, never in the URL (URLs get logged).
* Streams are ``:streamGenerateContent?alt=sse`` (SSE, the default, what Google's SDKs
  use) or, with ``stream_framing="json-array"``, ``:streamGenerateContent`` answered as one
  streamed JSON array. Either way there is no terminal marker of the wire's own: a stream
  ends cleanly when the body ends (for a JSON array: after its closing ``]``) after a
  chunk that carried a ``finishReason``, or a ``promptFeedback.blockReason`` for a prompt
  blocked before any candidate. An ``error`` object inside the stream aborts it.
* Usage (``usageMetadata``) is cumulative, the last report wins. Input is
  ``promptTokenCount`` (cached tokens are part of it) plus ``toolUsePromptTokenCount``;
  output is ``candidatesTokenCount`` plus ``thoughtsTokenCount`` (thinking is billed as
  output). A side whose counts are all left out is not reported (the pipeline counts it:
  the API leaves zero counts out, so a blocked answer's output comes back as an estimate
  of nothing, 0).
* Parts with ``thought: true`` are reasoning. ``functionCall`` parts are tool calls; the
  API seldom gives them an ``id``, so one is made from the response id, the call's place
  and its content (the same id for the same answer, streamed or not).
* Counts the upstream left out come from ``POST /models/{model}:countTokens``
  (:class:`GeminiTokenCounter`, the provider's ``token_counter``), with the same key.
* Finish reasons: ``STOP`` is ``stop`` (``tool_calls`` when the answer holds calls),
  ``MAX_TOKENS`` ``length``, the safety family (``SAFETY``, ``RECITATION``,
  ``BLOCKLIST``, ``PROHIBITED_CONTENT``, ``SPII``, ...) ``content_filter``. Integer enums
  (``$alt=json;enum-encoding=int``) are read too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal
from urllib.parse import quote, urlencode

import httpx

from provara_kit.counters import DEFAULT_COUNT_TIMEOUT, TokenCounter
from provara_kit.errors import MalformedResponseError, UnsupportedParameterError
from provara_kit.framings import JSON_ARRAY, SSE, Framing
from provara_kit.json_codec import loads
from provara_kit.model_catalog import DEFAULT_MODELS as _CATALOG
from provara_kit.providers.base import (
    KEEP_ALIVE,
    HTTPProvider,
    ParsedCompletion,
    StreamMapper,
)
from provara_kit.providers.gemini_mapping import (
    build_payload,
    call_id,
    finish_reason,
    usage_counts,
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
    CountMethod,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "GeminiProvider",
    "GeminiTokenCounter",
    "StreamFraming",
]

DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com/v1beta"
API_KEY_ENV: Final = "GEMINI_API_KEY"
BASE_URL_ENV: Final = "GEMINI_BASE_URL"

DEFAULT_GEMINI_MODELS: Final[tuple[str, ...]] = _CATALOG.get(
    "gemini", ("gemini-2.5-flash", "gemini-2.5-pro")
)

StreamFraming = Literal["sse", "json-array"]
"""How streams are asked for: ``alt=sse`` (SSE) or the plain streamed JSON array."""

_FRAMINGS: Final[Mapping[str, Framing[Any]]] = {"sse": SSE, "json-array": JSON_ARRAY}
# What a :countTokens answer of zero holds (the count itself is left out).
_ZERO_COUNT_KEYS: Final = frozenset(
    {"promptTokensDetails", "cachedContentTokenCount", "cacheTokensDetails"}
)


class GeminiProvider(HTTPProvider):
    """Gemini models through the Gemini API (Google AI Studio keys)."""

    wire: ClassVar[str] = "gemini-generate-content"
    supported_params: ClassVar[frozenset[str] | None] = frozenset(
        {
            "frequency_penalty",
            "max_completion_tokens",
            "max_tokens",
            "presence_penalty",
            "reasoning_effort",
            "response_format",
            "seed",
            "stop",
            "temperature",
            "tool_choice",
            "tools",
            "top_k",
            "top_p",
        }
    )
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {"logit_bias", "logprobs", "metadata", "parallel_tool_calls", "top_logprobs", "user"}
    )

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "gemini",
        default_models: tuple[str, ...] = DEFAULT_GEMINI_MODELS,
        stream_framing: StreamFraming = "sse",
        stream_timeout: float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        """Talk to ``base_url`` (which ends in ``/v1beta``) with ``api_key`` sent as
        ``x-goog-api-key``.

        ``stream_framing`` picks how streams are asked for: ``"sse"`` (``alt=sse``, the
        default) or ``"json-array"``. ``transport`` replaces the network
        (``httpx.MockTransport`` in tests); ``stream_timeout`` is the idle limit in
        seconds (default: from ``PROVARA_STREAM_TIMEOUT_MS``); ``pricing`` replaces the
        global price table.
        """
        if stream_framing not in _FRAMINGS:
            raise ValueError(
                f"stream_framing must be 'sse' or 'json-array', got {stream_framing!r}"
            )
        self.stream_framing: StreamFraming = stream_framing
        # The base reads self.framing: an instance attribute makes the choice per instance.
        vars(self)["framing"] = _FRAMINGS[stream_framing]
        super().__init__(
            name=name,
            base_url=base_url,
            api_key=api_key,
            transport=transport,
            default_models=default_models,
            stream_timeout=stream_timeout,
            pricing=pricing,
        )
        self.token_counter = GeminiTokenCounter(self)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return (
            f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r}, "
            f"stream_framing={self.stream_framing!r}, api_key=<{key}>)"
        )

    # -- wire requests ------------------------------------------------------------------

    def _refuse_unsupported(self, request: ChatRequest) -> None:
        # Parallel calls are what Gemini does anyway: only turning them off is refused.
        extra = request.model_extra or {}
        for param in sorted(self.unsupported_params):
            named = param in ChatRequest.model_fields
            value = getattr(request, param) if named else extra.get(param)
            if value is None or (param == "parallel_tool_calls" and value is True):
                continue
            raise UnsupportedParameterError(param, provider=self.name)

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key} if self._api_key else {}

    def _model_path(self, model: str) -> str:
        return "/models/" + quote(model.removeprefix("models/"), safe="-._~")

    def _request_path(self, request: ChatRequest, *, stream: bool) -> str:
        model = self._model_path(request.model)[len("/models/") :]
        if not stream:
            return f"/models/{model}:generateContent"
        query = "?alt=sse" if self.stream_framing == "sse" else ""
        return f"/models/{model}:streamGenerateContent{query}"

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return build_payload(request, provider=self.name)

    async def discover_models(self) -> list[str] | None:
        """The models that serve ``generateContent``, every page of ``GET /models``."""
        ids: list[str] = []
        query: dict[str, str] = {"pageSize": "1000"}
        seen: set[str] = set()
        while True:
            body = await self._get_json(f"/models?{urlencode(query)}")
            if isinstance(body, dict) and body.get("error"):
                raise self._error_in_body(json.dumps(body))
            if not isinstance(body, dict) or not isinstance(body.get("models"), list):
                raise MalformedResponseError(
                    f"{self.name} /models answered with an unexpected body shape",
                    provider=self.name,
                )
            for entry in body["models"]:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    continue
                methods = entry.get("supportedGenerationMethods")
                if isinstance(methods, list) and "generateContent" not in methods:
                    continue
                ids.append(entry["name"].removeprefix("models/"))
            token = body.get("nextPageToken")
            if not isinstance(token, str) or not token or token in seen:
                return ids
            seen.add(token)
            query["pageToken"] = token

    # -- wire responses -----------------------------------------------------------------

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        # A list is a streamed answer read whole: its chunks in order.
        chunks = body if isinstance(body, list) and body else [body]
        reading = _Reading()
        for chunk in chunks:
            if not isinstance(chunk, dict):
                raise TypeError(f"expected a JSON object, got {type(chunk).__name__}")
            if chunk.get("error"):
                raise self._error_in_body(json.dumps(chunk))
            reading.chunk(chunk)
        if reading.finish is None and not reading.blocked:
            raise ValueError("the answer has no candidate and no promptFeedback.blockReason")
        input_tokens, output_tokens = reading.usage
        return ParsedCompletion(
            text="".join(reading.text),
            reasoning="".join(reading.reasoning),
            finish_reason=reading.finish_reason(),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            id=reading.response_id,
            model=reading.model,
            tool_calls=[
                ToolCall(id=id_, name=name, arguments=arguments)
                for id_, name, arguments in reading.calls
            ],
        )

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        return _ChunkMapper(self)


class _Reading:
    """What one answer (a whole body, or the chunks of a stream so far) says."""

    __slots__ = (
        "blocked",
        "calls",
        "finish",
        "model",
        "reasoning",
        "response_id",
        "text",
        "usage",
    )

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[tuple[str, str, str]] = []
        self.finish: Any = None
        self.blocked = False
        self.usage: tuple[int | None, int | None] = (None, None)
        self.model: str | None = None
        self.response_id: str | None = None

    def chunk(self, chunk: Mapping[str, Any], events: list[UpstreamEvent] | None = None) -> None:
        """Read one answer or stream chunk; append its stream events to ``events``."""
        if self.response_id is None and isinstance(chunk.get("responseId"), str):
            self.response_id = chunk["responseId"]
        if self.model is None and isinstance(chunk.get("modelVersion"), str):
            self.model = chunk["modelVersion"]
        candidates = chunk.get("candidates") or ()
        candidate = candidates[0] if candidates else None
        if candidate is not None:
            # Only the first candidate is read: requests never ask for more.
            for part in (candidate.get("content") or {}).get("parts") or ():
                self._part(part, events)
            reason = candidate.get("finishReason")
            if reason is not None and self.finish is None:
                self.finish = reason
                if events is not None:
                    events.append(Finish(self.finish_reason() or "stop"))
        feedback = chunk.get("promptFeedback")
        if (
            candidate is None
            and isinstance(feedback, dict)
            and feedback.get("blockReason")
            and not self.blocked
        ):
            self.blocked = True
            if events is not None:
                events.append(Finish("content_filter"))
        metadata = chunk.get("usageMetadata")
        if isinstance(metadata, dict):
            self.usage = usage_counts(metadata)
            if events is not None:
                events.append(UsageUpdate(*self.usage))

    def _part(self, part: Mapping[str, Any], events: list[UpstreamEvent] | None) -> None:
        text = part.get("text")
        if isinstance(text, str):
            if part.get("thought") is True:
                self.reasoning.append(text)
                if events is not None and text:
                    events.append(ReasoningDelta(text))
            else:
                self.text.append(text)
                if events is not None and text:
                    events.append(TextDelta(text))
            return
        function = part.get("functionCall")
        if isinstance(function, dict):
            index = len(self.calls)
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError("a functionCall part has no name")
            args = function.get("args")
            arguments = json.dumps({} if args is None else args, ensure_ascii=False)
            given = function.get("id")
            id_ = given if isinstance(given, str) and given else None
            id_ = id_ or call_id(self.response_id, index, name)
            self.calls.append((id_, name, arguments))
            if events is not None:
                events.append(ToolCallDelta(index=index, id=id_, name=name, arguments=arguments))

    def finish_reason(self) -> str | None:
        if self.blocked and self.finish is None:
            return "content_filter"
        return finish_reason(self.finish, has_calls=bool(self.calls))


class _ChunkMapper:
    """Maps one stream's chunks, SSE events or JSON-array elements (a
    :class:`~provara_kit.providers.base.StreamMapper`)."""

    __slots__ = ("_provider", "_reading", "_started", "done")

    def __init__(self, provider: GeminiProvider) -> None:
        self._provider = provider
        self._reading = _Reading()
        self._started = False
        self.done = False

    def feed(self, frame: ServerSentEvent | str) -> list[UpstreamEvent]:
        data = frame.data if isinstance(frame, ServerSentEvent) else frame
        if not data.strip():
            return [KEEP_ALIVE]
        chunk = loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"expected a JSON object, got {type(chunk).__name__}")
        if chunk.get("error"):
            raise self._provider._stream_error(data)
        events: list[UpstreamEvent] = []
        reading = self._reading
        try:
            reading.chunk(chunk, events)
        except (AttributeError, KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"unexpected chunk shape: {type(exc).__name__}: {exc}") from None
        if not self._started:
            self._started = True
            events.insert(0, ResponseStarted(id=reading.response_id, model=reading.model))
        return events or [KEEP_ALIVE]

    def end(self) -> list[UpstreamEvent]:
        # No terminal marker on this wire: the end of the body after a finish is clean.
        reading = self._reading
        return [StreamDone()] if reading.finish is not None or reading.blocked else []


class GeminiTokenCounter(TokenCounter):
    """Counts with the Gemini API's ``POST /models/{model}:countTokens`` (free of charge).

    Input is the request as ``generateContent`` would get it (``contents``,
    ``systemInstruction``, ``tools``) wrapped in a ``generateContentRequest``; output is
    the produced text as one ``model`` turn. The answer's ``totalTokens`` is the count.
    """

    method: ClassVar[CountMethod] = "count-endpoint"

    def __init__(self, provider: GeminiProvider, *, timeout: float = DEFAULT_COUNT_TIMEOUT) -> None:
        """Count through ``provider``'s client (its key header and transport)."""
        self._provider = provider
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GeminiTokenCounter(provider={self._provider.name!r})"

    async def count_input(self, request: ChatRequest) -> int:
        payload = self._provider._build_payload(request, stream=False)
        inner = {
            key: payload[key]
            for key in ("contents", "systemInstruction", "tools")
            if key in payload
        }
        model = "models/" + request.model.removeprefix("models/")
        return await self._count(request, {"generateContentRequest": {"model": model, **inner}})

    async def count_output(self, text: str, request: ChatRequest) -> int:
        if not text:
            return 0
        return await self._count(
            request, {"contents": [{"role": "model", "parts": [{"text": text}]}]}
        )

    async def _count(self, request: ChatRequest, body: dict[str, Any]) -> int:
        provider = self._provider
        path = provider._model_path(request.model) + ":countTokens"
        try:
            response = await provider._post(body, stream=False, path=path)
        except httpx.HTTPError as exc:
            raise provider._connection_error(exc) from None
        if response.status_code >= 400:
            raise provider._error(response, response.content)
        answer = provider._decode_json(response.content)
        count = answer.get("totalTokens") if isinstance(answer, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            if isinstance(answer, dict) and answer.keys() <= _ZERO_COUNT_KEYS:
                return 0  # the API leaves a zero count out
            raise MalformedResponseError(
                f"{provider.name} :countTokens answered without a totalTokens count",
                provider=provider.name,
            )
        return count
