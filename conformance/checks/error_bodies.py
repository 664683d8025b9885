"""``error-bodies`` and ``retry-after``: every error status in every body and header form.

Real error responses are not always the wire's JSON: a load balancer answers 502 with an
HTML page, a gateway 503 with plain text, a proxy 504 with nothing at all. Each must still
become the typed error for its status, retryable right, with the upstream's words kept.
``Retry-After`` comes as delay-seconds or as an HTTP date in any of the three forms HTTP
requires recipients to accept (RFC 9110, 5.6.7); ``0`` is a real value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conformance.checks.registry import check
from conformance.checks.status_errors import CLIENT_ERRORS, SERVER_ERRORS, expect_status_error
from conformance.context import CheckContext, Findings, attempt
from provara_kit.errors import BadRequestError, ProviderStatusError, UpstreamServerError
from provara_kit.testing import ErrorFault
from provara_kit.testing.script import ErrorBody

# The statuses status-4xx and status-5xx map (written out there, not taken from
# provara_kit.errors), and those others that providers and the proxies in front of them send.
_OTHERS: dict[int, tuple[type[ProviderStatusError], bool]] = {
    402: (BadRequestError, False),
    408: (UpstreamServerError, True),
    504: (UpstreamServerError, True),
    520: (UpstreamServerError, True),
}
STATUSES: dict[int, tuple[type[ProviderStatusError], bool]] = dict(
    sorted({**CLIENT_ERRORS, **SERVER_ERRORS, **_OTHERS}.items())
)

BODIES: tuple[ErrorBody, ...] = ("json", "html", "text", "empty")


async def error_bodies(ctx: CheckContext) -> None:
    found = Findings()
    for status, (expected, retryable) in STATUSES.items():
        for body in BODIES:
            message = f"upstream says {status} for this {body} body"
            fault = ErrorFault(status, message=message, body=body)
            async with ctx.scripted(error=fault) as (provider, _upstream):
                for mode in ("complete", "stream"):
                    where = f"HTTP {status} with a {body} body ({mode})"
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
                    text = str(error)
                    if body == "empty":
                        found.expect(text.strip(), f"{where}: the error has no message at all")
                    else:
                        found.expect(
                            message in text,
                            f"{where}: the upstream's words are not in the error: {text!r}",
                        )
    found.raise_if_any()


def _http_dates(seconds: int) -> dict[str, str]:
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return {
        "an IMF-fixdate": when.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "an obsolete RFC 850 date": when.strftime("%A, %d-%b-%y %H:%M:%S GMT"),
        "an obsolete asctime date": f"{when:%a %b} {when.day:>2} {when:%H:%M:%S %Y}",
    }


async def retry_after(ctx: CheckContext) -> None:
    found = Findings()
    forms: list[tuple[str, str | None, float | None, float]] = [
        ("delay-seconds", "7", 7.0, 0.0),
        ("zero delay-seconds (retry now)", "0", 0.0, 0.0),
        ("a large delay", "86400", 86400.0, 0.0),
        ("no header", None, None, 0.0),
        ("a value that is neither", "soon", None, 0.0),
    ]
    forms += [(label, value, 60.0, 5.0) for label, value in _http_dates(60).items()]
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    forms.append(("an HTTP date in the past", past, 0.0, 0.0))
    for status in (429, 503, 529):
        for label, value, want, slack in forms:
            fault = ErrorFault(status, message=f"slow down ({label})", retry_after=value)
            async with ctx.scripted(error=fault) as (provider, _upstream):
                for mode in ("complete", "stream"):
                    where = f"HTTP {status}, Retry-After {label} {value!r} ({mode})"
                    error = await attempt(provider, ctx.request(), mode)
                    if not found.expect(
                        isinstance(error, ProviderStatusError),
                        f"{where}: raised {type(error).__name__ if error else 'nothing'}"
                        f"{f' ({error})' if error else ''}",
                    ):
                        continue
                    assert isinstance(error, ProviderStatusError)
                    got = error.retry_after
                    if want is None:
                        found.expect(got is None, f"{where}: retry_after {got!r}, expected None")
                    else:
                        found.expect(
                            got is not None and abs(got - want) <= slack,
                            f"{where}: retry_after {got!r}, expected {want:g}"
                            + (f" (within {slack:g} s)" if slack else ""),
                        )
    found.raise_if_any()


check(
    "error-bodies",
    "every error status with a JSON, HTML, plain-text or empty body maps right, words kept",
)(error_bodies)
check(
    "retry-after",
    "Retry-After as delay-seconds, 0, or an HTTP date in all three forms, read right",
)(retry_after)
