"""The operator pages, ``/dashboard/operator/...``: every tenant's spend, the tenants
themselves, and each provider's health. Operator tokens only (see
:mod:`reference_gateway.dashboard.operator.session`); every post is refused when it comes
from another site."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from reference_gateway.dashboard.csrf import guard_posts
from reference_gateway.dashboard.operator.health import HealthPage
from reference_gateway.dashboard.operator.session import HOME, OperatorSessions
from reference_gateway.dashboard.operator.spend import SpendPage
from reference_gateway.dashboard.operator.tenants import TenantsPage

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["routes"]


async def _home(request: Request) -> Response:
    return RedirectResponse(HOME, status_code=303)


def routes(gateway: Gateway) -> list[Route]:
    sessions = OperatorSessions(gateway)
    tenants = TenantsPage(gateway, sessions)
    listed = [
        Route("/dashboard/operator", _home, methods=["GET"]),
        Route("/dashboard/operator/login", sessions.login_form, methods=["GET"]),
        Route("/dashboard/operator/login", sessions.login, methods=["POST"]),
        Route("/dashboard/operator/logout", sessions.logout, methods=["POST"]),
        Route("/dashboard/operator/tenants", tenants.get, methods=["GET"]),
        Route("/dashboard/operator/tenants", tenants.post, methods=["POST"]),
        Route("/dashboard/operator/tenants/revoke", tenants.confirm, methods=["GET"]),
        Route("/dashboard/operator/spend", SpendPage(gateway, sessions).get, methods=["GET"]),
        Route("/dashboard/operator/health", HealthPage(gateway, sessions).get, methods=["GET"]),
    ]
    return guard_posts(listed)
