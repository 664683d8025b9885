"""The {{ cookiecutter.provider_name }} adapter, for an Anthropic Messages-shaped API.

Requests are OpenAI-shaped :class:`~provara_kit.types.ChatRequest` values, sent as
``POST /messages``; the mappers at the bottom of this module translate them to the wire and
back:

* ``system`` and ``developer`` messages become the top-level ``system`` text; ``tool``
  messages become ``tool_result`` blocks in a user turn; assistant ``tool_calls`` become
  ``tool_use`` blocks. ``max_tokens`` defaults to :data:`DEFAULT_MAX_TOKENS`; ``user``
  becomes ``metadata.user_id``.
* Input tokens are ``input_tokens`` plus the cache writes and reads, which are billed input.
* The stream ends cleanly only at ``message_stop``; an ``error`` event aborts it. Events are
  told apart by their JSON ``type`` (else the SSE event name); unknown ones are ignored.
* Usage in ``message_start`` and ``message_delta`` is cumulative: each report replaces the
  previous one.

Status mapping, key scrubbing, empty-chunk filtering, abort and timeout detection, token
fallback, pricing and the final ``_provara`` meta event happen in provara-kit's shared
pipeline (:class:`~provara_kit.providers.base.HTTPProvider`), not here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import urlencode

import httpx
from provara_kit.errors import (
    MalformedResponseError,
    StreamAbortedError,
    extract_upstream_message,
    redact,
)
from provara_kit.providers.base import KEEP_ALIVE, HTTPProvider, ParsedCompletion
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
    ContentPart,
    Message,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

__all__ = [
    "API_KEY_ENV",
    "API_VERSION",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODELS",
    "PROVIDER_NAME",
    "{{ cookiecutter.__class }}",
]

PROVIDER_NAME: Final = "{{ cookiecutter.__slug }}"
DEFAULT_BASE_URL: Final = "{{ cookiecutter.__base_url }}"
API_KEY_ENV: Final = "{{ cookiecutter.__env }}_API_KEY"
BASE_URL_ENV: Final = "{{ cookiecutter.__env }}_BASE_URL"
DEFAULT_MODELS: Final[tuple[str, ...]] = (
{%- for model, _, _ in cookiecutter.models | model_prices %}
    "{{ model }}",
{%- endfor %}
)
"""Served before ``discover_models`` has run; each one needs a price in ``pricing.PRICES``."""

# Decide: the version header your API wants, if any (Anthropic's is "2023-06-01").
API_VERSION: Final = "2023-06-01"
# Decide: whether your API requires max_tokens, and what to send when a request has none.
DEFAULT_MAX_TOKENS: Final = 4096
"""Sent when the request names no ``max_tokens``."""

# Decide: which extra OpenAI request fields your API accepts under the same name. Others
# are not sent, since unknown fields usually get a 400.
_PASSTHROUGH: Final = frozenset({"top_p", "top_k", "metadata"})
# Decide: the OpenAI request fields your API has no equivalent for. They are refused with
# UnsupportedParameterError before anything is sent (dropping one silently would change the
# answer); the conformance suite checks both lists (supported_params below).
_UNSUPPORTED: Final = frozenset(
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

# Decide: your API's stop reasons, mapped to OpenAI finish reasons (others pass unchanged).
_STOP_REASONS: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}

_TOOL_CHOICES: Final[Mapping[str, str]] = {"auto": "auto", "required": "any", "none": "none"}


class {{ cookiecutter.__class }}(HTTPProvider):
    """{{ cookiecutter.provider_name }} models through its Messages-shaped API."""

    wire: ClassVar[str] = "{{ cookiecutter.__wire }}"
    # The request parameters this adapter carries to the wire.
    supported_params: ClassVar[frozenset[str] | None] = frozenset(
        {"max_tokens", "stop", "temperature", "tool_choice", "tools", "user"} | _PASSTHROUGH
    )
    unsupported_params: ClassVar[frozenset[str]] = _UNSUPPORTED

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = PROVIDER_NAME,
        default_models: tuple[str, ...] = DEFAULT_MODELS,
        stream_timeout: float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        """Talk to ``base_url`` with ``api_key``.

        ``transport`` replaces the network (a scripted upstream in tests);
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
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if self._api_key:
            # Decide: how your API takes the key. Anthropic's wire sends it as x-api-key;
            # many Messages-shaped endpoints want "authorization: Bearer <key>" instead.
            headers["x-api-key"] = self._api_key
        return headers

    def _completion_path(self) -> str:
        return "/messages"

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system, messages = _map_messages(request.messages)
        extra = request.passthrough()
        max_tokens = request.max_tokens or extra.get("max_completion_tokens") or DEFAULT_MAX_TOKENS
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
            payload["tools"] = [_map_tool(tool) for tool in request.tools]
            tool_choice = _map_tool_choice(request.tool_choice)
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
            # Decide: where your API takes OpenAI's end-user id (Anthropic: metadata.user_id).
            payload["metadata"] = {"user_id": extra["user"], **(payload.get("metadata") or {})}
        if stream:
            payload["stream"] = True
        return payload

    async def discover_models(self) -> list[str] | None:
        # Decide: how your API lists models. This follows Anthropic's GET /models pages
        # (has_more, last_id, after_id); return None if your API cannot list them.
        ids: list[str] = []
        query: dict[str, str] = {"limit": "1000"}
        while True:
            body = await self._get_json(f"/models?{urlencode(query)}")
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                if isinstance(body, dict) and body.get("type") == "error":
                    raise self._error_in_body(json.dumps(body))  # an error sent with a 200
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
            message, error_type = extract_upstream_message(json.dumps(body))
            raise MalformedResponseError(
                f"{self.name} answered 200 with an error body ({error_type}): "
                f"{redact(message, (self._api_key,))}",
                provider=self.name,
            )
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
        input_tokens, output_tokens = _usage(body.get("usage"))
        return ParsedCompletion(
            text="".join(text),
            reasoning="".join(reasoning),
            finish_reason=_finish_reason(body.get("stop_reason")),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            id=body.get("id"),
            model=body.get("model"),
            tool_calls=calls,
        )

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        no_args_yet: set[int] = set()  # tool blocks whose arguments have not streamed yet
        async for sse in events:
            if sse is None:
                yield KEEP_ALIVE
                continue
            data = sse.json()
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            kind = data.get("type") or sse.event
            # Decide: your stream's terminal marker and error event. Yield StreamDone only
            # on a clean end; anything else that stops the stream is an abort.
            if kind == "message_stop":
                yield StreamDone()
                return
            if kind == "error":
                raise self._stream_error(sse.data)
            try:
                mapped = _map_event(kind, data, no_args_yet)
            except (KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{kind} event has an unexpected shape: {exc!r}") from None
            for event in mapped:
                yield event

    def _stream_error(self, data: str) -> StreamAbortedError:
        message, error_type = extract_upstream_message(data)
        detail = f" ({error_type})" if error_type else ""
        return StreamAbortedError(
            f"upstream error inside the stream{detail}: {redact(message, (self._api_key,))}",
            provider=self.name,
        )


# -- private mappers ----------------------------------------------------------------------


def _map_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, wire turns) from OpenAI-style messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            text = message.text()
            if text:
                system.append(text)
        elif message.role == "tool":
            if not message.tool_call_id:
                raise ValueError("a 'tool' message needs the tool_call_id of the call it answers")
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
            content = _map_content(message.content)
            if content:
                result["content"] = content
            previous = turns[-1] if turns else None
            if (
                previous is not None
                and previous["role"] == "user"
                and isinstance(previous["content"], list)
                and all(block.get("type") == "tool_result" for block in previous["content"])
            ):
                previous["content"].append(result)  # results of parallel calls: one turn
            else:
                turns.append({"role": "user", "content": [result]})
        elif message.role == "assistant" and message.tool_calls:
            blocks = _as_blocks(_map_content(message.content))
            blocks.extend(_map_tool_call(call) for call in message.tool_calls)
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": message.role, "content": _map_content(message.content)})
    return "\n\n".join(system), turns


