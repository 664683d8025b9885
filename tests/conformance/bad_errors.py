"""Known-bad adapters for ``error-bodies`` and ``retry-after``: error handling written for
the wire's JSON and the one header form its author saw."""

from __future__ import annotations

import json

import httpx

from provara_kit.errors import ProviderStatusError, error_from_response
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from tests.conformance.case import Case


class ParsesErrorBodyAsJSON(OpenAICompatibleProvider):
    """Reads every error body with ``json.loads(body)["error"]["message"]``: the HTML page
    a load balancer answers a 502 with raises ``JSONDecodeError`` instead of a typed,
    retryable error, so the gateway neither retries nor explains."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        message = json.loads(body)["error"]["message"]
        return error_from_response(
            response.status_code, json.dumps({"error": {"message": message}}), response.headers
        )


class RetriesKnownServerErrorsOnly(AnthropicProvider):
    """``retryable = status in (429, 500, 502, 503, 529)``: a gateway timeout (504), a
    request timeout (408) or a CDN's 520 is reported as final, so callers give up on
    errors a retry would fix."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        if isinstance(error, ProviderStatusError):
            error.retryable = response.status_code in (429, 500, 502, 503, 529)
        return error


class RetryAfterSecondsOnly(OpenAICompatibleProvider):
    """Reads ``Retry-After`` with ``float(value)`` and gives up on anything else: an
    HTTP-date (which HTTP allows, and rate limiters behind CDNs send) is lost, so
    callers retry at once into the same limit."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        if isinstance(error, ProviderStatusError):
            try:
                error.retry_after = float(response.headers.get("retry-after", ""))
            except ValueError:
                error.retry_after = None
        return error


class ZeroRetryAfterIsMissing(AnthropicProvider):
    """``retry_after = float(value) or None``: ``Retry-After: 0`` ("retry now") reads as
    no header at all, and callers fall back to their own long backoff."""

    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        error = super()._error(response, body)
        if isinstance(error, ProviderStatusError):
            error.retry_after = error.retry_after or None
        return error


CASES: tuple[Case, ...] = (
    Case(
        "error-bodies",
        ParsesErrorBodyAsJSON,
        r"HTTP 400 with a html body \(complete\): raised JSONDecodeError",
    ),
    Case(
        "error-bodies",
        RetriesKnownServerErrorsOnly,
        r"HTTP 408 with a json body \(complete\): retryable False, expected True",
    ),
    Case(
        "retry-after",
        RetryAfterSecondsOnly,
        r"HTTP 429, Retry-After an IMF-fixdate '.*' \(complete\): retry_after None, expected 60",
    ),
    Case(
        "retry-after",
        ZeroRetryAfterIsMissing,
        r"HTTP 429, Retry-After zero delay-seconds \(retry now\) '0' \(complete\): retry_after None",
    ),
)
