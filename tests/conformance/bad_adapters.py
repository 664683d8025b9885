"""Known-bad adapters: each one makes one mistake adapter authors really make.

Every class is a small subclass of a real adapter (or the real adapter under a broken
target configuration) whose docstring names the bug. ``test_checks_catch_bad_adapters``
proves that some conformance check fails on each of them, for the right reason, while the
unbroken parent passes the same check.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from conformance import ConformanceTarget
from provara_kit.accounting import build_meta
from provara_kit.errors import (
    AuthenticationError,
    OverloadedError,
    ProviderStatusError,
    StreamAbortedError,
    UpstreamServerError,
    error_from_response,
)
from provara_kit.provider import Provider
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.base import HTTPProvider, ParsedCompletion, sse_events
from provara_kit.providers.bedrock import BedrockProvider
from provara_kit.providers.ollama import OllamaProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.sse import ServerSentEvent, SSEDecoder
from provara_kit.streaming import ChatStream, Finish, StreamDone, UpstreamEvent, UsageUpdate
from provara_kit.testing import CannedReply, WireDialect, get_dialect
from provara_kit.types import ChatRequest, ChatResponse, ProvaraMeta, StreamEvent, TextDelta

NAME = "acme"
MODEL = "acme-large"
UNPRICED_MODEL = "acme-preview"
PREFIXED_MODEL = "acme-labs/acme-large"
PRICING: Mapping[str, tuple[str, str]] = {
    "acme/acme-large": ("3", "15"),
    "acme/acme-small": ("0.25", "1.25"),
    "acme/acme-labs/acme-large": ("3", "15"),
}
STALE_PRICING: Mapping[str, tuple[str, str]] = {"acme/acme-large": ("2.5", "10")}
GOOD_ADAPTERS: tuple[type[HTTPProvider], ...] = (
    OpenAICompatibleProvider,
    AnthropicProvider,
    BedrockProvider,
    OllamaProvider,
)


def make_target(
    adapter: type[HTTPProvider],
    *,
    models: tuple[str, ...] = (MODEL,),
    pricing: Mapping[str, Any] = PRICING,
    fixtures_dir: Path | None = None,
) -> ConformanceTarget:
    """A target named ``acme`` serving ``models``, built with ``adapter``, priced by ``pricing``.

    The adapter gets the same table as the suite, as an operator's configuration would
    give both; a bad adapter may still ignore it.
    """

    def factory(
        *,
        api_key: str | None,
        base_url: str | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Provider:
        return adapter(
            name=NAME,
            api_key=api_key,
            base_url=base_url or "https://acme.test/v1",
            transport=transport,
            default_models=models,
            pricing=pricing,
        )

    return ConformanceTarget(
        name=NAME,
        factory=factory,
        dialect=get_dialect(adapter.wire),
        models=models,
        pricing=pricing,
        adapter=f"{adapter.__module__}.{adapter.__qualname__}",
        fixtures_dir=fixtures_dir,
    )


TOOL_REPLY = CannedReply(
    (),
    model=MODEL,
    finish_reason="tool_calls",
    reasoning=("Let me", " think."),
    tool_calls=(
        ("call_a", "get_weather", '{"city": "Lisbon"}'),
        ("call_b", "get_time", '{"zone": "Europe/Lisbon"}'),
    ),
    argument_pieces=3,
)
"""A reasoning model's parallel tool calls, arguments in fragments (a second recording)."""


def write_recording(folder: Path, wire: str = "openai-chat") -> Path:
    """A recorded streamed exchange (as ``--live --record`` writes it) for the
    ``replay-fixtures`` check: a clean answer, role-only first chunk included. With
    ``wire="openai-chat"`` a second recording holds :data:`TOOL_REPLY`."""
    if wire == "openai-chat":
        _write_exchange(folder, "stream-tools", get_dialect(wire), TOOL_REPLY)
    return _write_exchange(
        folder, "stream-hello", get_dialect(wire), CannedReply(("Hello", " there"), model=MODEL)
    )


