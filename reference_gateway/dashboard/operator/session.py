"""Who is using the operator pages: an operator token (``pvo_…``), never a tenant's.

An operator signs in at ``/dashboard/operator/login`` by pasting the token printed by
``provara-gateway operators create NAME``; it is kept in its own ``HttpOnly``,
``SameSite=Strict`` cookie scoped to ``/dashboard/operator`` (``Secure`` over HTTPS), apart
from a tenant's, so one browser may hold both. Tools may send ``Authorization: Bearer``
instead. Forms from a cookie session carry a CSRF token derived from the operator's token,
and every post must come from the gateway's own pages
(:mod:`reference_gateway.dashboard.csrf`).

A tenant's token, sent as a header or held in the tenant cookie with no operator cookie
beside it, gets a 403 page: it is valid, just not for these pages.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_gateway.api.errors import GatewayError
from reference_gateway.auth import bearer_token
from reference_gateway.dashboard.csrf import CrossSitePost
from reference_gateway.dashboard.page import SECURITY_HEADERS, e, render
from reference_gateway.dashboard.session import COOKIE as TENANT_COOKIE
from reference_gateway.dashboard.session import csrf_token, read_form
from reference_gateway.operators import Operator

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["COOKIE", "HOME", "OperatorSession", "OperatorSessions"]

COOKIE = "provara_operator"
HOME = "/dashboard/operator/tenants"
_PATH = "/dashboard/operator"
_LOGIN = "/dashboard/operator/login"
_COOKIE_SECONDS = 8 * 3600


class OperatorSession:
    """An operator's authenticated request."""

    def __init__(self, operator: Operator, token: str, *, from_cookie: bool) -> None:
        self.operator = operator
        self.csrf = csrf_token(token)
        self.from_cookie = from_cookie

    def check_csrf(self, form: dict[str, str]) -> None:
        """:class:`CrossSitePost` (a 403 page) unless a cookie session's form carries the
        right CSRF token."""
        if self.from_cookie and not hmac.compare_digest(form.get("csrf", ""), self.csrf):
            raise CrossSitePost(
                "it carries no valid CSRF token for your session (the page is stale, or the "
                "form came from another site)"
            )

    @property
    def csrf_field(self) -> str:
        """The hidden form field every operator form carries."""
        return f'<input type="hidden" name="csrf" value="{e(self.csrf)}">'


def _login_form() -> str:
    return (
        f'<form id="operator-login" method="post" action="{_LOGIN}">'
        '<input type="password" name="token" placeholder="pvo_…" size="52" '
        'autocomplete="off" required autofocus> '
        '<button class="primary" type="submit">Sign in</button></form>'
    )


def login_page(*, error: str | None = None, status_code: int = 200) -> Response:
    """The operator sign-in form."""
    message = f'<p class="error">{e(error)}</p>' if error else ""
    body = (
        f"{message}<p>Operator pages: every tenant's spend, tenants, and the providers' "
        "health. Sign in with an operator token (the <code>pvo_…</code> value printed by "
        "<code>provara-gateway operators create NAME</code>); a tenant's token does not "
        'work here. Tenants sign in at <a href="/dashboard/api-keys">the dashboard</a>.</p>'
        f"{_login_form()}"
    )
    return render("Operator sign in", body, status_code=status_code)


def tenant_refused() -> Response:
    """The 403 page a tenant's token gets."""
    body = (
        '<p class="error" id="operator-only">These pages are for the gateway\'s operators: '
        "a tenant's token cannot open them. Sign in with an operator token "
        "(<code>pvo_…</code>) to continue.</p>"
        f"{_login_form()}"
    )
    return render("Operators only", body, status_code=403)


class OperatorSessions:
    """Sign-in, sign-out and the operator session of a request."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def session(self, request: Request) -> OperatorSession | Response:
        """The request's operator session; otherwise the page to answer with: the sign-in
        form, or a 403 for a tenant's token."""
        operators = self.gateway.operators
        header = request.headers.get("authorization")
        token = bearer_token(header)
        if token is not None:
            try:
                operator = await operators.operator_for_token(token)
            except GatewayError as exc:
                if exc.status == 403:
                    return tenant_refused()
                return login_page(error="That token is not valid here.", status_code=401)
            return OperatorSession(operator, token, from_cookie=False)
        cookie = request.cookies.get(COOKIE)
        if cookie:
            try:
                operator = await operators.operator_for_token(cookie)
            except GatewayError:
                return login_page(error="Your session has ended; sign in again.", status_code=401)
            return OperatorSession(operator, cookie, from_cookie=True)
        if await self._is_tenant(request.cookies.get(TENANT_COOKIE)):
            return tenant_refused()
        return login_page()

    async def _is_tenant(self, token: str | None) -> bool:
        if not token:
            return False
        try:
            await self.gateway.auth.tenant_for_token(token)
        except GatewayError:
            return False
        return True

    async def login_form(self, request: Request) -> Response:
        session = await self.session(request)
        if isinstance(session, OperatorSession):
            return RedirectResponse(HOME, status_code=303, headers=SECURITY_HEADERS)
        return login_page()

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        token = form.get("token", "").strip()
        try:
            await self.gateway.operators.operator_for_token(token or None)
        except GatewayError as exc:
            if exc.status == 403:
                return tenant_refused()
            return login_page(error="That token is not valid here.", status_code=401)
        response = RedirectResponse(HOME, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=_COOKIE_SECONDS,
            path=_PATH,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        response.headers.update(SECURITY_HEADERS)
        return response

    async def logout(self, request: Request) -> Response:
        session = await self.session(request)
        if isinstance(session, OperatorSession):
            session.check_csrf(await read_form(request))
        response = RedirectResponse(_LOGIN, status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path=_PATH, httponly=True, samesite="strict")
        return response
