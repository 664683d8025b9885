"""The server-rendered dashboard (no JavaScript): API keys, providers, usage, router."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from reference_gateway.dashboard.api_keys import ApiKeysPage
from reference_gateway.dashboard.cells import RouterPage
from reference_gateway.dashboard.csrf import guard_posts
from reference_gateway.dashboard.providers import ProvidersPage
from reference_gateway.dashboard.session import SessionAuth
from reference_gateway.dashboard.usage import UsagePage
from reference_gateway.dashboard.usage_csv import UsageCsv

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["routes"]


async def _to_api_keys(request: Request) -> Response:
    return RedirectResponse("/dashboard/api-keys", status_code=303)


def routes(gateway: Gateway) -> list[Route]:
    sessions = SessionAuth(gateway)
    page = ApiKeysPage(gateway, sessions)
    listed = [
        Route("/dashboard", _to_api_keys, methods=["GET"]),
        Route("/dashboard/api-keys", page.get, methods=["GET"]),
        Route("/dashboard/api-keys", page.post, methods=["POST"]),
        Route("/dashboard/providers", ProvidersPage(gateway, sessions).get, methods=["GET"]),
        Route("/dashboard/usage", UsagePage(gateway, sessions).get, methods=["GET"]),
        Route("/dashboard/usage.csv", UsageCsv(gateway, sessions).get, methods=["GET"]),
        Route("/dashboard/router", RouterPage(gateway, sessions).get, methods=["GET"]),
        Route("/dashboard/login", sessions.login, methods=["POST"]),
        Route("/dashboard/login", _to_api_keys, methods=["GET"]),
        Route("/dashboard/logout", sessions.logout, methods=["POST"]),
    ]
    return guard_posts(listed)  # every POST is refused when it comes from another site
