from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from provara_kit.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderStatusError,
    RateLimitError,
    RequestTooLargeError,
    UnprocessableEntityError,
    UpstreamServerError,
    error_for_status,
    error_from_response,
    extract_upstream_message,
    parse_retry_after,
    redact,
)


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, BadRequestError, False),
        (401, AuthenticationError, False),
        (403, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (409, ConflictError, False),
        (413, RequestTooLargeError, False),
        (422, UnprocessableEntityError, False),
        (429, RateLimitError, True),
        (500, UpstreamServerError, True),
        (502, UpstreamServerError, True),
        (503, UpstreamServerError, True),
        (529, OverloadedError, True),
        (418, BadRequestError, False),
    ],
)
def test_status_maps_to_error_kind(
    status: int, cls: type[ProviderStatusError], retryable: bool
) -> None:
    assert error_for_status(status) is cls
    error = error_from_response(status, b'{"error": {"message": "boom", "type": "t"}}')
    assert type(error) is cls
    assert error.status_code == status
    assert error.retryable is retryable
    assert error.message == "boom"
    assert error.error_type == "t"


def test_overloaded_is_a_server_error() -> None:
    assert issubclass(OverloadedError, UpstreamServerError)


@pytest.mark.parametrize(
    ("body", "message", "error_type"),
    [
        (
            '{"error": {"message": "bad model", "type": "invalid_request_error"}}',
            "bad model",
            "invalid_request_error",
        ),
        (
            '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            "Overloaded",
            "overloaded_error",
        ),
        (
            '[{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}]',
            "Resource exhausted",
            "429",
        ),
        ('{"error": "plain string"}', "plain string", None),
        ('{"detail": "Not authenticated"}', "Not authenticated", None),
        ("<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>", None),
        ("", "(empty error body)", None),
    ],
)
def test_upstream_message_extraction(body: str, message: str, error_type: str | None) -> None:
    assert extract_upstream_message(body) == (message, error_type)


def test_retry_after_seconds_and_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    when = datetime.now(UTC) + timedelta(seconds=30)
    parsed = parse_retry_after(format_datetime(when, usegmt=True))
    assert parsed is not None and 25 <= parsed <= 31


def test_retry_after_header_is_case_insensitive() -> None:
    error = error_from_response(429, "{}", {"Retry-After": "12"})
    assert error.retry_after == 12.0


def test_key_never_in_message_or_repr() -> None:
    key = "sk-live-0123456789abcdefghijkl"
    body = f'{{"error": {{"message": "Incorrect API key provided: {key} (also {key[:8]}...{key[-8:]})"}}}}'
    error = error_from_response(401, body, provider="acme", secrets=[key])
    for text in (str(error), repr(error), error.message):
        assert key not in text
        assert key[-8:] not in text
    assert "Incorrect API key provided" in error.message


def test_redact_ignores_empty_secrets() -> None:
    assert redact("nothing to hide", [None, "", "ab"]) == "nothing to hide"


def test_an_error_body_nested_too_deep_is_kept_as_text() -> None:
    body = "[" * 50_000 + "]" * 50_000
    message, kind = extract_upstream_message(body.encode())
    assert kind is None and message == body[:2000]
