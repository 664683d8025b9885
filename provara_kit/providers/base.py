"""What every HTTP adapter shares: the client, the request/raise cycle and the stream plumbing.

An adapter subclasses :class:`HTTPProvider`, names its stream :attr:`~HTTPProvider.framing`
(SSE unless it says otherwise) and fills in the wire-specific methods: ``_headers``, the
endpoint's path, ``_build_payload``, ``_parse_completion`` and ``_map_stream`` (frames to
:data:`~provara_kit.streaming.UpstreamEvent`). Framing, status mapping, key scrubbing,
timeouts, token fallback, pricing and the meta event are done here and in the pipeline,
once, for every framing.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Protocol

import httpx

from provara_kit import json_codec
from provara_kit.accounting import ParsedCompletion, finish_completion
from provara_kit.errors import (
    MalformedResponseError,
    ProviderConnectionError,
    StreamAbortedError,
    UnsupportedParameterError,
    error_from_response,
    extract_upstream_message,
    redact,
)
from provara_kit.framings import SSE, FrameDecoder, Framing
from provara_kit.provider import Provider
from provara_kit.sse import ServerSentEvent
from provara_kit.streaming import (
    ChatStream,
    KeepAlive,
    UpstreamEvent,
    normalize_batches,
    stream_timeout_from_env,
)
from provara_kit.tokens import count_usage
from provara_kit.types import ChatRequest, ChatResponse

__all__ = [
    "KEEP_ALIVE",
    "HTTPProvider",
    "ParsedCompletion",
    "StreamMapper",
    "connection_failure",
    "frames",
    "map_events",
    "sse_events",
]

KEEP_ALIVE = KeepAlive()


class StreamMapper(Protocol):
    """Maps one stream's frames synchronously (see :meth:`HTTPProvider._stream_mapper`).

    ``feed`` returns the upstream events of one frame of the adapter's framing (an SSE
    event, an NDJSON line ...), raising what ``_map_stream`` would raise; ``done`` turns
    true once the terminal marker was fed (nothing after it is read); ``end`` returns the
    events of a body that ended cleanly without it.
    """

    done: bool

    def feed(self, frame: Any) -> list[UpstreamEvent]: ...

    def end(self) -> list[UpstreamEvent]: ...


DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=30.0, pool=30.0)


class HTTPProvider(Provider):
    """Base for adapters that speak JSON over HTTP and stream in any :class:`Framing`.

    ``transport`` is any ``httpx.AsyncBaseTransport`` (a mock in tests, a faster one in
    the gateway). The API key is kept out of ``repr`` and scrubbed from every error.
    """

    framing: ClassVar[Framing[Any]] = SSE
    """How the wire frames a streamed body (:mod:`provara_kit.framings`); ``_map_stream``
    and the :class:`StreamMapper` receive its frames."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
        default_models: tuple[str, ...] = (),
        stream_timeout: float | None = None,
        timeout: httpx.Timeout | float | None = None,
        pricing: Mapping[str, tuple[object, object]] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._transport = transport
        self.default_models = default_models
        self.stream_timeout = (
            stream_timeout_from_env() if stream_timeout is None else stream_timeout
        )
        self._timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self._pricing = pricing
        self._client: httpx.AsyncClient | None = None
        self._post_targets: dict[str, tuple[httpx.URL, httpx.Headers, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return (
            f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r}, "
            f"api_key=<{key}>)"
        )

    # -- what an adapter provides -------------------------------------------------------

    @abstractmethod
    def _headers(self) -> dict[str, str]:
        """Auth and version headers for every request."""

    def _completion_path(self) -> str:
        """Path of the completion endpoint under ``base_url`` (override this, or
        :meth:`_request_path` when the path depends on the request)."""
        raise NotImplementedError(f"{type(self).__name__} names no completion path")

    def _request_path(self, request: ChatRequest, *, stream: bool) -> str:
        """Path (and query) of the endpoint for ``request``: by default
        :meth:`_completion_path`. Override it for a wire that puts the model or the
        streaming choice in the URL (``/models/{model}:streamGenerateContent``)."""
        return self._completion_path()

    def _finalize_request(self, request: httpx.Request) -> None:
        """Last look at every outgoing request, headers and body final: sign it here
        (AWS SigV4). By default nothing."""

    @abstractmethod
    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The wire request body."""

    @abstractmethod
    def _parse_completion(self, body: Any) -> ParsedCompletion:
        """Read a non-streamed response body."""

    def _map_stream(
        self, events: AsyncIterator[Any], request: ChatRequest
    ) -> AsyncIterator[UpstreamEvent]:
        """Map decoded frames (SSE events unless :attr:`framing` says otherwise) to
        upstream events; yield ``StreamDone`` on a clean end.

        ``None`` stands for bytes that completed no frame: yield ``KEEP_ALIVE`` for it.
        By default the :meth:`_stream_mapper`'s events, one at a time: an adapter provides
        one of the two.
        """
        mapper = self._stream_mapper(request)
        if mapper is None:
            raise NotImplementedError(
                f"{type(self).__name__} maps no stream: define _stream_mapper or _map_stream"
            )
        return map_events(mapper, events)

    # -- shared machinery ---------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                transport=self._transport,
                timeout=self._timeout,
                headers=self._headers(),
            )
        return self._client

    async def aclose(self) -> None:
        self._post_targets.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(
        self, payload: dict[str, Any], *, stream: bool, path: str | None = None
    ) -> httpx.Response:
        """POST ``payload`` as JSON to ``path`` (by default the completion endpoint).

        With an explicit ``transport`` the request goes straight to it: the URL, the
        client's merged headers and its timeouts are resolved once, so a request costs one
        ``httpx.Request`` rather than the client's per-request URL merging, cookie jar,
        auth and redirect handling (none of which a completion call uses). The request on
        the wire is the one ``client.post(path, json=payload)`` would send. Without a
        transport (httpx's default, which respx and proxies hook) the client sends it.
        """
        client = self.client
        transport = self._transport
        if path is None:
            path = self._completion_path()
        if transport is None:
            outgoing = client.build_request("POST", path, json=payload)
            self._finalize_request(outgoing)
            return await client.send(outgoing, stream=stream)
        target = self._post_targets.get(path)
        if target is None:
            template = client.build_request("POST", path, json={})
            headers = httpx.Headers(
                [(k, v) for k, v in template.headers.raw if k.lower() != b"content-length"]
            )
            target = (template.url, headers, template.extensions)
            if len(self._post_targets) >= 256:  # paths that name a model: keep it bounded
                self._post_targets.clear()
            self._post_targets[path] = target
        url, headers, extensions = target
        content = json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
        request = httpx.Request("POST", url, headers=headers, content=content)
        request.extensions = extensions
        self._finalize_request(request)
        response = await transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response

    def _secrets(self) -> tuple[str | None, ...]:
        """Every secret to scrub from errors: the API key, and whatever else an adapter
        authenticates with (a signing secret, a session token)."""
        return (self._api_key,)

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        return error_from_response(
            response.status_code,
            body,
            response.headers,
            provider=self.name,
            secrets=self._secrets(),
        )

    def _stream_error(self, data: str) -> StreamAbortedError:
        """The abort for an error the upstream sent inside a stream (its text scrubbed)."""
        message, error_type = extract_upstream_message(data)
        detail = f" ({error_type})" if error_type else ""
        return StreamAbortedError(
            f"upstream error inside the stream{detail}: {redact(message, self._secrets())}",
            provider=self.name,
        )

    def _error_in_body(self, data: str) -> MalformedResponseError:
        """The error for a 200 whose body is the wire's error object (its text scrubbed)."""
        message, error_type = extract_upstream_message(data)
        detail = f" ({error_type})" if error_type else ""
        return MalformedResponseError(
            f"{self.name} answered 200 with an error body{detail}: "
            f"{redact(message, self._secrets())}",
            provider=self.name,
        )

    def _connection_error(self, exc: httpx.HTTPError) -> Exception:
        reason = connection_failure(exc)
        if isinstance(exc, httpx.TimeoutException):
            return ProviderConnectionError(
                f"{self.name} did not answer in time ({type(exc).__name__})",
                provider=self.name,
                reason=reason,
            )
        detail = redact(str(exc), self._secrets())
        return ProviderConnectionError(
            f"could not reach {self.name} at {self.base_url}: {type(exc).__name__}: {detail}",
            provider=self.name,
            reason=reason,
        )

    async def _get_json(self, path: str) -> Any:
        try:
            outgoing = self.client.build_request("GET", path)
            self._finalize_request(outgoing)
            response = await self.client.send(outgoing)
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        if response.status_code >= 400:
            raise self._error(response, response.content)
        return self._decode_json(response.content)

    def _decode_json(self, body: bytes) -> Any:
        try:
            return json_codec.loads(body)
        except ValueError:
            # Scrub before cutting: a key across the cut would leave a fragment unscrubbed.
            snippet = redact(body[:1000].decode("utf-8", "replace"), self._secrets())[:200]
            raise MalformedResponseError(
                f"{self.name} answered 200 with a body that is not JSON: {snippet!r}",
                provider=self.name,
            ) from None

    def _refuse_unsupported(self, request: ChatRequest) -> None:
        """Raise :class:`UnsupportedParameterError` for a parameter the adapter declares its
        wire cannot express (``unsupported_params``), before anything is sent."""
        if not self.unsupported_params:
            return
        extra = request.model_extra or {}
        for param in sorted(self.unsupported_params):
            named = param in ChatRequest.model_fields
            value = getattr(request, param) if named else extra.get(param)
            if value is not None:
                raise UnsupportedParameterError(param, provider=self.name)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        started = time.perf_counter()
        self._refuse_unsupported(request)
        payload = self._build_payload(request, stream=False)
        try:
            response = await self._post(
                payload, stream=False, path=self._request_path(request, stream=False)
            )
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        if response.status_code >= 400:
            raise self._error(response, response.content)
        body = self._decode_json(response.content)
        try:
            parsed = self._parse_completion(body)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise MalformedResponseError(
                f"{self.name} answered 200 with an unexpected body shape: "
                f"{type(exc).__name__}: {exc}",
                provider=self.name,
            ) from None
        usage = None
        counter = self.token_counter
        if counter is not None and (parsed.input_tokens is None or parsed.output_tokens is None):
            usage = await count_usage(
                parsed.input_tokens,
                parsed.output_tokens,
                request=request,
                output_text=parsed.output_text,
                counter=counter,
                provider=self.name,
            )
        return finish_completion(
            parsed,
            provider=self.name,
            request=request,
            started=started,
            pricing=self._pricing,
            usage=usage,
        )

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        # Build the body now: a request the wire cannot express fails here, not as an abort.
        self._refuse_unsupported(request)
        payload = self._build_payload(request, stream=True)
        return ChatStream.from_batches(
            normalize_batches(
                self._upstream_batches(request, payload),
                provider=self.name,
                request=request,
                stream_timeout=self.stream_timeout,
                pricing=self._pricing,
                token_counter=self.token_counter,
            )
        )

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        """A synchronous mapper for this stream, or ``None`` to use :meth:`_map_stream`.

        With one, each network read is decoded and mapped in one go and its events travel
        as one batch (the built-in adapters provide one, and :meth:`_map_stream` is written
        on top of it). An adapter that only writes ``_map_stream`` behaves the same, an
        event at a time; so does a subclass that overrides ``_map_stream`` below the class
        whose mapper it would bypass (:meth:`_batches_mapped`).
        """
        return None

    @classmethod
    def _batches_mapped(cls) -> bool:
        """Whether streams take the batched mapper path: ``_stream_mapper`` is defined no
        higher in the class tree than ``_map_stream`` and ``_upstream_events`` (a subclass
        that rewrites either of those gets them honoured, an event at a time)."""
        depth = {name: _defined_at(cls, name) for name in _STREAM_HOOKS}
        return depth["_stream_mapper"] <= min(depth["_map_stream"], depth["_upstream_events"])

    async def _upstream_batches(
        self, request: ChatRequest, payload: dict[str, Any]
    ) -> AsyncGenerator[list[UpstreamEvent], None]:
        """The upstream events of one streamed request, one list per network read."""
        mapper = self._stream_mapper(request) if self._batches_mapped() else None
        if mapper is None:
            events = self._upstream_events(request, payload)
            try:
                async for event in events:
                    yield [event]
            finally:
                await events.aclose()
            return
        response = await self._open_response(payload, path=self._request_path(request, stream=True))
        try:
            decoder = self.framing.decoder()
            tail: list[UpstreamEvent] = []
            async for chunk in response.aiter_bytes():
                batch: list[UpstreamEvent] = []
                try:
                    for frame in decoder.feed(chunk):
                        batch += mapper.feed(frame)
                        if mapper.done:
                            break
                except Exception:
                    if batch:
                        yield batch  # what the read carried before the bad event
                    raise
                if not mapper.done and _body_complete(decoder):
                    tail = batch  # the framing's own end: what the connection does is moot
                    break
                yield batch or [KEEP_ALIVE]
                if mapper.done:
                    return
            for frame in decoder.end():
                tail += mapper.feed(frame)
                if mapper.done:
                    break
            if decoder.truncated:
                raise StreamAbortedError(
                    f"upstream body ended in the middle of a {self.framing.name} frame (truncated)",
                    provider=self.name,
                )
            if not mapper.done:
                tail += mapper.end()
            if tail:
                yield tail
        finally:
            await response.aclose()

    async def _open_response(
        self, payload: dict[str, Any], *, path: str | None = None
    ) -> httpx.Response:
        """Send the streaming request and return its open response (the caller closes it);
        raise the typed error for an error status."""
        try:
            response = await self._post(payload, stream=True, path=path)
        except httpx.HTTPError as exc:
            raise self._connection_error(exc) from None
        if response.status_code >= 400:
            try:
                body = await response.aread()
            except httpx.HTTPError:
                body = b""
            finally:
                await response.aclose()
            raise self._error(response, body)
        return response

    @asynccontextmanager
    async def _open_stream(
        self, payload: dict[str, Any], *, path: str | None = None
    ) -> AsyncIterator[httpx.Response]:
        """:meth:`_open_response` as a context manager that closes the response."""
        response = await self._open_response(payload, path=path)
        try:
            yield response
        finally:
            await response.aclose()

    async def _upstream_events(
        self, request: ChatRequest, payload: dict[str, Any]
    ) -> AsyncGenerator[UpstreamEvent, None]:
        response = await self._open_response(payload, path=self._request_path(request, stream=True))
        try:
            mapped = self._map_stream(frames(response, self.framing, provider=self.name), request)
            try:
                async for event in mapped:
                    yield event
            finally:
                aclose = getattr(mapped, "aclose", None)
                if aclose is not None:
                    await aclose()
        finally:
            await response.aclose()


_STREAM_HOOKS = ("_stream_mapper", "_map_stream", "_upstream_events")


def _defined_at(cls: type, name: str) -> int:
    """How far up ``cls``'s method resolution order ``name`` is defined (0: ``cls``)."""
    return next(depth for depth, owner in enumerate(cls.__mro__) if name in owner.__dict__)


async def map_events(
    mapper: StreamMapper, events: AsyncIterator[Any]
) -> AsyncGenerator[UpstreamEvent, None]:
    """An adapter's ``_map_stream`` written with its :class:`StreamMapper`: the same events,
    one at a time (``None``, bytes that completed no frame, is a keep-alive)."""
    async for sse in events:
        if sse is None:
            yield KEEP_ALIVE
            continue
        for event in mapper.feed(sse):
            yield event
        if mapper.done:
            return
    for event in mapper.end():
        yield event


def _body_complete(decoder: FrameDecoder[Any]) -> bool:
    """Whether the bytes fed complete the body by the framing's own rule (its decoder's
    ``closed``; a decoder without one has no such rule)."""
    return getattr(decoder, "closed", False) is True


async def frames(
    response: httpx.Response, framing: Framing[Any], *, provider: str
) -> AsyncGenerator[Any, None]:
    """Decoded frames of a streamed body in ``framing``; ``None`` for a read that completed
    no frame.

    Reading stops once the decoder says the body is complete by the framing's own rule
    (``closed``: a JSON array's ``]``), even when the connection stays open.

    A body that ends inside a frame (a partial line, an SSE event with no closing blank
    line, an unclosed JSON array) raises :class:`StreamAbortedError`: whatever came before
    it, that is not a clean end.
    """
    decoder = framing.decoder()
    async for chunk in response.aiter_bytes():
        decoded = decoder.feed(chunk)
        if not decoded:
            if _body_complete(decoder):
                break
            yield None
            continue
        for frame in decoded:
            yield frame
        if _body_complete(decoder):
            break  # the framing's own end: the body is complete whatever the connection does
    for frame in decoder.end():
        yield frame
    if decoder.truncated:
        raise StreamAbortedError(
            f"upstream body ended in the middle of a {framing.name} frame (truncated)",
            provider=provider,
        )


async def sse_events(
    response: httpx.Response, *, provider: str
) -> AsyncGenerator[ServerSentEvent | None, None]:
    """:func:`frames` of an SSE body: decoded events, ``None`` for a read that completed
    none; a body that ends inside an event raises :class:`StreamAbortedError`."""
    async for frame in frames(response, SSE, provider=provider):
        yield frame


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (a ``from None`` keeps the
    context), innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def connection_failure(exc: httpx.HTTPError) -> str:
    """What broke, in a few words with no address in them (``connection refused``,
    ``timed out`` ...): the ``reason`` of a :class:`ProviderConnectionError`."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "unsupported URL scheme"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed without a valid response"
    chain = _causes(exc)
    text = " ".join(f"{type(e).__name__} {e}" for e in chain).lower()
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        marker in text
        for marker in ("name or service not known", "nodename nor servname", "name resolution")
    ):
        return "host name did not resolve"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "certificate" in text:
        return "TLS handshake failed"
    if isinstance(exc, httpx.ConnectError):
        return "connection failed"
    return "the connection broke"
