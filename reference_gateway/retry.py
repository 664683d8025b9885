"""When a failed attempt is tried again: on the same model, on the next one, or not at all.

:func:`classify` turns a provider failure into a :class:`Failure`: the attempt's HTTP
status, its error code (the ``error`` column of its usage row) and what may help:

=============================================  ====================  =======  =========
failure                                        error code            retry    fall back
=============================================  ====================  =======  =========
429                                            ``rate_limited``      yes      yes
529                                            ``overloaded``        yes      yes
other 5xx, 408                                 ``upstream_error``    yes      yes
refused, reset, unresolved, timed out          ``connection_error``  yes      yes
no first token within the limit                ``first_token_timeout`` yes    yes
stream broken or silent before its first byte  ``stream_aborted``,   yes      yes
                                               ``stream_timeout``
a 200 whose body breaks the wire               ``upstream_error``    no       yes
401, 403, 404 (this key or this provider       ``upstream_rejected`` no       yes
cannot serve the model)
400, 409, 413, 422 and other 4xx (the request  ``upstream_rejected`` no       no
itself is refused: another model would be too)
=============================================  ====================  =======  =========

:class:`RetryPolicy` holds the limits (``PROVARA_RETRIES`` per model,
``PROVARA_RETRY_BUDGET_MS`` per request, ``PROVARA_FIRST_TOKEN_TIMEOUT_MS``) and the
wait before a retry: the upstream's ``Retry-After`` when it sent one, else a jittered
exponential backoff (``base * 2**n``, at most 8 s, drawn from its upper half). Its
``sleep``, ``clock`` and ``rng`` are injectable, so tests see the waits without waiting.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from provara_kit.errors import (
    MalformedResponseError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderStatusError,
    StreamAbortedError,
    StreamTimeoutError,
)

__all__ = ["MAX_BACKOFF", "Failure", "FirstTokenTimeoutError", "RetryPolicy", "classify"]

MAX_BACKOFF = 8.0
"""The longest backoff in seconds (a ``Retry-After`` may ask for more, within the budget)."""

_FALLBACK_STATUSES = frozenset({401, 403, 404})


class FirstTokenTimeoutError(StreamTimeoutError):
    """No content arrived within ``PROVARA_FIRST_TOKEN_TIMEOUT_MS`` of the attempt's start."""


@dataclass(frozen=True, slots=True)
class Failure:
    """What one failed attempt came to and what may help (see the module docstring)."""

    status: int
    error: str
    retry: bool
    fall_back: bool
    retry_after: float | None = None

    @property
    def counts_against_model(self) -> bool:
        """Whether the router should hold this against the model: everything except a
        request the upstream refused as such (a 400: the client's fault, not the model's)."""
        return self.fall_back


def classify(exc: ProviderError) -> Failure:
    """The :class:`Failure` for a provider error raised before the first byte was sent."""
    if isinstance(exc, ProviderStatusError):
        status = exc.status_code
        if status == 429:
            return Failure(status, "rate_limited", True, True, exc.retry_after)
        if isinstance(exc, OverloadedError) or status == 529:
            return Failure(status, "overloaded", True, True, exc.retry_after)
        if status >= 500 or status == 408:
            return Failure(status, "upstream_error", True, True, exc.retry_after)
        return Failure(status, "upstream_rejected", False, status in _FALLBACK_STATUSES)
    if isinstance(exc, FirstTokenTimeoutError):
        return Failure(504, "first_token_timeout", True, True)
    if isinstance(exc, StreamTimeoutError):
        return Failure(504, "stream_timeout", True, True)
    if isinstance(exc, StreamAbortedError):
        return Failure(502, "stream_aborted", True, True)
    if isinstance(exc, ProviderConnectionError):
        timed_out = "timed out" in exc.reason
        return Failure(504 if timed_out else 502, "connection_error", True, True)
    if isinstance(exc, MalformedResponseError):
        return Failure(502, "upstream_error", False, True)
    return Failure(502, "upstream_error", exc.retryable, True)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(slots=True)
class RetryPolicy:
    """Retry limits and waits for every request of one gateway.

    ``retries`` is the number of retries per model (0: one attempt each); ``budget`` the
    seconds from a request's start within which a retry's wait must end (a fallback's
    first attempt needs no wait and is always made); ``first_token_timeout`` the seconds
    a streamed attempt that has somewhere to go next waits for its first event (0: no
    limit); ``backoff`` the first retry's base wait.
    """

    retries: int = 2
    budget: float = 10.0
    first_token_timeout: float = 0.0
    backoff: float = 0.25
    sleep: Callable[[float], Awaitable[None]] = _sleep
    clock: Callable[[], float] = time.perf_counter
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based): ``Retry-After`` when
        the upstream sent one, else jittered exponential backoff."""
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(MAX_BACKOFF, self.backoff * math.pow(2, retry))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def left(self, started: float) -> float:
        """Seconds of the budget left for a request that started at ``started``
        (a :attr:`clock` reading)."""
        return self.budget - (self.clock() - started)
