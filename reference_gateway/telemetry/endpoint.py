"""``GET /metrics`` on the gateway's port: Prometheus exposition, for operators only.

The scrape sends an operator token (``Authorization: Bearer pvo_...``, made with
``provara-gateway operators create NAME``); a tenant token is refused with a 403, no token
or an unknown one with a 401. ``PROVARA_METRICS_BIND`` serves the same without a token on
an address of its own, for a scraper that cannot send one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reference_gateway.api.errors import GatewayError

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["PATH", "routes"]

PATH = "/metrics"


def routes(gateway: Gateway) -> list[BaseRoute]:
    """The ``/metrics`` route of ``gateway``."""

    async def metrics(request: Request) -> Response:
        await gateway.operators.authenticate(request.headers.get("authorization"))
        current = gateway.telemetry.metrics
        if current is None:
            raise GatewayError(
                404, "Metrics are off on this gateway (PROVARA_METRICS=0).", code="not_found"
            )
        accept = request.headers.get("accept", "")
        if current.multiprocess_dir is None:
            body, content_type = current.render(accept)
        else:  # reads every worker's file
            body, content_type = await asyncio.to_thread(current.render, accept)
        return Response(body, headers={"content-type": content_type})

    return [Route(PATH, metrics, methods=["GET"])]
