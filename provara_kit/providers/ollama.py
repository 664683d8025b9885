"""Ollama's native chat API (``POST /api/chat``), streamed as newline-delimited JSON.

Requests are OpenAI-shaped :class:`~provara_kit.types.ChatRequest` values; the mappers in
:mod:`provara_kit.providers.ollama_mapping` translate them to Ollama's wire, and the ones at
the bottom of this module read the answers back:

* Sampling parameters travel in ``options`` (``max_tokens`` is ``num_predict``, ``stop`` a
  list); ``response_format`` becomes ``format`` (``"json"`` or the JSON schema);
  ``reasoning_effort`` or Ollama's own ``think`` asks a reasoning model to think. ``keep_alive``
  is the operator's to set on the server, so a client's is not forwarded. Parameters the
  wire has no place for (``user``, ``metadata``, logprobs, ``logit_bias``, a ``tool_choice``
  other than ``auto``) are refused, never silently dropped.
* Images travel as base64 in the message's ``images``; an image by URL is refused (Ollama
  fetches nothing). Tool calls carry their arguments as JSON objects; a tool result names
  the tool it answers (``tool_name``) and the call (``tool_call_id``, which newer servers
  read and older ones ignore).
* A stream is one JSON object per line; it ends cleanly only at the line with
  ``"done": true``. A body that ends without it is an abort, and so is an ``{"error": ...}``
  line inside the stream.
* Usage is on the last line: ``prompt_eval_count`` (input) and ``eval_count`` (output).
  Ollama leaves a count out when it is zero or when the prompt came from its cache: a
  missing count is not reported (the pipeline estimates it), never read as 0.
* Tool calls often come without an id: each gets one derived from the response's
  ``created_at``, its position and its name (:func:`tool_call_id`), so the same body always
  gives the same ids. ``done_reason`` ``stop`` on an answer that called tools is
  ``tool_calls``.

An Ollama-shaped provider subclasses :class:`OllamaProvider` and changes only what is its
own: ``_headers``, ``_completion_path``, ``models_path``, ``supported_params`` /
``unsupported_params`` and ``done_reasons``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import httpx

from provara_kit.errors import MalformedResponseError
from provara_kit.framings import NDJSON
from provara_kit.json_codec import loads
from provara_kit.model_catalog import DEFAULT_MODELS as _CATALOG
from provara_kit.providers.base import (
    KEEP_ALIVE,
    HTTPProvider,
    ParsedCompletion,
    StreamMapper,
)
from provara_kit.providers.ollama_mapping import build_payload
from provara_kit.streaming import Finish, ResponseStarted, StreamDone, UpstreamEvent, UsageUpdate
from provara_kit.types import ChatRequest, ReasoningDelta, TextDelta, ToolCall, ToolCallDelta

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DONE_REASONS",
    "OllamaProvider",
    "tool_call_id",
]

DEFAULT_BASE_URL: Final = "http://localhost:11434"
API_KEY_ENV: Final = "OLLAMA_API_KEY"
"""Optional: a local server takes no key; Ollama Cloud and authenticating proxies do."""
BASE_URL_ENV: Final = "OLLAMA_BASE_URL"

DEFAULT_OLLAMA_MODELS: Final[tuple[str, ...]] = _CATALOG.get("ollama", ("llama3.2", "qwen3"))

DONE_REASONS: Final[Mapping[str, str]] = {
    "stop": "stop",
    "length": "length",
    # A request that only loads or unloads the model ends so: nothing was generated, and
    # nothing went wrong.
    "load": "stop",
    "unload": "stop",
}


def tool_call_id(created_at: Any, position: int, name: Any) -> str:
    """The id of a tool call the wire sent without one: the same for the same response
    (``created_at``), position and name, and unlike any other call's."""
    seed = f"{created_at or ''}|{position}|{name or ''}".encode()
    return "call_" + hashlib.sha256(seed).hexdigest()[:24]


