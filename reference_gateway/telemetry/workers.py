"""``serve --workers N``: every worker's metrics in one directory, read by any scrape.

:func:`prepare_workers` runs in the serve process before uvicorn starts the workers: it
points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory (the operator's own, emptied of
a previous run's files, else a new temporary one removed at exit), which each worker
inherits, so prometheus-client starts there in multiprocess mode. The metrics bind
(``PROVARA_METRICS_BIND``) is served by the serve process itself, from that directory:
the workers, which share the gateway's port, do not open it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, MutableMapping
from pathlib import Path

from reference_gateway.config import Settings
from reference_gateway.telemetry.bind import MetricsServer
from reference_gateway.telemetry.metrics import workers_registry

__all__ = ["MULTIPROC_DIR_ENV", "prepare_workers"]

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_workers(settings: Settings, environ: MutableMapping[str, str]) -> Callable[[], None]:
    """Set up the shared metrics directory (and bind) in ``environ`` before the workers
    start; returns what to call once they have stopped."""
    if not settings.metrics:
        return lambda: None
    configured = environ.get(MULTIPROC_DIR_ENV, "").strip()
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="provara-metrics-"))
    environ[MULTIPROC_DIR_ENV] = str(path)
    server = None
    if settings.metrics_bind is not None:
        environ.pop("PROVARA_METRICS_BIND", None)
        server = MetricsServer(settings.metrics_bind, workers_registry(str(path)))

    def done() -> None:
        if server is not None:
            server.close()
        if not configured:
            shutil.rmtree(path, ignore_errors=True)

    return done
