"""Known-bad adapters for ``secret-scrub``: the key escapes through an error path, a log
line or a ``repr`` that the status checks never look at."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from provara_kit.errors import (
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    StreamAbortedError,
    extract_upstream_message,
)
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.streaming import ChatStream
from provara_kit.types import ChatRequest
from tests.conformance import bad_adapters as bad
from tests.conformance.case import Case

log = logging.getLogger("acme.provider")


class HeadersInConnectionErrors(OpenAICompatibleProvider):
    """Adds the request's headers to connection errors "to debug proxies": every
    refused connection puts the ``Authorization`` header in the error."""

    def _connection_error(self, exc: httpx.HTTPError) -> Exception:
        headers = dict(exc.request.headers)
        return ProviderConnectionError(
            f"could not reach {self.name}: {type(exc).__name__} (sent {headers})",
            provider=self.name,
        )


class ChainsTransportError(OpenAICompatibleProvider):
    """Raises its own error ``from exc`` "to keep the root cause": the transport error,
    whose text quotes the key, rides along as ``__cause__`` into every traceback."""

    async def _post(
        self, payload: dict[str, Any], *, stream: bool, path: str | None = None
    ) -> httpx.Response:
        try:
            return await super()._post(payload, stream=stream, path=path)
        except httpx.HTTPError as exc:
            raise ProviderConnectionError(
                f"{self.name} request failed ({type(exc).__name__})", provider=self.name
            ) from exc


class TimeoutAsRuntimeError(OpenAICompatibleProvider):
    """``raise RuntimeError(str(exc))`` for a timeout: untyped, and the transport's text
    (URL, headers, the key) goes straight into the message."""

    def _connection_error(self, exc: httpx.HTTPError) -> Exception:
        if isinstance(exc, httpx.TimeoutException):
            return RuntimeError(str(exc))
        return super()._connection_error(exc)


class LogsFailedRequests(OpenAICompatibleProvider):
    """Logs every error response with the request's headers at warning level: the
    errors are scrubbed, the log lines are not."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        log.warning(
            "%s answered %s to %s", self.name, response.status_code, dict(response.request.headers)
        )
        return super()._error(response, body)


class UnscrubbedStreamError(AnthropicProvider):
    """Builds the in-stream error without scrubbing: an ``error`` event that echoes the
    key puts it in the stream-aborted error."""

    def _stream_error(self, data: str) -> StreamAbortedError:
        message, _type = extract_upstream_message(data)
        return StreamAbortedError(
            f"upstream error inside the stream: {message}", provider=self.name
        )


class EchoesMalformedBody(OpenAICompatibleProvider):
    """Quotes a 200 body that is not JSON in full, unscrubbed: a proxy error page that
    names the key puts it in the error."""

    def _decode_json(self, body: bytes) -> Any:
        try:
            return super()._decode_json(body)
        except MalformedResponseError:
            raise MalformedResponseError(
                f"{self.name} sent a body that is not JSON: {body!r}", provider=self.name
            ) from None


class ModelListingQuotesBody(OpenAICompatibleProvider):
    """Lists models with its own request and raises the raw response text on failure:
    a 401 that echoes the key puts it in the error ``refresh_models`` logs."""

    async def discover_models(self) -> list[str] | None:
        response = await self.client.get("/models")
        if response.status_code >= 400:
            raise ProviderError(f"model listing failed: {response.text}", provider=self.name)
        return await super().discover_models()


class _DebugStream(ChatStream):
    description = ""

    def __repr__(self) -> str:
        return f"<ChatStream {self.description}>"


class StreamReprShowsRequest(OpenAICompatibleProvider):
    """Returns a stream whose ``repr`` shows the request it was opened with, headers
    included, "for debugging": a log line that prints the stream prints the key."""

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        inner = super().complete_stream(request)
        stream = _DebugStream.__new__(_DebugStream)
        for name in ChatStream.__slots__:
            setattr(stream, name, getattr(inner, name))
        stream.description = f"POST {self._completion_path()} headers={self._headers()}"
        return stream


CASES: tuple[Case, ...] = (
    Case(
        "secret-scrub",
        HeadersInConnectionErrors,
        r"connection refused quoting the key \(complete\): the API key leaks into the "
        r"error's str",
    ),
    Case(
        "secret-scrub",
        ChainsTransportError,
        r"read timeout quoting the key \(complete\): the API key leaks into the chained "
        r"ReadTimeout's str",
    ),
    Case(
        "secret-scrub",
        TimeoutAsRuntimeError,
        r"read timeout quoting the key \(stream\): the API key leaks into the error's str",
    ),
    Case(
        "secret-scrub",
        LogsFailedRequests,
        r"the API key leaks into a WARNING log record from 'acme.provider'",
    ),
    Case(
        "secret-scrub",
        UnscrubbedStreamError,
        r"in-stream error event echoing the key \(stream\): the API key leaks into the error",
    ),
    Case(
        "secret-scrub",
        EchoesMalformedBody,
        r"malformed 200 body echoing the key \(complete\): the API key leaks",
    ),
    Case(
        "secret-scrub",
        ModelListingQuotesBody,
        r"HTTP 401 echoing the key \(discover_models\): the API key leaks into the error's str",
    ),
    Case("secret-scrub", StreamReprShowsRequest, r"the API key leaks into repr\(stream\)"),
    Case("secret-scrub", bad.KeyInRepr, r"the API key leaks into repr\(provider\)"),
)
