"""What one chat completion request came to: its attempts and its final outcome.

The completions endpoint builds an :class:`Attempt` for every try at an upstream (a retry
or a fallback is an attempt of its own) and one :class:`Outcome` per request, errors
before routing included, and hands them to the gateway's :class:`Observer` (metrics,
traces, the structured request log). Nothing here holds a key, nor a prompt unless the
operator asked for prompts in the request log (``PROVARA_LOG_PROMPTS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Protocol

__all__ = ["ERROR_CODES", "Attempt", "NullObserver", "Observer", "Outcome"]

ERROR_CODES: Final[dict[str, str]] = {
    "rate_limited": "the upstream answered 429",
    "overloaded": "the upstream answered 529",
    "upstream_error": "another 5xx (or 408), or a 200 whose body broke the wire",
    "upstream_rejected": "a 4xx other than 429: the key, the model or the request refused",
    "connection_error": "no HTTP status at all: refused, reset, unresolved, timed out",
    "first_token_timeout": "no first event within PROVARA_FIRST_TOKEN_TIMEOUT_MS",
    "stream_timeout": "the upstream stream fell silent for PROVARA_STREAM_TIMEOUT_MS",
    "stream_aborted": "the upstream stream broke off (dropped, truncated, error event)",
    "usage_not_recorded": "the served attempt's usage row could not be committed",
    "client_disconnected": "the client went away before the answer was complete",
    "internal_error": "a bug in the gateway or an adapter (the client got a 500)",
}
"""Every error code of an :class:`Attempt` (and of a usage row), and the upstream ones of
an :class:`Outcome`; an outcome that failed before any attempt carries its
:class:`~reference_gateway.api.errors.GatewayError` code instead (``invalid_api_key``,
``model_not_found``, ``invalid_value`` ...)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one upstream model.

    ``status`` is the HTTP status the attempt came to (the upstream's, 502 for a broken
    connection or body, 504 for a timeout); ``error`` the gateway's error code when it
    failed (``rate_limited``, ``upstream_error``, ``stream_aborted``, ``stream_timeout``,
    ``first_token_timeout``, ``connection_error`` ...), ``None`` when it succeeded.
    ``started`` is wall-clock Unix time; ``latency_ms`` runs to the attempt's end and
    ``ttft_ms`` to its first content event (``None`` when none came). ``cost_usd`` is
    ``None`` when the model is unpriced, never a silent 0.
    """

    index: int
    provider: str
    model: str
    stream: bool
    status: int
    error: str | None
    started: float
    latency_ms: float
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal | None = None
    priced: bool = True
    estimated: bool = False
    retry_after: float | None = None
    finish_reason: str | None = None

    @property
    def public_model(self) -> str:
        """``provider/model``."""
        return f"{self.provider}/{self.model}"

    @property
    def ok(self) -> bool:
        """Whether this attempt answered the request."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's end, as the client saw it.

    ``tenant_id`` and ``tenant`` (its name) are ``None`` when authentication failed;
    ``requested_model`` is what the body asked for (``None`` when it was never read);
    ``served_model`` the ``provider/model`` that answered (``None`` when none did).
    ``status`` is the client's HTTP status (200 for a stream that started, even if it was
    aborted later: ``error`` then says how it ended; 499, ``client_disconnected``, for a
    client that went away before anything was sent). ``attempts`` are in order; they are
    given only to an observer that is not the :class:`NullObserver`.
    ``prompt`` is the body's ``messages`` as the client sent them, set only when
    ``Settings.log_prompts`` is on (``None`` otherwise, and when the body was never read).
    """

    request_id: str
    started: float
    latency_ms: float
    status: int
    error: str | None
    stream: bool
    tenant_id: str | None = None
    tenant: str | None = None
    requested_model: str | None = None
    served_model: str | None = None
    ttft_ms: float | None = None
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    skipped: tuple[str, ...] = ()
    """Fallback models passed over without an attempt (no key for them, not routable)."""
    prompt: object = None
    trace_context: tuple[tuple[str, str], ...] = ()
    """The request's W3C trace context headers (``traceparent``, ``tracestate``) as the
    client sent them: its span continues the client's trace."""

    @property
    def retries(self) -> int:
        """Attempts after the first at the same model as the one before."""
        return sum(
            1
            for before, after in zip(self.attempts, self.attempts[1:], strict=False)
            if before.public_model == after.public_model
        )

    @property
    def fallbacks(self) -> int:
        """Attempts that moved on to another model."""
        return sum(
            1
            for before, after in zip(self.attempts, self.attempts[1:], strict=False)
            if before.public_model != after.public_model
        )

    @property
    def path(self) -> str:
        """The attempts as ``model status → model status``, empty when none was made."""
        return " → ".join(f"{a.public_model} {a.status}" for a in self.attempts)


class Observer(Protocol):
    """Receives every attempt as it ends and every request's outcome."""

    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        """An attempt ended (called before the request's :meth:`request_done`)."""

    def request_done(self, outcome: Outcome) -> None:
        """A request ended: its answer (or error) was sent, or the client went away."""


class NullObserver:
    """The observer when nothing observes: every call is free."""

    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        return None

    def request_done(self, outcome: Outcome) -> None:
        return None
