"""Prometheus metrics of the chat completions, counted from each request's outcome.

Every metric is derived from the :class:`~reference_gateway.outcome.Outcome` a request
ends with (its attempts included), so a request counts once however it ended. Label
values are bounded (:mod:`reference_gateway.telemetry.labels`).

Under ``serve --workers N`` prometheus-client runs in multiprocess mode: the serve
process points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start
(:mod:`reference_gateway.telemetry.workers`), each worker writes its values there, and a
scrape of any worker adds up all of them. The usage queue gauge counts live processes
only; a worker that exits clean removes its share, one that died is removed at the next
scrape.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import values as _values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from reference_gateway.outcome import Attempt, Outcome
from reference_gateway.telemetry.labels import NO_TENANT, ModelLabels, error_label

__all__ = ["ABORTS", "LATENCY_BUCKETS", "TTFT_BUCKETS", "Metrics", "multiprocess_dir"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

ABORTS = frozenset(
    {"stream_aborted", "stream_timeout", "first_token_timeout", "client_disconnected"}
)
"""Error codes counted by ``provara_stream_aborts_total``."""

_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def multiprocess_dir() -> str | None:
    """The directory worker processes share their values through, when prometheus-client
    was imported in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set), else ``None``."""
    if _values.ValueClass is _values.MutexValue:
        return None
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget(pid: int, path: str) -> None:
    """Drop the live gauge values of process ``pid``."""
    mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class WorkersCollector(Collector):
    """All processes' values from a multiprocess directory, the dead ones' live gauges
    dropped first (uvicorn restarts a worker that died without telling anyone)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._inner = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for file in glob.glob(os.path.join(self._path, "gauge_live*_*.db")):
            match = _LIVE_GAUGE_FILE.fullmatch(os.path.basename(file))
            if match is not None and not _alive(int(match.group(1))):
                _forget(int(match.group(1)), self._path)
        metrics: Iterable[Metric] = self._inner.collect()  # type: ignore[no-untyped-call]
        return metrics