def _write_exchange(folder: Path, name: str, dialect: WireDialect, reply: CannedReply) -> Path:
    body = b"".join(dialect.render_stream(reply))
    exchange = {
        "request": {
            "method": "POST",
            "path": dialect.completion_path,
            "body": {"model": MODEL, "stream": True},
        },
        "response": {
            "status": 200,
            "headers": {"content-type": "text/event-stream; charset=utf-8"},
            "body": body.decode("utf-8"),
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.fixture.json"
    path.write_text(json.dumps({"provider": NAME, "exchanges": [exchange]}), encoding="utf-8")
    return path


def good_parent(adapter: type[HTTPProvider]) -> type[HTTPProvider]:
    """The real adapter a bad one derives from."""
    return next(cls for cls in adapter.__mro__ if cls in GOOD_ADAPTERS)


def _restream(inner: ChatStream, events: AsyncGenerator[StreamEvent, None]) -> ChatStream:
    """A stream of ``events`` that owns (and closes) ``inner``."""

    async def owned() -> AsyncGenerator[StreamEvent, None]:
        async with inner:
            try:
                async for event in events:
                    yield event
            finally:
                await events.aclose()

    return ChatStream(owned())


class _MetaRewriter(HTTPProvider):
    """Shared plumbing for bugs in how the meta is filled: ``_meta`` rewrites the meta of
    both ``complete`` and ``complete_stream``."""

    def _meta(self, meta: ProvaraMeta, request: ChatRequest, text: str) -> ProvaraMeta:
        raise NotImplementedError

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)

        async def events() -> AsyncGenerator[StreamEvent, None]:
            text: list[str] = []
            async for event in inner:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                elif isinstance(event, ProvaraMeta):
                    event = self._meta(event, request, "".join(text))
                yield event

        return _restream(inner, events())

    async def complete(self, request: ChatRequest) -> ChatResponse:
        response = await super().complete(request)
        meta = self._meta(response.meta, request, response.text)
        return response.model_copy(update={"meta": meta, "usage": meta.usage})


# -- stream content ------------------------------------------------------------------------


class ForwardsEmptyFirstChunk(OpenAICompatibleProvider):
    """First-chunk fallback done wrong: forwards the role-only first chunk's ``content: ""``
    so the client "sees the stream start", bypassing the pipeline's filter."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)

        async def events() -> AsyncGenerator[StreamEvent, None]:
            yield TextDelta("")
            async for event in inner:
                yield event

        return _restream(inner, events())


class ForwardsKeepAlives(OpenAICompatibleProvider):
    """Hand-rolls its stream loop instead of using the pipeline, and passes through every
    upstream event it does not book-keep: role-only chunks (``ResponseStarted``) and
    keep-alive comments reach the client as if they were content."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        upstream = self._upstream_events(request, self._build_payload(request, stream=True))

        async def events() -> AsyncGenerator[Any, None]:
            started = time.perf_counter()
            usage = UsageUpdate()
            finish: str | None = None
            chars = 0
            try:
                async for event in upstream:
                    if isinstance(event, StreamDone):
                        yield build_meta(
                            provider=self.name,
                            request=request,
                            input_tokens=usage.input_tokens,
                            output_tokens=usage.output_tokens,
                            output_chars=chars,
                            finish_reason=finish,
                            started=started,
                            first_token_at=None,
                            pricing=self._pricing,
                        )
                        return
                    if isinstance(event, UsageUpdate):
                        usage = event
                    elif isinstance(event, Finish):
                        finish = event.reason
                    else:
                        chars += len(getattr(event, "text", ""))
                        yield event
            finally:
                await upstream.aclose()
            raise StreamAbortedError("no terminal marker", provider=self.name)

        return ChatStream(events())


class DecodesEachNetworkChunk(OpenAICompatibleProvider):
    """Reads the SSE body itself and decodes every network chunk on its own
    (``chunk.decode("utf-8", "replace")``): a character split across two reads turns
    into U+FFFD, so the text depends on how the bytes happened to arrive."""

    async def _upstream_events(
        self, request: ChatRequest, payload: dict[str, Any]
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async with self._open_stream(payload) as response:
            mapped = self._map_stream(_per_chunk_sse(response), request)
            try:
                async for event in mapped:
                    yield event
            finally:
                await mapped.aclose()


async def _per_chunk_sse(
    response: httpx.Response,
) -> AsyncGenerator[ServerSentEvent | None, None]:
    decoder = SSEDecoder()
    async for chunk in response.aiter_bytes():
        events = decoder.feed(chunk.decode("utf-8", "replace").encode("utf-8"))
        if not events:
            yield None
        for event in events:
            yield event


class AsciiOnly(OpenAICompatibleProvider):
    """ "Sanitises" the text for a legacy log pipeline with
    ``text.encode("ascii", "replace")``: every non-ASCII character becomes ``?``."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            if isinstance(event, TextDelta):
                event = TextDelta(_ascii(event.text))
            yield event

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        parsed.text = _ascii(parsed.text)
        return parsed


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


# -- the meta event ------------------------------------------------------------------------


class ForgetsMeta(OpenAICompatibleProvider):
    """Strips the ``_provara`` event "because the OpenAI SDK does not know it": the gateway
    can no longer tell a finished stream from a cut one, nor bill it."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)

        async def events() -> AsyncGenerator[StreamEvent, None]:
            async for event in inner:
                if not isinstance(event, ProvaraMeta):
                    yield event

        return _restream(inner, events())


class EmitsTwoMetas(AnthropicProvider):
    """Emits a meta when ``message_delta`` brings the usage and another at ``message_stop``
    (here: the pipeline's meta, twice), so the gateway bills the request twice."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)

        async def events() -> AsyncGenerator[StreamEvent, None]:
            async for event in inner:
                if isinstance(event, ProvaraMeta):
                    yield event
                yield event

        return _restream(inner, events())


class MetaFirst(OpenAICompatibleProvider):
    """Buffers the whole answer and sends the meta first "so billing starts early": the
    meta is no longer the last event, and nothing reaches the client until the end."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)

        async def events() -> AsyncGenerator[StreamEvent, None]:
            buffered = [event async for event in inner]
            metas = [e for e in buffered if isinstance(e, ProvaraMeta)]
            for event in metas + [e for e in buffered if not isinstance(e, ProvaraMeta)]:
                yield event

        return _restream(inner, events())


class MetaAfterAbort(OpenAICompatibleProvider):
    """Swallows the stream-aborted error "to end the client's stream gracefully" and sends
    a meta for what arrived: a cut stream now looks finished and gets billed."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)

        async def events() -> AsyncGenerator[StreamEvent, None]:
            started = time.perf_counter()
            chars = 0
            try:
                async for event in inner:
                    chars += len(getattr(event, "text", ""))
                    yield event
            except StreamAbortedError:
                yield build_meta(
                    provider=self.name,
                    request=request,
                    input_tokens=None,
                    output_tokens=None,
                    output_chars=chars,
                    finish_reason=None,
                    started=started,
                    first_token_at=None,
                    pricing=self._pricing,
                )

        return _restream(inner, events())


class StripsVendorPrefix(_MetaRewriter, OpenAICompatibleProvider):
    """Reports the model without its vendor prefix (``acme-labs/acme-large`` as
    ``acme-large``), so analytics and pricing no longer match the requested model."""

    def _meta(self, meta: ProvaraMeta, request: ChatRequest, text: str) -> ProvaraMeta:
        return dataclasses.replace(meta, model=meta.model.rsplit("/", 1)[-1])


class UnpricedCostsZero(_MetaRewriter, OpenAICompatibleProvider):
    """``cost = price.cost(...) if price else Decimal(0)``: an unpriced model is reported
    priced at $0, the silent zero that breaks analytics rollups."""

    def _meta(self, meta: ProvaraMeta, request: ChatRequest, text: str) -> ProvaraMeta:
        if meta.priced:
            return meta
        return dataclasses.replace(meta, priced=True, cost_usd=Decimal(0))


class StalePriceTable(OpenAICompatibleProvider):
    """Ships its own copy of the price table, which went stale: its costs disagree with
    the gateway's ``MODEL_PRICING``."""

    def __init__(self, **options: Any) -> None:
        options["pricing"] = STALE_PRICING
        super().__init__(**options)


class StopReasonAlwaysStop(AnthropicProvider):
    """Maps every Anthropic ``stop_reason`` to ``"stop"`` in streams ("the gateway only
    needs to know it stopped"): tool calls and truncation look like normal answers."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            yield Finish("stop") if isinstance(event, Finish) else event


class RawStopReason(AnthropicProvider):
    """Copies Anthropic's ``stop_reason`` through unmapped in ``complete``: clients get
    ``end_turn`` where the OpenAI wire says ``stop``."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        parsed.finish_reason = body.get("stop_reason")
        return parsed


# -- usage and tokens ----------------------------------------------------------------------


class AddsCumulativeUsage(AnthropicProvider):
    """Adds each usage report to the previous one, but ``message_start`` and
    ``message_delta`` carry cumulative totals: tokens are counted twice."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        total_in = total_out = 0
        async for event in super()._map_stream(events, request):
            if isinstance(event, UsageUpdate):
                total_in += event.input_tokens or 0
                total_out += event.output_tokens or 0
                event = UsageUpdate(input_tokens=total_in, output_tokens=total_out)
            yield event


class NoIncludeUsage(OpenAICompatibleProvider):
    """Never sends ``stream_options.include_usage``, so OpenAI streams carry no usage and
    every streamed request is billed on an estimate."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.include_usage = False


class ReadsAnthropicUsageKeys(OpenAICompatibleProvider):
    """Copied from the Anthropic adapter: reads ``usage.input_tokens``/``output_tokens``,
    which the OpenAI wire calls ``prompt_tokens``/``completion_tokens``."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        usage = body.get("usage") or {}
        parsed.input_tokens = usage.get("input_tokens")
        parsed.output_tokens = usage.get("output_tokens")
        return parsed


class ZeroIsMissing(OpenAICompatibleProvider):
    """``usage.get("prompt_tokens") or None``: a real ``0`` from upstream is treated as
    missing and replaced by an estimate."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            if isinstance(event, UsageUpdate):
                event = UsageUpdate(event.input_tokens or None, event.output_tokens or None)
            yield event

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        parsed.input_tokens = parsed.input_tokens or None
        parsed.output_tokens = parsed.output_tokens or None
        return parsed


class EstimatesBytes(_MetaRewriter, OpenAICompatibleProvider):
    """Estimates missing usage as ``ceil(len(text.encode()) / 4)``: UTF-8 bytes, not code
    points, so non-ASCII prompts are over-counted."""

    def _meta(self, meta: ProvaraMeta, request: ChatRequest, text: str) -> ProvaraMeta:
        if meta.input_tokens_source == "estimated":
            prompt = "".join(message.text() for message in request.messages)
            meta = dataclasses.replace(meta, input_tokens=-(-len(prompt.encode()) // 4))
        if meta.output_tokens_source == "estimated":
            meta = dataclasses.replace(meta, output_tokens=-(-len(text.encode()) // 4))
        return meta


# -- stream endings ------------------------------------------------------------------------


class EndOfBodyIsClean(OpenAICompatibleProvider):
    """Treats the end of the body as a clean end even with no ``[DONE]`` and no
    ``finish_reason`` before it: a cut stream is billed and cached as complete."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async for event in super()._map_stream(events, request):
            yield event
        yield StreamDone()


class ErrorEventEndsStream(AnthropicProvider):
    """Handles an in-stream ``event: error`` (``overloaded_error``) like ``message_stop``:
    logs it and ends the stream normally, so a half answer looks finished."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        try:
            async for event in super()._map_stream(events, request):
                yield event
        except StreamAbortedError as exc:
            if "error inside the stream" not in str(exc):
                raise
            yield StreamDone()


class NoStreamTimeout(OpenAICompatibleProvider):
    """Disables the idle timeout ("the HTTP read timeout is enough", and it is 600 s):
    ``PROVARA_STREAM_TIMEOUT_MS`` is ignored and a stalled stream hangs the client."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.stream_timeout = None  # type: ignore[assignment]  # the bug


class LeavesResponseOpen(OpenAICompatibleProvider):
    """Opens the streamed response by hand (``client.send(..., stream=True)``) and never
    closes it: a client that stops early, or a broken stream, leaks the connection."""

    async def _upstream_events(
        self, request: ChatRequest, payload: dict[str, Any]
    ) -> AsyncGenerator[UpstreamEvent, None]:
        outgoing = self.client.build_request("POST", self._completion_path(), json=payload)
        response = await self.client.send(outgoing, stream=True)
        if response.status_code >= 400:
            raise self._error(response, await response.aread())
        async for event in self._map_stream(sse_events(response, provider=self.name), request):
            yield event


# -- errors --------------------------------------------------------------------------------


class RetriesOnlyServerErrors(OpenAICompatibleProvider):
    """``retryable = status >= 500``: a 429 is reported as not worth retrying, so the
    gateway fails the request instead of backing off."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        assert isinstance(error, ProviderStatusError)
        error.retryable = error.status_code >= 500
        return error


class GenericStatusErrors(OpenAICompatibleProvider):
    """Maps only the statuses its author saw (400, 429, 5xx); a 401 becomes a generic
    ``ProviderStatusError``, so the gateway cannot tell a bad key from a bad request."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        if isinstance(error, AuthenticationError):
            return ProviderStatusError(error.message, status_code=error.status_code)
        return error


class DropsUpstreamMessage(OpenAICompatibleProvider):
    """Raises ``f"HTTP {status}"`` and drops the upstream's own message, which was the
    only part that said what to fix."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        assert isinstance(error, ProviderStatusError)
        error.message = f"request failed with HTTP {error.status_code}"
        return error


class IgnoresRetryAfter(OpenAICompatibleProvider):
    """Never reads the ``Retry-After`` header, so callers retry immediately and get
    rate-limited again."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        assert isinstance(error, ProviderStatusError)
        error.retry_after = None
        return error


class Overloaded529AsServerError(AnthropicProvider):
    """Does not know Anthropic's 529: maps it to a plain ``UpstreamServerError`` instead
    of ``OverloadedError``, so the router cannot shed load from an overloaded provider."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        if isinstance(error, OverloadedError):
            return UpstreamServerError(
                error.message, status_code=error.status_code, provider=self.name
            )
        return error


class KeyInErrorMessage(OpenAICompatibleProvider):
    """Re-raises status errors with the key appended, "to debug 401s": every error log
    now holds the tenant's API key."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        try:
            return await super().complete(request)
        except ProviderStatusError as exc:
            raise type(exc)(
                f"{exc.message} (sent with key {self._api_key})",
                status_code=exc.status_code,
                provider=exc.provider,
                retry_after=exc.retry_after,
            ) from None


class UnscrubbedUpstreamEcho(OpenAICompatibleProvider):
    """Builds errors without scrubbing secrets: upstreams that echo the key back in their
    message ("Incorrect API key provided: sk-...") leak it into the error."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        return error_from_response(response.status_code, body, response.headers, provider=self.name)


class KeyInRepr(OpenAICompatibleProvider):
    """A dataclass-style ``__repr__`` that includes every field, the API key too: any log
    line or traceback that shows the provider shows the key."""

    def __repr__(self) -> str:
        return f"KeyInRepr(name={self.name!r}, api_key={self._api_key!r})"


# -- models and pricing --------------------------------------------------------------------


class FiltersModelsByPrefix(OpenAICompatibleProvider):
    """Keeps only ids starting with ``gpt-`` "to hide embedding models": on any other
    provider, ``discover_models`` loses the models it serves."""

    async def discover_models(self) -> list[str] | None:
        models = await super().discover_models()
        return None if models is None else [m for m in models if m.startswith("gpt-")]


class DeclaresUnpricedModel(OpenAICompatibleProvider):
    """The adapter is fine, its data is not: the package declares a default model
    (``acme-preview``) with no ``MODEL_PRICING`` row, so its requests would be counted
    as $0. Checked with ``models=(MODEL, UNPRICED_MODEL)``."""