def _map_content(content: str | list[ContentPart] | None) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return [_map_part(part) for part in content]


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)


def _map_part(part: ContentPart) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "text", "text": part.text or ""}
    raw = part.model_dump(exclude_none=True)
    if part.type == "image_url":
        # Decide: whether your API takes images, and in which block shape.
        image = raw.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise ValueError("an image_url content part needs image_url.url")
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            media_type = header[len("data:") :].split(";", 1)[0]
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
        return {"type": "image", "source": {"type": "url", "url": url}}
    return raw  # already a wire block: passed through


def _map_tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    name = function.get("name")
    arguments = function.get("arguments")
    if not call.get("id") or not name:
        raise ValueError("an assistant tool call needs an 'id' and a 'function.name'")
    if isinstance(arguments, dict):
        parsed: Any = arguments
    else:
        try:
            parsed = json.loads(arguments) if arguments else {}
        except ValueError:
            raise ValueError(
                f"tool call {call['id']!r} ({name}) has arguments that are not valid JSON: "
                f"{str(arguments)[:200]!r}"
            ) from None
    if not isinstance(parsed, dict):
        raise ValueError(
            f"tool call {call['id']!r} ({name}) arguments must be a JSON object, "
            f"got {type(parsed).__name__}"
        )
    return {"type": "tool_use", "id": call["id"], "name": name, "input": parsed}