def workers_registry(path: str) -> CollectorRegistry:
    """A registry that reads every process's values from ``path`` at each scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkersCollector(path))
    return registry


def _seconds(ms: float) -> float:
    return ms / 1000


_M = TypeVar("_M", Counter, Histogram)


class _Children(Generic[_M]):
    """A metric's labelled children, looked up once (``labels()`` locks and validates on
    every call; the label values here are bounded, so the cache is too)."""

    __slots__ = ("_children", "metric")

    metric: _M

    def __init__(self, metric: _M) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], _M] = {}

    def __call__(self, *values: str) -> _M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    """The gateway's metrics, on a registry of their own (or the multiprocess directory).

    ``usage_pending`` reads the usage recorder's queue depth. Feed it every outcome with
    :meth:`request_done`; :meth:`render` is the ``/metrics`` body.
    """

    def __init__(self, labels: ModelLabels, *, usage_pending: Callable[[], int]) -> None:
        self.labels = labels
        self._usage_pending = usage_pending
        self.multiprocess_dir = multiprocess_dir()
        registry = self.registry = CollectorRegistry()
        self.requests = _Children(
            Counter(
                "provara_requests",
                "Chat completion requests, by tenant, the model that answered (else the last one "
                "tried), the client's HTTP status and whether streamed",
                ["tenant", "provider", "model", "status", "stream"],
                registry=registry,
            )
        )
        self.duration = _Children(
            Histogram(
                "provara_request_duration_seconds",
                "Time from a request's arrival to its end (a stream's last byte)",
                ["provider", "model", "stream"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            )
        )
        self.ttft = _Children(
            Histogram(
                "provara_time_to_first_token_seconds",
                "Time from the start of the attempt that answered to its first content token",
                ["provider", "model", "stream"],
                buckets=TTFT_BUCKETS,
                registry=registry,
            )
        )
        self.errors = _Children(
            Counter(
                "provara_request_errors",
                "Requests that ended in an error, by error code and the client's HTTP status",
                ["error", "status"],
                registry=registry,
            )
        )
        self.attempts = _Children(
            Counter(
                "provara_upstream_attempts",
                "Tries at an upstream model (each retry and fallback is one), by the attempt's "
                "HTTP status and error code",
                ["provider", "model", "status", "error"],
                registry=registry,
            )
        )
        self.tokens = _Children(
            Counter(
                "provara_tokens",
                "Tokens of every attempt (estimated ones included), by tenant, model and "
                "direction (input, output)",
                ["tenant", "provider", "model", "direction"],
                registry=registry,
            )
        )
        self.cost = _Children(
            Counter(
                "provara_cost_usd",
                "USD spent on priced attempts, by tenant and model",
                ["tenant", "provider", "model"],
                registry=registry,
            )
        )
        self.unpriced = _Children(
            Counter(
                "provara_unpriced_attempts",
                "Attempts at a model with no price (their cost is unknown, not zero)",
                ["provider", "model"],
                registry=registry,
            )
        )
        self.aborts = _Children(
            Counter(
                "provara_stream_aborts",
                "Attempts that ended without finishing: stream_aborted, stream_timeout, "
                "first_token_timeout, client_disconnected",
                ["provider", "model", "reason"],
                registry=registry,
            )
        )
        self.retries = _Children(
            Counter(
                "provara_retries",
                "Attempts tried again at the same model, by the error that caused it",
                ["provider", "model", "error"],
                registry=registry,
            )
        )
        self.fallbacks = _Children(
            Counter(
                "provara_fallbacks",
                "Moves from a failed model to the next one (provider/model names)",
                ["from_model", "to_model", "error"],
                registry=registry,
            )
        )
        self.usage_queue = Gauge(
            "provara_usage_pending_rows",
            "Usage rows waiting to be written to the database",
            registry=registry,
            multiprocess_mode="livesum",
        )
        if self.multiprocess_dir is None:
            self.usage_queue.set_function(lambda: float(self._usage_pending()))
            self._exposition: CollectorRegistry = registry
        else:
            self._exposition = workers_registry(self.multiprocess_dir)

    @property
    def exposition(self) -> CollectorRegistry:
        """What a scrape reads: this process's registry, or every worker's values."""
        return self._exposition

    def refresh(self) -> None:
        """Write this process's usage queue depth (multiprocess mode reads no callback)."""
        if self.multiprocess_dir is not None:
            self.usage_queue.set(self._usage_pending())

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition body and its content type, for an ``Accept`` header."""
        self.refresh()
        encoder, content_type = choose_encoder(accept)
        return encoder(self._exposition), content_type

    def close(self) -> None:
        """A worker that stops takes its live gauge values with it."""
        if self.multiprocess_dir is not None:
            _forget(os.getpid(), self.multiprocess_dir)

    # -- the observer ----------------------------------------------------------------------

    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        return None  # counted with its request, whose outcome holds every attempt

    def request_done(self, outcome: Outcome) -> None:
        labels = self.labels
        tenant = outcome.tenant or NO_TENANT
        provider, model = labels.of_outcome(outcome)
        stream = "true" if outcome.stream else "false"
        status = str(outcome.status)
        self.requests(tenant, provider, model, status, stream).inc()
        self.duration(provider, model, stream).observe(_seconds(outcome.latency_ms))
        if outcome.ttft_ms is not None:
            self.ttft(provider, model, stream).observe(_seconds(outcome.ttft_ms))
        if outcome.error is not None:
            self.errors(error_label(outcome.error), status).inc()
        previous: Attempt | None = None
        for attempt in outcome.attempts:
            self._attempt(attempt, tenant, previous)
            previous = attempt
        if outcome.error in ABORTS and (previous is None or previous.error != outcome.error):
            self.aborts(provider, model, outcome.error).inc()

    def _attempt(self, attempt: Attempt, tenant: str, previous: Attempt | None) -> None:
        labels = self.labels
        provider, model = labels.of_attempt(attempt)
        self.attempts(provider, model, str(attempt.status), error_label(attempt.error)).inc()
        if attempt.input_tokens > 0:
            self.tokens(tenant, provider, model, "input").inc(attempt.input_tokens)
        if attempt.output_tokens > 0:
            self.tokens(tenant, provider, model, "output").inc(attempt.output_tokens)
        cost = attempt.cost_usd
        if cost is None or not attempt.priced:
            if attempt.input_tokens or attempt.output_tokens:
                self.unpriced(provider, model).inc()
        elif cost > Decimal(0):
            self.cost(tenant, provider, model).inc(float(cost))
        if attempt.error in ABORTS:
            self.aborts(provider, model, attempt.error).inc()
        if previous is None:
            return
        reason = error_label(previous.error)
        if previous.public_model == attempt.public_model:
            self.retries(*labels.of_attempt(previous), reason).inc()
        else:
            before, after = labels.name(previous.public_model), labels.name(attempt.public_model)
            self.fallbacks(before, after, reason).inc()
