"""The attempts of one chat completion request: retries, fallbacks and what each cost.

A request's models form a chain: the one asked for (or the one ``auto`` chose), then
``Settings.fallbacks`` of it, in order. :class:`Attempts` hands out one route per
attempt: after a failure before the first byte it retries the same model
(:class:`~reference_gateway.retry.RetryPolicy` says when and after what wait), then moves
on along the chain; a fallback the tenant has no key for is skipped (named in the answer's
``skipped`` list, no attempt). When nothing is left the last failure is the answer.

Every attempt becomes a usage row (:meth:`UsageRecorder.record` for a failed one, queued
before the served row's :meth:`UsageRecorder.commit`, so in the same transaction or an
earlier one), an :class:`~reference_gateway.outcome.Attempt` for the observer and, when
it failed, a failure the router holds against the model. :class:`RequestLog` gathers them
and reports the request's :class:`~reference_gateway.outcome.Outcome` exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from provara_kit.accounting import build_meta
from provara_kit.errors import ProviderError
from provara_kit.types import ChatRequest, ProvaraMeta
from reference_gateway.api.errors import GatewayError, from_provider_error, unsupported
from reference_gateway.outcome import Attempt, NullObserver, Observer, Outcome
from reference_gateway.providers import Route
from reference_gateway.retry import Failure, classify
from reference_gateway.types import StoredKey, Tenant
from reference_gateway.usage import Attempted

if TYPE_CHECKING:
    import asyncio

    from reference_gateway.app import Gateway

__all__ = ["ATTEMPTS_HEADER", "SERVED_MODEL_HEADER", "Attempts", "RequestLog"]

logger = logging.getLogger("reference_gateway")

SERVED_MODEL_HEADER = "x-provara-served-model"
ATTEMPTS_HEADER = "x-provara-attempts"

_PROCESSED = frozenset(
    {"first_token_timeout", "stream_timeout", "stream_aborted", "internal_error"}
)
"""Failures after which the upstream may have read (and will bill) the input."""


class RequestLog:
    """What one request came to so far; :meth:`finish` reports its outcome once.

    ``path`` is every attempt as ``(provider/model, status, error)``, what the answer
    names. With the :class:`~reference_gateway.outcome.NullObserver` nothing is built for
    the observer (``observing`` is false; ``attempts`` stays empty).
    """

    __slots__ = (
        "_done",
        "_observer",
        "attempts",
        "error",
        "path",
        "prompt",
        "request_id",
        "requested_model",
        "served_model",
        "skipped",
        "started",
        "status",
        "stream",
        "t0",
        "tenant",
        "trace_context",
    )

    def __init__(self, observer: Observer, request_id: str) -> None:
        self._observer: Observer | None = None if type(observer) is NullObserver else observer
        self.request_id = request_id
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.tenant: Tenant | None = None
        self.requested_model: str | None = None
        self.served_model: str | None = None
        self.stream = False
        self.path: list[tuple[str, int, str | None]] = []
        self.attempts: list[Attempt] = []
        self.skipped: list[str] = []
        self.prompt: object = None
        self.trace_context: tuple[tuple[str, str], ...] = ()
        """The client's W3C trace context headers, kept only when :attr:`observing`."""
        self.status = 200
        self.error: str | None = None
        """The outcome's error code once known (an upstream failure's, not the response's)."""
        self._done = False

    @property
    def observing(self) -> bool:
        """Whether an observer wants the attempts and the outcome."""
        return self._observer is not None

    def attempt_done(self, attempt: Attempt) -> None:
        """Hand an attempt to the observer (only called when :attr:`observing`)."""
        self.attempts.append(attempt)
        observer = self._observer
        if observer is not None and self.tenant is not None:
            observer.attempt_done(attempt, request_id=self.request_id, tenant_id=self.tenant.id)

    def headers(self, *, serving: bool = False) -> dict[str, str]:
        """The response headers naming the served model and the number of attempts
        (``serving``: the one under way, a stream's, is not recorded yet)."""
        headers = {ATTEMPTS_HEADER: str(len(self.path) + serving)}
        if self.served_model is not None:
            headers[SERVED_MODEL_HEADER] = self.served_model
        return headers

    def meta(self, meta: ProvaraMeta) -> dict[str, Any]:
        """The answer's ``provara`` object: the meta, the served model and the path."""
        body = meta.to_dict()
        body["served_model"] = self.served_model
        body["requested_model"] = self.requested_model
        body["attempts"] = len(self.path)
        body["path"] = [
            {"model": model, "status": status, "error": error} for model, status, error in self.path
        ]
        if self.skipped:
            body["skipped"] = list(self.skipped)
        return body

    def finish(self, status: int, error: str | None) -> None:
        """The request ended with ``status`` (and ``error``): report it, the first time."""
        if self._done:
            return
        self._done = True
        observer = self._observer
        if observer is None:
            return
        tenant = self.tenant
        served = next((a for a in reversed(self.attempts) if a.ok), None)
        observer.request_done(
            Outcome(
                request_id=self.request_id,
                started=self.started,
                latency_ms=(time.perf_counter() - self.t0) * 1000,
                status=status,
                error=error,
                stream=self.stream,
                tenant_id=None if tenant is None else tenant.id,
                tenant=None if tenant is None else tenant.name,
                requested_model=self.requested_model,
                served_model=self.served_model,
                ttft_ms=None if served is None else served.ttft_ms,
                attempts=tuple(self.attempts),
                skipped=tuple(self.skipped),
                prompt=self.prompt,
                trace_context=self.trace_context,
            )
        )


