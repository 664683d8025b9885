"""The operator pages' frame: the dashboard's page, with the operator's navigation."""

from __future__ import annotations

from starlette.responses import HTMLResponse

from reference_gateway.dashboard.operator.session import OperatorSession
from reference_gateway.dashboard.page import e, render

__all__ = ["OPERATOR_PAGES", "render_operator"]

OPERATOR_PAGES: tuple[tuple[str, str], ...] = (
    ("/dashboard/operator/tenants", "Tenants"),
    ("/dashboard/operator/spend", "Spend"),
    ("/dashboard/operator/health", "Provider health"),
)
"""The operator pages, in navigation order: ``(path, title)``."""

_HERE = ' class="here"'


def render_operator(
    title: str, body: str, session: OperatorSession, *, status_code: int = 200
) -> HTMLResponse:
    """A full operator page around ``body`` (already escaped HTML)."""
    links = "".join(
        f'<a href="{e(path)}"{_HERE if name == title else ""}>{e(name)}</a>'
        for path, name in OPERATOR_PAGES
    )
    who = (
        f'<div class="muted" id="operator">Operator <strong>{e(session.operator.name)}</strong> '
        '<form class="inline" method="post" action="/dashboard/operator/logout">'
        f'{session.csrf_field}<button type="submit">Log out</button></form></div>'
    )
    nav = f'<nav id="operator-nav">{links}</nav>'
    return render(f"Operator · {title}", f"{nav}{who}{body}", status_code=status_code)
