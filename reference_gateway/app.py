"""The Starlette application: :func:`create_app` and the :class:`Gateway` it serves.

Routes:

=====================================  ====================================================
``POST /v1/chat/completions``          OpenAI-compatible chat completions, streamed or not
``GET /v1/models``, ``/v1/models/ID``  routable models with their prices
``POST /v1/feedback``                  grade one of your completions (the router learns)
``GET|POST|DELETE /api/provider-keys`` the tenant's own provider keys (JSON)
``/dashboard/api-keys``                the same, as an HTML page
``/dashboard/providers``, ``/usage``,  providers and pricing, your usage and cost, the
``/router``                            router's cells
``/dashboard/operator/...``            operators only: every tenant's spend, tenants,
                                       the providers' health
``GET /metrics``                       Prometheus metrics (an operator token)
``GET /healthz``                       liveness, no authentication
=====================================  ====================================================

The lifespan opens (and migrates) the database, rebuilds the router's posteriors from the
feedback table, starts the local upstream (provider ``local``), the usage writer, the sync
with other processes, the judge and model discovery; on shutdown it stops the sync and the
judge, flushes usage, closes every provider client, stops the local upstream and closes the
database, in that order.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import ChainMap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from provara_kit.errors import ConfigurationError
from provara_kit.pricing import MODEL_PRICING
from provara_kit.registry import REGISTRY, Registry
from provara_kit.vault import Vault
from reference_gateway import dashboard, logs
from reference_gateway.api import chat, feedback, keys, models
from reference_gateway.api.errors import (
    ErrorMiddleware,
    GatewayError,
    gateway_error_handler,
    http_exception_handler,
)
from reference_gateway.auth import Authenticator
from reference_gateway.config import Settings
from reference_gateway.dashboard import operator as operator_pages
from reference_gateway.judge import Judge
from reference_gateway.keys import ProviderKeys
from reference_gateway.local import LOCAL_PRICING, LocalServer
from reference_gateway.operators import OperatorAuth
from reference_gateway.outcome import NullObserver, Observer
from reference_gateway.providers import ProviderPool
from reference_gateway.retry import RetryPolicy
from reference_gateway.router import Router
from reference_gateway.store import Database
from reference_gateway.store.changes import Change
from reference_gateway.store.feedback import Sample
from reference_gateway.sync import Sync, snapshot
from reference_gateway.telemetry import Telemetry
from reference_gateway.telemetry import routes as telemetry_routes
from reference_gateway.usage import UsageRecorder

__all__ = ["Gateway", "create_app"]

logger = logging.getLogger("reference_gateway")

_HEALTHY = b'{"status":"ok"}'


class Gateway:
    """Everything the request handlers share, built at start-up and torn down at shutdown."""

    db: Database
    auth: Authenticator
    operators: OperatorAuth
    providers: ProviderPool
    keys: ProviderKeys
    usage: UsageRecorder
    judge: Judge
    telemetry: Telemetry
    sync: Sync

    def __init__(self, settings: Settings, *, registry: Registry, vault: Vault) -> None:
        self.settings = settings
        self.registry = registry
        self.vault = vault
        seed = settings.router_seed
        self.router = Router(
            default_model=settings.default_model,
            min_samples=settings.min_samples,
            cost_weight=settings.router_cost_weight,
            prior_weight=settings.router_prior_weight,
            rng=None if seed is None else random.Random(seed),
            pricing=ChainMap(cast(dict[str, object], MODEL_PRICING), dict(LOCAL_PRICING)),
        )
        self.retry = RetryPolicy(
            retries=settings.retries,
            budget=settings.retry_budget_ms / 1000,
            first_token_timeout=settings.first_token_timeout_ms / 1000,
            backoff=settings.retry_backoff_ms / 1000,
        )
        self.local: LocalServer | None = None
        # Metrics, traces and the request log replace this at start-up when enabled.
        self.observer: Observer = NullObserver()
        self._discovery: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = self.settings
        logs.install()
        settings.load_provider_modules(self.registry)
        self._log_streaming()
        self.db = await asyncio.to_thread(Database, settings.database_url)
        self.auth = Authenticator(self.db)
        self.operators = OperatorAuth(self.db)
        start = await self.db.read(snapshot)
        self.router.load(start.totals)
        if start.totals:
            samples = sum(row[3] for row in start.totals)
            logger.info("router: %d feedback samples loaded", samples)
        local_url = None
        if settings.local_upstream:
            self.local = LocalServer()
            local_url = await self.local.start()
        self.providers = ProviderPool(
            registry=self.registry,
            vault=self.vault,
            db=self.db,
            environ=settings.environ,
            stream_timeout=settings.stream_timeout,
            local_base_url=local_url,
            fast_transport=settings.fast_transport,
        )
        self.keys = ProviderKeys(
            db=self.db, vault=self.vault, registry=self.registry, pool=self.providers
        )
        self.usage = UsageRecorder(
            self.db,
            flush_ms=settings.usage_flush_ms,
            flush_rows=settings.usage_flush_rows,
            durable=settings.usage_durable,
        )
        self.usage.start()
        self.sync = Sync(
            self.db,
            start,
            interval_ms=settings.sync_ms,
            on_change=self._apply_change,
            on_sample=self._apply_sample,
        )
        self.sync.start()
        seed = settings.router_seed
        self.judge = Judge(
            model=settings.judge,
            rate=settings.judge_rate,
            queue_size=settings.judge_queue,
            providers=self.providers,
            router=self.router,
            db=self.db,
            usage=self.usage,
            rng=None if seed is None else random.Random(seed + 1),
            store_feedback=self.sync.insert_feedback,
        )
        self.judge.start()
        self.telemetry = Telemetry(
            settings, catalog=self.providers, usage_pending=lambda: self.usage.pending
        )
        self.observer = self.telemetry.start()
        if settings.discover_models:
            self._discovery = asyncio.create_task(self._discover(), name="model-discovery")

    def _apply_change(self, change: Change) -> None:
        """Another process (or this one) changed keys, tenants or operators: drop what is
        cached."""
        if change.kind == "operator-created":
            self.operators.forget_unknown()
        elif change.kind == "operator-revoked":
            if change.tenant_id is not None:  # the operator's id
                self.operators.forget_operator(change.tenant_id)
        elif change.kind == "tenant-created":
            self.auth.forget_unknown()
        elif change.tenant_id is not None:
            if change.kind == "tenant-revoked":
                self.auth.forget_tenant(change.tenant_id)
            self.providers.invalidate(change.tenant_id)

    def _apply_sample(self, sample: Sample) -> None:
        """Another process stored a feedback sample: the router learns it here too."""
        if sample.cell is not None:
            self.router.add_sample(sample.tenant_id, sample.cell, sample.model, sample.score)

    def _log_streaming(self) -> None:
        """Say at start-up which providers do not stream, and which cannot be built."""
        for spec in self.registry.specs():
            try:
                streams = spec.streams(self.settings.environ)
            except ConfigurationError as exc:
                logger.error("provider %s cannot be built: %s", spec.name, exc)
                continue
            if not streams:
                logger.warning(
                    "streaming is off for %s: its streamed requests are answered from one "
                    "plain completion",
                    spec.name,
                )

    async def _discover(self) -> None:
        """Ask every provider with an operator key for its models (runbook: start-up)."""
        report = await self.registry.refresh_models(environ=self.settings.environ)
        for name, result in sorted(report.results.items()):
            if result.status == "error":
                logger.warning("model discovery for %s failed: %s", name, result.error)
            elif result.status == "ok":
                logger.info("model discovery for %s: %d models", name, len(result.models))
        self.providers.rebuild_index()

    async def stop(self) -> None:
        if self._discovery is not None:
            self._discovery.cancel()
            await asyncio.gather(self._discovery, return_exceptions=True)
        await self.sync.aclose()
        await self.judge.aclose()
        await self.usage.aclose()
        await self.providers.aclose()
        if self.local is not None:
            await self.local.stop()
        await self.telemetry.aclose()
        self.db.close()


async def _healthz(request: Request) -> Response:
    return Response(_HEALTHY, media_type="application/json")


class _GatewayApp(Starlette):
    """Starlette, with ``POST /v1/chat/completions`` dispatched before everything else.

    The hot path skips the router and the middleware stack, each layer of which costs a
    coroutine per request and a wrapper around every ``send``: the endpoint answers its
    own errors, and unhandled ones go through :class:`ErrorMiddleware` exactly as on any
    other route. Every other request (a GET on that path included: 405) is Starlette's.
    """

    def __init__(self, *, fast_chat: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fast_chat = fast_chat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == chat.PATH and scope["method"] == "POST":
            scope["app"] = self
            await self._fast_chat(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, registry: Registry | None = None) -> Starlette:
    """The gateway as an ASGI app.

    ``settings`` default to :meth:`Settings.from_env`; ``registry`` to the process-wide
    :data:`~provara_kit.registry.REGISTRY`. Raises
    :class:`~provara_kit.errors.MasterKeyError` when ``PROVARA_MASTER_KEY`` is missing or
    unusable: stored keys could not be read or written without it, and a one-line
    :class:`~provara_kit.errors.ConfigurationError` when a provider module or the
    ``PROVARA_CONFIG`` file cannot be used.
    """
    settings = Settings.from_env() if settings is None else settings
    gateway = Gateway(
        settings, registry=REGISTRY if registry is None else registry, vault=settings.vault()
    )
    # A provider module or config file that cannot be used fails here, before anything
    # listens; the lifespan's start applies them again, which changes nothing.
    settings.load_provider_modules(gateway.registry)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    completions = chat.ChatCompletions(gateway)
    routes: list[BaseRoute] = [
        Route("/healthz", _healthz, methods=["GET"]),
        *chat.routes(completions),
        *models.routes(gateway),
        *feedback.routes(gateway),
        *keys.routes(gateway),
        *dashboard.routes(gateway),
        *telemetry_routes(gateway),
        *operator_pages.routes(gateway),
    ]
    app = _GatewayApp(
        fast_chat=ErrorMiddleware(completions.asgi),
        routes=routes,
        middleware=[Middleware(ErrorMiddleware)],
        exception_handlers={
            GatewayError: gateway_error_handler,
            HTTPException: http_exception_handler,
        },
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