class OllamaProvider(HTTPProvider):
    """Models served by Ollama (a local server, Ollama Cloud, or a proxy in front of one)."""

    wire: ClassVar[str] = "ollama-chat"
    framing = NDJSON
    models_path: ClassVar[str] = "/api/tags"
    supported_params: ClassVar[frozenset[str] | None] = frozenset(
        {
            "frequency_penalty",
            "max_tokens",
            "presence_penalty",
            "response_format",
            "seed",
            "stop",
            "temperature",
            "tools",
            "top_k",
            "top_p",
        }
    )
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {
            "logit_bias",
            "logprobs",
            "metadata",
            "parallel_tool_calls",
            "tool_choice",
            "top_logprobs",
            "user",
        }
    )
    done_reasons: ClassVar[Mapping[str, str]] = DONE_REASONS
    """The wire's ``done_reason`` values as OpenAI finish reasons; others pass unchanged."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "ollama",
        default_models: tuple[str, ...] = DEFAULT_OLLAMA_MODELS,
        stream_timeout: float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        """Talk to the Ollama server at ``base_url`` (no ``/api`` suffix); ``api_key``, when
        given, is sent as ``Authorization: Bearer``.

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

    # -- wire requests ------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        # The JSON body brings its own content-type; a local server wants no key at all.
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _completion_path(self) -> str:
        return "/api/chat"

    def _refuse_unsupported(self, request: ChatRequest) -> None:
        # Ollama always lets the model call any tool, and several at once: asking for just
        # that passes; asking for anything else cannot be expressed.
        choice = request.tool_choice
        parallel = request.passthrough().get("parallel_tool_calls")
        if choice == "auto" or parallel is True:
            request = request.model_copy(
                update={
                    "tool_choice": None if choice == "auto" else choice,
                    "parallel_tool_calls": None if parallel is True else parallel,
                }
            )
        if isinstance(choice, dict) and not (choice.get("function") or {}).get("name"):
            raise ValueError("tool_choice of type 'function' needs 'function.name'")
        super()._refuse_unsupported(request)

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return build_payload(request, stream=stream)

    async def discover_models(self) -> list[str] | None:
        body = await self._get_json(self.models_path)
        entries = body.get("models") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            if isinstance(body, dict) and body.get("error"):
                raise self._error_in_body(json.dumps(body))
            raise MalformedResponseError(
                f"{self.name} {self.models_path} answered with an unexpected body shape: "
                "no model list",
                provider=self.name,
            )
        ids: list[str] = []
        for entry in entries:
            if isinstance(entry, dict):
                model = entry.get("model") or entry.get("name")
                if isinstance(model, str) and model:
                    ids.append(model)
        return ids

    # -- wire responses -----------------------------------------------------------------

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        if not isinstance(body, dict):
            raise TypeError(f"expected a JSON object, got {type(body).__name__}")
        if body.get("error"):
            raise self._error_in_body(json.dumps(body))
        message = body["message"]
        if not isinstance(message, dict):
            raise TypeError("message is not a JSON object")
        calls = [
            ToolCall(id=call_id, name=name, arguments=arguments)
            for call_id, name, arguments in _tool_calls(message, body.get("created_at"), 0)
        ]
        input_tokens, output_tokens = _usage(body)
        return ParsedCompletion(
            text=_string(message.get("content")),
            reasoning=_string(message.get("thinking")),
            finish_reason=_finish_reason(body.get("done_reason"), bool(calls), self.done_reasons),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=body.get("model") if isinstance(body.get("model"), str) else None,
            tool_calls=calls,
        )

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        return _LineMapper(self)


# -- private mappers ----------------------------------------------------------------------


class _LineMapper:
    """Maps one stream's NDJSON lines (a :class:`~provara_kit.providers.base.StreamMapper`)."""

    __slots__ = ("_calls", "_provider", "_started", "done")

    def __init__(self, provider: OllamaProvider) -> None:
        self._provider = provider
        self._started = False
        self._calls = 0  # tool calls seen so far: the next one's index
        self.done = False

    def feed(self, line: str) -> list[UpstreamEvent]:
        data = loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if "error" in data:
            raise self._provider._stream_error(line)
        events: list[UpstreamEvent] = []
        if not self._started:
            self._started = True
            model = data.get("model")
            events.append(ResponseStarted(model=model if isinstance(model, str) else None))
        message = data.get("message")
        if isinstance(message, dict):
            thinking = message.get("thinking")
            if isinstance(thinking, str) and thinking:
                events.append(ReasoningDelta(thinking))
            content = message.get("content")
            if isinstance(content, str) and content:
                events.append(TextDelta(content))
            for call_id, name, arguments in _tool_calls(
                message, data.get("created_at"), self._calls
            ):
                events.append(
                    ToolCallDelta(index=self._calls, id=call_id, name=name, arguments=arguments)
                )
                self._calls += 1
        if data.get("done") is True:
            self.done = True
            input_tokens, output_tokens = _usage(data)
            reason = _finish_reason(
                data.get("done_reason"), self._calls > 0, self._provider.done_reasons
            )
            if reason is not None:
                events.append(Finish(reason))
            events.append(UsageUpdate(input_tokens=input_tokens, output_tokens=output_tokens))
            events.append(StreamDone())
        return events or [KEEP_ALIVE]

    def end(self) -> list[UpstreamEvent]:
        return []  # an Ollama stream always ends with its "done": true line


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(input, output)`` tokens of a final line; a count Ollama left out is ``None``."""
    return _count(data.get("prompt_eval_count")), _count(data.get("eval_count"))


def _finish_reason(reason: Any, called: bool, reasons: Mapping[str, str]) -> str | None:
    if not isinstance(reason, str) or not reason:
        return "tool_calls" if called else None
    finish = reasons.get(reason, reason)
    return "tool_calls" if called and finish == "stop" else finish


def _tool_calls(
    message: Mapping[str, Any], created_at: Any, first: int
) -> list[tuple[str, str | None, str]]:
    """``(id, name, arguments JSON text)`` of each call in ``message``; ``first`` is the
    position of the first one in the whole answer."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    out: list[tuple[str, str | None, str]] = []
    for offset, call in enumerate(calls):
        if not isinstance(call, dict):
            raise ValueError(f"a tool call is not a JSON object: {call!r}")
        function = call.get("function")
        if not isinstance(function, dict):
            raise ValueError("a tool call has no function object")
        name = function.get("name") if isinstance(function.get("name"), str) else None
        given = call.get("id")
        call_id = (
            given
            if isinstance(given, str) and given
            else tool_call_id(created_at, first + offset, name)
        )
        out.append((call_id, name, _arguments(function.get("arguments"))))
    return out


def _arguments(value: Any) -> str:
    """Arguments as JSON text: Ollama sends an object (a proxy may send the text)."""
    if isinstance(value, str):
        return value or "{}"
    if value is None:
        return "{}"
    return json.dumps(value, ensure_ascii=False)
