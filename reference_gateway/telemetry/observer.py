"""The gateway's observer: metrics, traces and the request log, each fed every outcome.

:class:`Telemetry` builds what the settings ask for at start-up; its :attr:`observer` is a
:class:`Fanout` over them, or a :class:`~reference_gateway.outcome.NullObserver` when all
three are off. One of them failing never fails a request nor starves the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from reference_gateway.config import Settings
from reference_gateway.outcome import Attempt, NullObserver, Observer, Outcome
from reference_gateway.telemetry import tracing
from reference_gateway.telemetry.bind import MetricsServer
from reference_gateway.telemetry.labels import Catalog, ModelLabels
from reference_gateway.telemetry.metrics import Metrics
from reference_gateway.telemetry.request_log import RequestLog

__all__ = ["Fanout", "Telemetry"]

logger = logging.getLogger("reference_gateway")

_REFRESH_SECONDS = 1.0


class Fanout:
    """Hands every call to each observer in turn; an exception is logged, not raised."""

    def __init__(self, observers: Sequence[Observer]) -> None:
        self.observers = tuple(observers)

    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        for observer in self.observers:
            try:
                observer.attempt_done(attempt, request_id=request_id, tenant_id=tenant_id)
            except Exception:
                logger.exception("%s failed on an attempt", type(observer).__name__)

    def request_done(self, outcome: Outcome) -> None:
        for observer in self.observers:
            try:
                observer.request_done(outcome)
            except Exception:
                logger.exception(
                    "%s failed on request %s", type(observer).__name__, outcome.request_id
                )


class Telemetry:
    """What observes one gateway: built from ``settings``, started and stopped with it.

    ``catalog`` lists the models metric labels may name (the provider pool);
    ``usage_pending`` reads the usage recorder's queue depth.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        catalog: Catalog | None,
        usage_pending: Callable[[], int],
    ) -> None:
        extra = {settings.default_model, settings.judge}
        for source, targets in settings.fallbacks.items():
            extra.update((source, *targets))
        labels = ModelLabels(catalog, extra)
        self.metrics = Metrics(labels, usage_pending=usage_pending) if settings.metrics else None
        self.tracing = tracing.from_environ(settings.environ, labels)
        self.request_log = (
            None
            if settings.request_log == "off"
            else RequestLog(settings.request_log, prompts=settings.log_prompts)
        )
        parts: list[Observer] = [
            part for part in (self.metrics, self.tracing, self.request_log) if part is not None
        ]
        self.observer: Observer = Fanout(parts) if parts else NullObserver()
        self._bind = settings.metrics_bind
        self.server: MetricsServer | None = None
        self._refresher: asyncio.Task[None] | None = None

    def start(self) -> Observer:
        """Open the metrics bind and start refreshing the shared gauges; the observer."""
        metrics = self.metrics
        if metrics is not None:
            if self._bind is not None:
                self.server = MetricsServer(self._bind, metrics.exposition)
                logger.info("metrics: http://%s/metrics (no authentication)", self._bind)
            if metrics.multiprocess_dir is not None:
                self._refresher = asyncio.create_task(self._refresh(metrics), name="metrics")
        return self.observer

    async def _refresh(self, metrics: Metrics) -> None:
        # Other workers' scrapes read this process's gauge from its file: keep it current.
        while True:
            metrics.refresh()
            await asyncio.sleep(_REFRESH_SECONDS)

    async def aclose(self) -> None:
        """Stop the refresh and the bind, flush the spans, drop this worker's gauges."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self.server is not None:
            await asyncio.to_thread(self.server.close)
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)
        if self.metrics is not None:
            self.metrics.close()
