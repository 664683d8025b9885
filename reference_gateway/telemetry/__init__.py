"""What the gateway tells its operator: Prometheus metrics, OpenTelemetry spans and one
structured log line per chat request, all fed from the completions endpoint's
:class:`~reference_gateway.outcome.Outcome` records.

==================  =====================================================================
:mod:`.metrics`     the Prometheus metrics, multiprocess-aware
:mod:`.labels`      label values of bounded cardinality
:mod:`.tracing`     GenAI spans (the ``otel`` extra; nothing imported without it)
:mod:`.request_log` the request line, JSON or text
:mod:`.observer`    :class:`Telemetry`, which builds them, and the fan-out observer
:mod:`.endpoint`    ``GET /metrics`` behind an operator token
:mod:`.bind`        the metrics on an address of their own
:mod:`.workers`     the metrics directory of ``serve --workers N``
==================  =====================================================================
"""

from __future__ import annotations

from reference_gateway.telemetry.endpoint import routes
from reference_gateway.telemetry.observer import Fanout, Telemetry
from reference_gateway.telemetry.workers import prepare_workers

__all__ = ["Fanout", "Telemetry", "prepare_workers", "routes"]
