"""Amazon Bedrock's Converse and ConverseStream APIs (``POST /model/{modelId}/converse``).

The model travels in the URL (``/converse`` answers whole, ``/converse-stream`` streams AWS
event-stream frames, :data:`~provara_kit.framings.EVENT_STREAM`); the body carries the rest,
built by :mod:`provara_kit.providers.bedrock_mapping`:

* ``system`` and ``developer`` messages become ``system`` text blocks; ``messages`` hold
  content blocks: ``text``, ``image`` (bytes, from ``data:`` URLs only: Converse takes no
  image URL), ``toolUse`` for an assistant's calls and ``toolResult`` in a user turn for
  OpenAI ``tool`` messages (parallel results share one turn).
* ``max_tokens``, ``temperature``, ``top_p`` and ``stop`` go in ``inferenceConfig``; tools
  in ``toolConfig`` (``toolSpec.inputSchema.json``) with ``toolChoice`` ``auto``, ``any``
  (OpenAI ``required``) or ``tool``; ``tool_choice: "none"`` leaves the tools out (the
  wire has no ``none``), and is refused when the conversation already holds tool calls,
  which Converse only takes with the tools declared. What the wire cannot express is
  refused before anything is sent: images by URL, ``parallel_tool_calls``, ``n``,
  ``seed``, penalties, logprobs, ``response_format``, ``user``. ``metadata`` travels as
  ``requestMetadata`` (strings).
* Input tokens are ``inputTokens + cacheReadInputTokens + cacheWriteInputTokens``:
  Converse reports cache reads and writes beside the uncached input, and all of it is
  billed input.
* A stream is ``messageStart``, content blocks (``contentBlockStart`` names a tool call,
  ``contentBlockDelta`` carries ``text``, ``toolUse.input`` fragments or
  ``reasoningContent.text``, ``contentBlockStop``), ``messageStop`` with the stop reason,
  then ``metadata`` with the usage: ``metadata`` is the terminal marker. A body that ends
  cleanly after ``messageStop`` without it is a finished answer whose usage falls back to
  the estimate (marked so); one that ends before ``messageStop`` is aborted. An
  ``exception`` (``throttlingException``, ``modelStreamErrorException`` ...) or ``error``
  message inside the stream aborts it with the upstream's words.
* Errors are ``{"message": ...}`` bodies with the type in the ``x-amzn-errortype`` header;
  the status decides the error class (429 throttling and 5xx are retryable).

Auth (decided by the key, see :mod:`provara_kit.providers.bedrock_auth`): a Bedrock API key
is sent as ``Authorization: Bearer``; AWS credentials, given as
``ACCESS_KEY_ID:SECRET_ACCESS_KEY`` (``:SESSION_TOKEN`` appended for temporary ones) or as a
botocore credentials object, sign every request with SigV4 (service ``bedrock``).
:func:`environment_key` reads the standard variables (``AWS_BEARER_TOKEN_BEDROCK``, else
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``), never an
instance-metadata endpoint.

Model discovery: the foundation-model list lives on the control-plane host
(``bedrock.{region}.amazonaws.com``), which needs ``bedrock:ListFoundationModels``, a
permission runtime keys often lack, and lists models an account may not have enabled;
``discover_models`` returns ``None`` and the configured ``default_models`` stand.

botocore (the ``bedrock`` extra) signs and decodes; it is imported when a provider is
built, so the rest of the kit runs without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final
from urllib.parse import quote

import httpx

from provara_kit.errors import (
    ProviderStatusError,
    StreamAbortedError,
    redact,
)
from provara_kit.framings.event_stream import EVENT_STREAM, EventStreamMessage, require_botocore
from provara_kit.json_codec import loads
from provara_kit.model_catalog import DEFAULT_MODELS as _CATALOG
from provara_kit.providers.base import (
    KEEP_ALIVE,
    HTTPProvider,
    ParsedCompletion,
    StreamMapper,
)
from provara_kit.providers.bedrock_auth import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_REGION,
    SIGNING_SERVICE,
    BedrockSecrets,
    default_base_url,
    environment_key,
    parse_key,
    region_from,
    sign,
)
from provara_kit.providers.bedrock_mapping import build_payload, finish_reason, usage_counts
from provara_kit.streaming import Finish, ResponseStarted, StreamDone, UpstreamEvent, UsageUpdate
from provara_kit.types import (
    ChatRequest,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_REGION",
    "SIGNING_SERVICE",
    "STOP_REASONS",
    "BedrockProvider",
    "BedrockSecrets",
    "default_base_url",
    "environment_key",
    "parse_key",
    "region_from",
]

STOP_REASONS: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
"""Converse stop reasons as OpenAI finish reasons; one not listed passes unchanged."""

DEFAULT_BEDROCK_MODELS: Final[tuple[str, ...]] = _CATALOG.get(
    "bedrock", ("us.anthropic.claude-sonnet-4-5-20250929-v1:0",)
)


class BedrockProvider(HTTPProvider):
    """Models on Amazon Bedrock through the Converse API."""

    wire: ClassVar[str] = "bedrock-converse"
    framing = EVENT_STREAM
    supported_params: ClassVar[frozenset[str] | None] = frozenset(
        {"max_tokens", "max_completion_tokens", "metadata", "stop", "temperature"}
        | {"tool_choice", "tools", "top_p"}
    )
    unsupported_params: ClassVar[frozenset[str]] = frozenset(
        {
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "n",
            "presence_penalty",
            "response_format",
            "seed",
            "parallel_tool_calls",
            "top_logprobs",
            "user",
        }
    )
    stop_reasons: ClassVar[Mapping[str, str]] = STOP_REASONS

    def __init__(
        self,
        *,
        api_key: str | None,
        region: str | None = None,
        base_url: str | None = None,
        credentials: Any = None,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str = "bedrock",
        default_models: tuple[str, ...] = DEFAULT_BEDROCK_MODELS,
        stream_timeout: float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        """Talk to Bedrock in ``region`` (default: :func:`region_from` the environment).

        ``api_key`` is a Bedrock API key or ``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:TOKEN]``
        (:func:`parse_key`); ``credentials`` is a botocore credentials object (refreshed
        ones included, e.g. ``boto3.Session().get_credentials()``), used when ``api_key``
        is not set. ``base_url`` replaces the region's runtime endpoint.
        """
        self._botocore = require_botocore("the bedrock provider")
        self.region = region or region_from()
        self._auth = parse_key(api_key)
        self._credentials = credentials
        super().__init__(
            name=name,
            base_url=base_url or default_base_url(self.region),
            api_key=api_key,
            transport=transport,
            default_models=default_models,
            stream_timeout=stream_timeout,
            pricing=pricing,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, region={self.region!r}, "
            f"base_url={self.base_url!r}, auth=<{self._auth_mode}>)"
        )

    @property
    def _auth_mode(self) -> str:
        if self._auth.bearer:
            return "bearer"
        if self._auth.secret_key or self._credentials is not None:
            return "sigv4"
        return "missing"

    def _secrets(self) -> tuple[str | None, ...]:
        # The parts first: scrubbing the whole key's tail first would cut the secret inside
        # it, and the rest of the secret would then be left.
        secrets = self._auth.secrets
        if self._credentials is not None:
            frozen = self._frozen_credentials()
            secrets += (frozen.secret_key, frozen.token)
        return (*secrets, self._api_key)

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        # The body is {"message": ...}; the error's name is in this header only.
        kind = response.headers.get("x-amzn-errortype")
        if kind and isinstance(error, ProviderStatusError):
            error.error_type = kind.split(":", 1)[0]
        return error

    # -- wire requests ------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "application/json"}
        if self._auth.bearer:
            headers["authorization"] = f"Bearer {self._auth.bearer}"
        return headers

    def _request_path(self, request: ChatRequest, *, stream: bool) -> str:
        model = quote(request.model, safe="")
        return f"/model/{model}/{'converse-stream' if stream else 'converse'}"

    def _frozen_credentials(self) -> Any:
        credentials = self._credentials
        get = getattr(credentials, "get_frozen_credentials", None)
        return get() if get is not None else credentials

    def _finalize_request(self, request: httpx.Request) -> None:
        if self._auth.bearer:
            return
        botocore = self._botocore
        if self._auth.secret_key:
            credentials = botocore.credentials.Credentials(
                self._auth.access_key, self._auth.secret_key, self._auth.token
            )
        elif self._credentials is not None:
            credentials = self._frozen_credentials()
        else:
            return  # no credentials: the upstream answers 403, typed as such
        sign(request, credentials, self.region, botocore)

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return build_payload(request)

    async def discover_models(self) -> list[str] | None:
        """``None``: the model list is on the control-plane host (see the module notes)."""
        return None

    # -- wire responses -----------------------------------------------------------------

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        if not isinstance(body, dict):
            raise TypeError(f"expected a JSON object, got {type(body).__name__}")
        if "output" not in body and isinstance(body.get("message"), str):
            raise self._error_in_body(json.dumps(body))
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        for block in body["output"]["message"]["content"]:
            if "text" in block:
                text.append(block["text"] or "")
            elif "reasoningContent" in block:
                reasoning.append(
                    ((block["reasoningContent"] or {}).get("reasoningText") or {}).get("text") or ""
                )
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(
                    ToolCall(
                        id=use.get("toolUseId"),
                        name=use.get("name"),
                        arguments=json.dumps(use.get("input") or {}, ensure_ascii=False),
                    )
                )
        input_tokens, output_tokens = usage_counts(body.get("usage"))
        return ParsedCompletion(
            text="".join(text),
            reasoning="".join(reasoning),
            finish_reason=finish_reason(body.get("stopReason"), self.stop_reasons),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tool_calls=calls,
        )

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        return _EventMapper(self)

    def _exception_error(self, message: EventStreamMessage) -> StreamAbortedError:
        """The abort for an ``exception`` or ``error`` message inside the stream."""
        if message.message_type == "error":
            kind = message.header(":error-code") or "error"
            text = message.header(":error-message") or message.payload.decode("utf-8", "replace")
        else:
            kind = message.exception_type or "exception"
            text = message.payload.decode("utf-8", "replace")
            try:
                data = loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict) and isinstance(data.get("message"), str):
                text = data["message"]
        return StreamAbortedError(
            f"upstream error inside the stream ({kind}): {redact(text, self._secrets())}",
            provider=self.name,
        )


# -- stream mapper ------------------------------------------------------------------------


class _EventMapper:
    """Maps one ConverseStream's messages (a
    :class:`~provara_kit.providers.base.StreamMapper`)."""

    __slots__ = ("_no_args_yet", "_provider", "_stopped", "done")

    def __init__(self, provider: BedrockProvider) -> None:
        self._provider = provider
        # Tool blocks whose input has not streamed yet: "{}" when the block stops.
        self._no_args_yet: set[int] = set()
        self._stopped = False
        self.done = False

    def feed(self, message: EventStreamMessage) -> list[UpstreamEvent]:
        kind = message.message_type
        if kind in ("exception", "error"):
            raise self._provider._exception_error(message)
        if kind != "event":
            return [KEEP_ALIVE]
        event = message.event_type
        data = loads(message.payload) if message.payload else {}
        if not isinstance(data, dict):
            raise ValueError(f"{event} event: expected a JSON object, got {type(data).__name__}")
        try:
            return self._map(event, data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{event} event has an unexpected shape: {exc!r}") from None

    def _map(self, event: str | None, data: dict[str, Any]) -> list[UpstreamEvent]:
        if event == "contentBlockDelta":
            index = data["contentBlockIndex"]
            delta = data["delta"]
            if "text" in delta:
                return [TextDelta(delta["text"] or "")]
            if "reasoningContent" in delta:
                return [ReasoningDelta(delta["reasoningContent"].get("text") or "")]
            if "toolUse" in delta:
                partial = delta["toolUse"].get("input") or ""
                if not partial:
                    return [KEEP_ALIVE]
                self._no_args_yet.discard(index)
                return [ToolCallDelta(index=index, arguments=partial)]
            return [KEEP_ALIVE]  # citations, signatures and newer delta kinds
        if event == "contentBlockStart":
            tool = data["start"].get("toolUse")
            if not isinstance(tool, dict):
                return [KEEP_ALIVE]
            index = data["contentBlockIndex"]
            self._no_args_yet.add(index)
            return [ToolCallDelta(index=index, id=tool.get("toolUseId"), name=tool.get("name"))]
        if event == "contentBlockStop":
            index = data.get("contentBlockIndex")
            if index in self._no_args_yet:
                self._no_args_yet.discard(index)
                return [ToolCallDelta(index=index, arguments="{}")]
            return [KEEP_ALIVE]
        if event == "messageStart":
            return [ResponseStarted()]
        if event == "messageStop":
            self._stopped = True
            reason = finish_reason(data.get("stopReason"), self._provider.stop_reasons)
            return [Finish(reason)] if reason is not None else [KEEP_ALIVE]
        if event == "metadata":
            self.done = True
            input_tokens, output_tokens = usage_counts(data.get("usage"))
            return [UsageUpdate(input_tokens, output_tokens), StreamDone()]
        return [KEEP_ALIVE]  # event types this adapter does not know yet

    def end(self) -> list[UpstreamEvent]:
        # After messageStop the answer is whole; only the usage report is missing.
        return [StreamDone()] if self._stopped else []
