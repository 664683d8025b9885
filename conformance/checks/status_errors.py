"""``status-4xx`` and ``status-5xx``: error statuses become the right typed, keyless errors."""

from __future__ import annotations

from conformance.checks.registry import check
from conformance.context import FAKE_KEY, CheckContext, Findings, attempt
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
)
from provara_kit.testing import ErrorFault

# Written out here, not taken from provara_kit.errors, so the suite checks the mapping
# instead of repeating it.
CLIENT_ERRORS: dict[int, tuple[type[ProviderStatusError], bool]] = {
    400: (BadRequestError, False),
    401: (AuthenticationError, False),
    403: (PermissionDeniedError, False),
    404: (NotFoundError, False),
    409: (ConflictError, False),
    413: (RequestTooLargeError, False),
    422: (UnprocessableEntityError, False),
    429: (RateLimitError, True),
}
SERVER_ERRORS: dict[int, tuple[type[ProviderStatusError], bool]] = {
    500: (UpstreamServerError, True),
    502: (UpstreamServerError, True),
    503: (UpstreamServerError, True),
    529: (OverloadedError, True),
}
RETRY_AFTER = {429: 7.0, 503: 30.0}
MASKED_KEY = f"{FAKE_KEY[:8]}...{FAKE_KEY[-4:]}"


def leaked(text: str) -> bool:
    """True when ``text`` shows the key, whole or as a recognisable fragment."""
    return FAKE_KEY in text or FAKE_KEY[-12:] in text or FAKE_KEY[8:20] in text


def expect_status_error(
    found: Findings,
    where: str,
    error: BaseException | None,
    expected: type[ProviderStatusError],
    status: int,
    retryable: bool,
) -> ProviderStatusError | None:
    """Record whether ``error`` is the typed error for ``status``; it, when it is one."""
    if not found.expect(
        isinstance(error, expected),
        f"{where}: raised {type(error).__name__ if error else 'nothing'}, expected "
        f"{expected.__name__}" + (f": {error}" if error else ""),
    ):
        return None
    assert isinstance(error, ProviderStatusError)
    found.expect(error.status_code == status, f"{where}: status_code {error.status_code}")
    found.expect(
        error.retryable is retryable,
        f"{where}: retryable {error.retryable}, expected {retryable}",
    )
    return error


async def _statuses(
    ctx: CheckContext, table: dict[int, tuple[type[ProviderStatusError], bool]]
) -> None:
    found = Findings()
    for status, (expected, retryable) in table.items():
        message = f"scripted {status} failure (key {FAKE_KEY}, shown as {MASKED_KEY})"
        fault = ErrorFault(status, message=message, retry_after=RETRY_AFTER.get(status))
        async with ctx.scripted(error=fault) as (provider, _upstream):
            for mode in ("complete", "stream"):
                where = f"HTTP {status} ({mode})"
                error = expect_status_error(
                    found,
                    where,
                    await attempt(provider, ctx.request(), mode),
                    expected,
                    status,
                    retryable,
                )
                if error is None:
                    continue
                found.expect(
                    f"scripted {status} failure" in str(error),
                    f"{where}: the upstream's message is not in the error: {str(error)!r}",
                )
                if status in RETRY_AFTER:
                    found.expect(
                        error.retry_after == RETRY_AFTER[status],
                        f"{where}: retry_after {error.retry_after!r}, upstream sent "
                        f"Retry-After: {RETRY_AFTER[status]:g}",
                    )
                for label, text in (
                    ("str", str(error)),
                    ("repr", repr(error)),
                    ("args", repr(error.args)),
                ):
                    found.expect(
                        not leaked(text), f"{where}: the API key leaks into the error's {label}"
                    )
            if leaked(repr(provider)):
                found.fail(f"HTTP {status}: the API key leaks into repr(provider)")
                break
    found.raise_if_any()


async def client_errors(ctx: CheckContext) -> None:
    await _statuses(ctx, CLIENT_ERRORS)


async def server_errors(ctx: CheckContext) -> None:
    await _statuses(ctx, SERVER_ERRORS)


async def _live_client_errors(ctx: CheckContext) -> None:
    found = Findings()
    ctx.live_key()
    wrong_key = "sk-provara-deliberately-wrong-key-0000000000"
    async with ctx.live_provider(api_key=wrong_key) as provider:
        try:
            await provider.complete(ctx.request(max_tokens=16))
        except AuthenticationError as exc:
            found.expect(wrong_key not in str(exc) + repr(exc), "401: the key leaks into the error")
        except Exception as exc:
            found.fail(f"401 with a wrong key: raised {type(exc).__name__}: {exc}")
        else:
            found.fail("401 with a wrong key: the request succeeded")
    async with ctx.live_provider() as provider:
        try:
            await provider.complete(ctx.request(model="provara-no-such-model-404", max_tokens=16))
        except (NotFoundError, BadRequestError):
            pass
        except Exception as exc:
            found.fail(f"unknown model: raised {type(exc).__name__}: {exc}")
        else:
            found.fail("unknown model: the request succeeded")
    found.raise_if_any()


check(
    "status-4xx",
    "400/401/403/404/409/413/422/429 map to the right error, retryable right, no key",
    live=_live_client_errors,
)(client_errors)
check("status-5xx", "5xx and 529 map to retryable server errors")(server_errors)
