"""The metrics on a port of their own (``PROVARA_METRICS_BIND``), without authentication.

Meant for a loopback or private address a Prometheus server scrapes; the gateway's own
port keeps ``/metrics`` behind an operator token.
"""

from __future__ import annotations

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from provara_kit.errors import ConfigurationError
from reference_gateway.config import parse_bind

__all__ = ["MetricsServer"]


class MetricsServer:
    """prometheus-client's HTTP server for ``registry`` on ``bind`` (``host:port``), in a
    thread."""

    def __init__(self, bind: str, registry: CollectorRegistry) -> None:
        host, port = parse_bind(bind)
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigurationError(
                f"PROVARA_METRICS_BIND {bind}: cannot listen there ({exc.strerror or exc})"
            ) from None
        self.host = host
        self.port = port

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
