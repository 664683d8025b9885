"""``error-in-200``: a 200 whose body is the wire's error object is an error, not an answer.

OpenRouter and other OpenAI-compatible providers answer some failures (an upstream
provider down, a rate limit, a moderation refusal) with status 200 and
``{"error": {"message", "code"}}``; Anthropic's ``{"type": "error", "error": {...}}`` reaches
clients with a 200 behind some proxies. ``complete`` must raise a provider error that
keeps the upstream's words (the key scrubbed from them), never return an empty answer,
lose the message in a "malformed body" error, or raise an untyped exception. A stream
request answered that way must end in a provider error with no meta and no content.
"""

from __future__ import annotations

from conformance.checks.registry import check
from conformance.context import FAKE_KEY, CheckContext, Findings, run_stream
from provara_kit.errors import ProviderError
from provara_kit.testing import ErrorFault

CASES: dict[int, str] = {
    400: "This model's maximum context length is 8192 tokens",
    401: "No auth credentials found",
    429: "Rate limit exceeded: free-models-per-day",
    502: "Provider returned error",
    529: "Overloaded",
}
"""The status each error body names, and its words (as OpenRouter and Anthropic write them)."""


async def error_in_200(ctx: CheckContext) -> None:
    found = Findings()
    for status, words in CASES.items():
        message = f"{words} (key {FAKE_KEY})"
        fault = ErrorFault(status, message=message, wire_status=200)
        where = f"200 with the wire's {status} error body"
        async with ctx.scripted(error=fault) as (provider, _upstream):
            try:
                response = await provider.complete(ctx.request())
            except ProviderError as exc:
                text = str(exc)
                found.expect(
                    words in text, f"{where} (complete): the upstream's words are lost: {text!r}"
                )
                found.expect(
                    FAKE_KEY not in text and FAKE_KEY not in repr(exc),
                    f"{where} (complete): the API key leaks into the error",
                )
            except Exception as exc:  # judged here, whatever it is
                found.fail(
                    f"{where} (complete): raised {type(exc).__name__} ({exc}), "
                    "expected a provider error"
                )
            else:
                found.fail(
                    f"{where} (complete): returned an answer (text {response.text!r}, "
                    f"finish_reason {response.finish_reason!r}), expected a provider error"
                )
            outcome = await run_stream(provider, ctx.request())
            found.expect(
                outcome.error is not None and not outcome.events,
                f"{where} (stream): ended with "
                f"{type(outcome.error).__name__ if outcome.error else 'a clean end'} after "
                f"{len(outcome.events)} events, expected a provider error and no events",
            )
    found.raise_if_any()


check(
    "error-in-200",
    "a 200 whose body is the wire's error raises a provider error with the upstream's words",
)(error_in_200)