class Attempts:
    """The chain of models one request may be served by, and the attempts made at it."""

    __slots__ = (
        "_fault",
        "_gateway",
        "_keys",
        "_last_failure",
        "_tried",
        "cell",
        "chain",
        "log",
        "position",
        "request",
        "started",
        "tenant",
        "tries",
    )

    def __init__(
        self,
        gateway: Gateway,
        log: RequestLog,
        tenant: Tenant,
        request: ChatRequest,
        cell: str,
        *,
        local_fault: str | None,
    ) -> None:
        self._gateway = gateway
        self.log = log
        self.tenant = tenant
        self.request = request
        self.cell = cell
        self._fault = local_fault
        self.chain: tuple[str, ...] = ()
        self.position = 0
        self.tries = 0
        """Retries made at the current model."""
        self._tried: set[str] = set()
        self._last_failure: tuple[Route, ProviderError, Failure] | None = None
        """The last failed attempt: its error is the answer when nothing else is left."""
        self._keys: Mapping[str, StoredKey] = {}
        self.started = gateway.retry.clock()

    # -- routes ----------------------------------------------------------------------------

    async def first(self, model: str) -> Route:
        """The first attempt's route for ``model``; when no key can serve it and it has
        fallbacks, the first fallback that can. Raises the model's own error otherwise."""
        fallbacks: Mapping[str, tuple[str, ...]] = self._gateway.settings.fallbacks
        try:
            route = await self._gateway.providers.route(self.tenant, model, local_fault=self._fault)
        except GatewayError as exc:
            chain = fallbacks.get(model)
            if not chain or exc.status >= 500 or exc.code == "invalid_header":
                raise
            self.chain = (model, *chain)
            self._keys = await self._gateway.providers.tenant_keys(self.tenant.id)
            self.log.skipped.append(model)
            following = await self._next_model()
            if following is None:
                raise
            return following
        served = route.public_model
        self.chain = (served, *(fallbacks.get(served) or fallbacks.get(model) or ()))
        if len(self.chain) > 1:
            self._keys = await self._gateway.providers.tenant_keys(self.tenant.id)
        return route

    async def _next_model(self) -> Route | None:
        """The route of the next model of the chain that can be served; None at its end."""
        chain = self.chain
        while self.position + 1 < len(chain):
            self.position += 1
            self.tries = 0
            model = chain[self.position]
            if model in self._tried:
                continue
            try:
                return await self._gateway.providers.route(
                    self.tenant, model, local_fault=self._fault
                )
            except GatewayError as exc:
                logger.info(
                    "request %s: fallback %s skipped (%s)", self.log.request_id, model, exc.code
                )
                self.log.skipped.append(model)
        return None

    def has_next(self) -> bool:
        """Whether a failure now could still be retried or fall back to a model some key
        can serve (before the first byte: a stream that has somewhere to go sends no
        keep-alives)."""
        policy = self._gateway.retry
        if self.tries < policy.retries and policy.left(self.started) > 0:
            return True
        pool = self._gateway.providers
        return any(
            model not in self._tried
            and any(pool.key_source(p, self._keys) is not None for p, _ in pool.candidates(model))
            for model in self.chain[self.position + 1 :]
        )

    async def after(
        self,
        route: Route,
        exc: ProviderError,
        started: float,
        t0: float,
        *,
        stream: bool,
    ) -> Route:
        """Record the failed attempt at ``route`` (which the caller released) and return
        the next attempt's route, after the retry's wait; raise the answer's
        :class:`GatewayError` when nothing is left."""
        failure = classify(exc)
        self.failed(route, failure, started, t0, stream=stream)
        policy = self._gateway.retry
        if failure.retry and self.tries < policy.retries:
            delay = policy.delay(self.tries, failure.retry_after)
            if delay <= policy.left(self.started):
                await policy.sleep(delay)
                self.tries += 1
                try:
                    return await self._gateway.providers.route(
                        self.tenant, route.public_model, local_fault=self._fault, attempt=self.tries
                    )
                except GatewayError as skipped:  # the key was deleted meanwhile
                    logger.info(
                        "request %s: retry of %s skipped (%s)",
                        self.log.request_id,
                        route.public_model,
                        skipped.code,
                    )
        if failure.fall_back:
            self._last_failure = (route, exc, failure)
            following = await self._next_model()
            if following is not None:
                return following
        raise self._answer(route, exc, failure)

    async def refused(self, route: Route, exc: ValueError) -> Route:
        """``route``'s adapter refused the request before sending it (a parameter it
        cannot carry; the caller released the route). A fallback that refuses is skipped
        like one with no key; the request's own model refusing is the client's 400, and so
        is a refusal with nothing before it."""
        failed = self._last_failure
        if failed is None:
            raise unsupported(exc)
        logger.info(
            "request %s: fallback %s skipped (it cannot take the request: %s)",
            self.log.request_id,
            route.public_model,
            exc,
        )
        self.log.skipped.append(route.public_model)
        self._tried.add(route.public_model)
        following = await self._next_model()
        if following is not None:
            return following
        raise self._answer(*failed)

    def _answer(self, route: Route, exc: ProviderError, failure: Failure) -> GatewayError:
        """The error response when ``exc`` at ``route`` is the last word."""
        self.log.error = failure.error
        error = from_provider_error(
            exc, provider=route.provider_name, request_id=self.log.request_id
        )
        return GatewayError(
            error.status,
            error.message,
            type=error.type,
            param=error.param,
            code=error.code,
            headers={
                "x-request-id": self.log.request_id,
                **error.headers,
                **self.log.headers(),
            },
        )

    # -- records ---------------------------------------------------------------------------

    def upstream_request(self, route: Route) -> ChatRequest:
        """The request as ``route``'s provider takes it (its own model id)."""
        return self.request.model_copy(update={"model": route.model})

    def _meta(
        self,
        route: Route,
        t0: float,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        output_chars: int = 0,
        first_token_at: float | None = None,
    ) -> ProvaraMeta:
        """The meta of an attempt that has none: the counts given, the rest estimated."""
        return build_meta(
            provider=route.provider_name,
            request=self.upstream_request(route),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            output_chars=output_chars,
            finish_reason=None,
            started=t0,
            first_token_at=first_token_at,
            # The provider's own table when it has one (what its answers are priced by).
            pricing=getattr(route.provider, "_pricing", None)
            or cast(Mapping[str, tuple[object, object]], self._gateway.router.pricing),
        )

    def _record(
        self,
        route: Route,
        meta: ProvaraMeta,
        status: int,
        error: str | None,
        started: float,
        *,
        stream: bool,
        retry_after: float | None = None,
    ) -> Attempted:
        log = self.log
        index = len(log.path)
        public_model = route.public_model
        log.path.append((public_model, status, error))
        if error is not None:
            self._tried.add(public_model)
        attempted = Attempted(status, error, index, log.requested_model, route.key_hint)
        if not log.observing:
            return attempted
        log.attempt_done(
            Attempt(
                index=index,
                provider=route.provider_name,
                model=route.model,
                stream=stream,
                status=status,
                error=error,
                started=started,
                latency_ms=meta.latency_ms,
                ttft_ms=meta.ttft_ms,
                input_tokens=meta.input_tokens,
                output_tokens=meta.output_tokens,
                cost_usd=meta.cost_usd,
                priced=meta.priced,
                estimated="estimated" in (meta.input_tokens_source, meta.output_tokens_source),
                retry_after=retry_after,
                finish_reason=meta.finish_reason,
            )
        )
        return attempted

    def _queue(
        self, route: Route, meta: ProvaraMeta, attempted: Attempted, *, stream: bool
    ) -> None:
        self._gateway.usage.record(
            request_id=self.log.request_id,
            tenant_id=self.tenant.id,
            meta=meta,
            key_source=route.key_source,
            stream=stream,
            cell=self.cell,
            attempt=attempted,
        )

    def failed(
        self,
        route: Route,
        failure: Failure,
        started: float,
        t0: float,
        *,
        stream: bool,
    ) -> None:
        """Record an attempt that failed before its first byte: no tokens when the
        upstream refused it, its input (estimated) when it may have read it (it timed out
        or broke off)."""
        processed = failure.error in _PROCESSED or failure.status == 504
        meta = self._meta(route, t0, input_tokens=None if processed else 0, output_tokens=0)
        attempted = self._record(
            route,
            meta,
            failure.status,
            failure.error,
            started,
            stream=stream,
            retry_after=failure.retry_after,
        )
        self._queue(route, meta, attempted, stream=stream)
        if failure.counts_against_model:
            self._gateway.router.failed(self.tenant.id, route.public_model)

    def crashed(self, route: Route, started: float, t0: float, *, stream: bool) -> None:
        """Record an attempt whose adapter raised something other than a provider error
        (a bug; the client gets a 500): its input estimated, as the upstream may have read
        it. Not held against the model by the router, nor retried."""
        failure = Failure(500, "internal_error", retry=False, fall_back=False)
        self.failed(route, failure, started, t0, stream=stream)

    def broke(
        self,
        route: Route,
        status: int,
        error: str,
        started: float,
        t0: float,
        *,
        output_chars: int,
        first_token_at: float | None,
    ) -> None:
        """Record a stream that ended without its meta (after its first byte, or when the
        client went away): every count estimated from what it read and sent."""
        meta = self._meta(
            route,
            t0,
            input_tokens=None,
            output_tokens=None,
            output_chars=output_chars,
            first_token_at=first_token_at,
        )
        self._queue(
            route, meta, self._record(route, meta, status, error, started, stream=True), stream=True
        )
        if error not in ("client_disconnected", "internal_error"):
            self._gateway.router.failed(self.tenant.id, route.public_model)

    def served(
        self, route: Route, meta: ProvaraMeta, started: float, *, stream: bool
    ) -> asyncio.Future[None]:
        """Record the attempt that answered; the future is done once its row is
        committed (with every failed attempt's row before it)."""
        attempted = self._record(route, meta, 200, None, started, stream=stream)
        gateway = self._gateway
        gateway.router.succeeded(self.tenant.id, route.public_model)
        return gateway.usage.commit(
            request_id=self.log.request_id,
            tenant_id=self.tenant.id,
            meta=meta,
            key_source=route.key_source,
            stream=stream,
            cell=self.cell,
            attempt=attempted,
        )