def _map_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return dict(tool)  # a wire tool already
    function = tool.get("function") or {}
    if not function.get("name"):
        raise ValueError("a function tool needs 'function.name'")
    mapped: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        mapped["description"] = function["description"]
    return mapped


def _map_tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise ValueError(
                f"tool_choice must be 'auto', 'required', 'none' or a function, got {choice!r}"
            )
        return {"type": _TOOL_CHOICES[choice]}
    if choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise ValueError("tool_choice of type 'function' needs 'function.name'")
        return {"type": "tool", "name": name}
    return dict(choice)  # the wire's own shape ({"type": "any"} ...)


def _finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return _STOP_REASONS.get(stop_reason, str(stop_reason))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _input_tokens(usage: Mapping[str, Any]) -> int | None:
    """Billed input: uncached + cache writes + cache reads (``None`` if not reported)."""
    # Decide: how your API reports prompt caching; drop the cache fields if it has none.
    uncached = _count(usage.get("input_tokens"))
    if uncached is None:
        return None
    cache_write = _count(usage.get("cache_creation_input_tokens")) or 0
    cache_read = _count(usage.get("cache_read_input_tokens")) or 0
    return uncached + cache_write + cache_read


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None
    return _input_tokens(usage), _count(usage.get("output_tokens"))


def _map_event(kind: Any, data: dict[str, Any], no_args_yet: set[int]) -> list[UpstreamEvent]:
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
                arguments = json.dumps(block["input"], ensure_ascii=False)
            else:
                no_args_yet.add(index)  # a call that never streams arguments gets "{}"
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
        input_tokens, output_tokens = _usage(message.get("usage"))
        return [
            ResponseStarted(id=message.get("id"), model=message.get("model")),
            UsageUpdate(input_tokens=input_tokens, output_tokens=output_tokens),
        ]
    if kind == "message_delta":
        events: list[UpstreamEvent] = []
        reason = _finish_reason((data.get("delta") or {}).get("stop_reason"))
        if reason is not None:
            events.append(Finish(reason))
        input_tokens, output_tokens = _usage(data.get("usage"))
        if input_tokens is not None or output_tokens is not None:
            events.append(UsageUpdate(input_tokens=input_tokens, output_tokens=output_tokens))
        return events or [KEEP_ALIVE]
    return [KEEP_ALIVE]  # ping and event types this adapter does not know yet
