"""Every error Provara Kit raises, in one tree.

::

    ProvaraError
    ├── ConfigurationError          bad settings: missing env var, unknown provider
    │   └── MasterKeyError          PROVARA_MASTER_KEY missing, malformed or weak
    ├── VaultError                  a stored key that cannot be decrypted here
    ├── UnsupportedParameterError   a request parameter the wire cannot carry (also a
    │                               ValueError); refused before anything is sent
    └── ProviderError               anything that went wrong talking to a provider
        ├── ProviderStatusError     the upstream answered with an error status
        │   ├── BadRequestError             400, and other 4xx not named below
        │   │   ├── RequestTooLargeError    413
        │   │   └── UnprocessableEntityError 422
        │   ├── AuthenticationError         401
        │   ├── PermissionDeniedError       403
        │   ├── NotFoundError               404
        │   ├── ConflictError               409
        │   ├── RateLimitError              429             retryable
        │   └── UpstreamServerError         5xx, 408        retryable
        │       └── OverloadedError         529             retryable
        ├── ProviderConnectionError no status at all: refused, reset, DNS  retryable
        ├── MalformedResponseError  a 200 whose body breaks the wire format
        └── StreamError             a stream that did not finish cleanly    retryable
            ├── StreamAbortedError  dropped, truncated, no terminal marker, error event
            └── StreamTimeoutError  silent longer than PROVARA_STREAM_TIMEOUT_MS

``error_for_status`` is the one place an HTTP status becomes an error class; adapters
call :func:`error_from_response` and never repeat the mapping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from provara_kit import json_codec

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "MalformedResponseError",
    "MasterKeyError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProvaraError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderStatusError",
    "RateLimitError",
    "RequestTooLargeError",
    "StreamAbortedError",
    "StreamError",
    "StreamTimeoutError",
    "UnprocessableEntityError",
    "UnsupportedParameterError",
    "UpstreamServerError",
    "VaultError",
    "error_for_status",
    "error_from_response",
    "extract_upstream_message",
    "parse_retry_after",
    "redact",
]

REDACTED = "[REDACTED]"


class ProvaraError(Exception):
    """Base of every error raised by Provara Kit."""


class ConfigurationError(ProvaraError):
    """A setting is missing or invalid; the message says which and how to fix it."""


class MasterKeyError(ConfigurationError):
    """``PROVARA_MASTER_KEY`` is missing, malformed or too weak."""


class VaultError(ProvaraError):
    """A stored key could not be decrypted: wrong master key, tenant, name or a damaged value."""


class UnsupportedParameterError(ProvaraError, ValueError):
    """The request sets a parameter the provider's wire cannot express (``seed`` on a wire
    with no seed): refused before anything is sent, never silently dropped.

    A ``ValueError`` too, so callers that treat "this request cannot be sent" as a client
    error (the gateway answers 400) handle it without knowing the class.
    """

    def __init__(self, param: str, *, provider: str | None = None) -> None:
        who = provider or "this provider"
        super().__init__(
            f"{who} cannot express the request parameter {param!r}: its API has no "
            f"equivalent, so the request was not sent (remove {param!r} or route the "
            "request to a provider that supports it)"
        )
        self.param = param
        self.provider = provider


class ProviderError(ProvaraError):
    """Something went wrong talking to a provider.

    ``retryable`` says whether sending the same request again can help.
    """

    retryable: bool = False

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r})"


class ProviderStatusError(ProviderError):
    """The provider answered with an error status.

    Carries the status, the upstream's own message, whether a retry can help and the
    ``Retry-After`` delay in seconds when the upstream sent one.
    """

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        self.error_type = error_type
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        who = f"{self.provider} " if self.provider else ""
        return f"{who}returned HTTP {self.status_code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r}, "
            f"provider={self.provider!r}, retryable={self.retryable}, "
            f"retry_after={self.retry_after!r})"
        )


class BadRequestError(ProviderStatusError):
    """400: the request is malformed or uses an unsupported parameter."""


class AuthenticationError(ProviderStatusError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(ProviderStatusError):
    """403: the key is valid but may not use this model or feature."""


class NotFoundError(ProviderStatusError):
    """404: unknown model or endpoint."""


class ConflictError(ProviderStatusError):
    """409: the request conflicts with the provider's state."""


class RequestTooLargeError(BadRequestError):
    """413: the request body or prompt is too large."""


class UnprocessableEntityError(BadRequestError):
    """422: well-formed but semantically invalid request."""


class RateLimitError(ProviderStatusError):
    """429: too many requests or quota exhausted; retry after ``retry_after``."""

    retryable = True


class UpstreamServerError(ProviderStatusError):
    """5xx: the provider failed; retrying can help."""

    retryable = True


class OverloadedError(UpstreamServerError):
    """529: the provider is overloaded (Anthropic's status)."""


class ProviderConnectionError(ProviderError):
    """The request never got an HTTP status: connection refused, reset, DNS failure.

    ``reason`` names the failure in a few words that carry no address (``connection
    refused``, ``timed out``...), for a message shown to someone who must not learn where
    the provider lives; the message itself may name the URL.
    """

    retryable = True

    def __init__(
        self, message: str, *, provider: str | None = None, reason: str = "connection failed"
    ) -> None:
        super().__init__(message, provider=provider)
        self.reason = reason


class MalformedResponseError(ProviderError):
    """A successful status whose body does not follow the provider's wire format."""


class StreamError(ProviderError):
    """A stream that did not finish cleanly. No ``_provara`` meta event follows it."""

    retryable = True


class StreamAbortedError(StreamError):
    """The stream ended early: dropped, truncated, no terminal marker, or an upstream error."""


class StreamTimeoutError(StreamError):
    """No data arrived for longer than ``PROVARA_STREAM_TIMEOUT_MS``."""


_STATUS_ERRORS: dict[int, type[ProviderStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}


def error_for_status(status_code: int) -> type[ProviderStatusError]:
    """The error class for an HTTP error status."""
    if status_code in _STATUS_ERRORS:
        return _STATUS_ERRORS[status_code]
    if status_code >= 500:
        return UpstreamServerError
    if status_code == 408:
        # A request timeout is worth retrying even though it is a 4xx.
        return UpstreamServerError
    if 400 <= status_code < 500:
        return BadRequestError
    return ProviderStatusError


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        from datetime import datetime

        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN or inf
        return None
    return max(0.0, seconds)


def extract_upstream_message(body: bytes | str) -> tuple[str, str | None]:
    """The provider's own error message and error type from an error body.

    Understands ``{"error": {"message", "type"}}`` (OpenAI, Anthropic and most others),
    ``{"error": "text"}``, ``{"message": ...}``, Gemini's list form and ``{"detail": ...}``;
    anything else is returned as (trimmed) text.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    try:
        data: Any = json_codec.loads(text)
    except ValueError:
        return (text[:2000] or "(empty error body)"), None
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str):
            return error, _str_or_none(data.get("type"))
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or error.get("msg")
            error_type = error.get("type") or error.get("code") or error.get("status")
            if message is not None:
                return str(message), _str_or_none(error_type)
        detail = data.get("detail")
        if detail is not None:
            return (detail if isinstance(detail, str) else json.dumps(detail)), None
    return text[:2000], None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret of 4+ characters replaced by :data:`REDACTED`, and, for a
    secret of 16+ characters, its first and last 8 characters wherever they stand alone.

    The result does not depend on the order of ``secrets``: every occurrence of every one
    of them (and of those fragments) in ``text`` is found first, overlapping or nested
    ones included (an AWS key ``ACCESS_KEY_ID:SECRET`` whose parts are secrets too), and
    each run of text they cover is replaced once.
    """
    patterns: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= 4:
            patterns.add(secret)
            # Providers often echo a key partly masked ("sk-abc...wxyz"): its ends go too.
            if len(secret) >= 16:
                patterns.update((secret[:8], secret[-8:]))
    spans: list[tuple[int, int]] = []
    for pattern in patterns:
        start = text.find(pattern)
        while start != -1:
            spans.append((start, start + len(pattern)))
            start = text.find(pattern, start + 1)
    if not spans:
        return text
    spans.sort()
    out: list[str] = []
    kept = 0  # text before this is copied or covered
    run_start, run_end = spans[0]
    for start, end in spans[1:]:
        if start <= run_end:
            run_end = max(run_end, end)
            continue
        out += (text[kept:run_start], REDACTED)
        kept = run_end
        run_start, run_end = start, end
    out += (text[kept:run_start], REDACTED, text[run_end:])
    return "".join(out)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def error_from_response(
    status_code: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    provider: str | None = None,
    secrets: Iterable[str | None] = (),
) -> ProviderStatusError:
    """Build the typed error for an upstream error response, with secrets scrubbed."""
    message, error_type = extract_upstream_message(body)
    message = redact(message, secrets)
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    cls = error_for_status(status_code)
    return cls(
        message,
        status_code=status_code,
        provider=provider,
        error_type=error_type,
        retry_after=retry_after,
    )
