"""Who is using the dashboard: the tenant's own gateway token, never a separate password.

A browser logs in by pasting the token into a form; it is kept in an ``HttpOnly``,
``SameSite=Strict`` cookie scoped to ``/dashboard`` (``Secure`` over HTTPS). Scripts and
tools may send ``Authorization: Bearer`` instead. Every form post from a cookie session
carries a CSRF token derived from the session's token, so another site cannot post on the
tenant's behalf even where SameSite is not enforced; every post, sign-in included, must also
come from the gateway's own pages (:mod:`reference_gateway.dashboard.csrf`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_gateway.api.errors import GatewayError
from reference_gateway.api.http import read_body
from reference_gateway.auth import bearer_token
from reference_gateway.dashboard.csrf import CrossSitePost
from reference_gateway.dashboard.page import SECURITY_HEADERS, e, render
from reference_gateway.types import Tenant

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["COOKIE", "Session", "SessionAuth", "read_form"]

COOKIE = "provara_token"
_FORM_LIMIT = 64 * 1024
_COOKIE_SECONDS = 8 * 3600


def csrf_token(token: str) -> str:
    """The CSRF token of a session: a keyed digest of its bearer token."""
    return hmac.new(token.encode(), b"provara-dashboard-csrf", hashlib.sha256).hexdigest()[:32]


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body (first value of each field), read under a cap."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise GatewayError(
            415,
            "Forms must be sent as application/x-www-form-urlencoded.",
            code="unsupported_media_type",
        )
    body = await read_body(request, _FORM_LIMIT)
    try:
        fields = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=32
        )
    except (UnicodeDecodeError, ValueError):
        raise GatewayError(400, "The form could not be read.", code="invalid_form") from None
    return {name: values[0] for name, values in fields.items() if values}


class Session:
    """An authenticated dashboard request."""

    def __init__(self, tenant: Tenant, token: str, *, from_cookie: bool) -> None:
        self.tenant = tenant
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


class SessionAuth:
    """Login, logout and the session of a request."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def session(self, request: Request) -> Session | None:
        """The request's session, ``None`` when it has none or its token is wrong."""
        token = bearer_token(request.headers.get("authorization"))
        from_cookie = token is None
        if token is None:
            token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            tenant = await self.gateway.auth.tenant_for_token(token)
        except GatewayError:
            return None
        return Session(tenant, token, from_cookie=from_cookie)

    @staticmethod
    def login_page(*, error: str | None = None, status_code: int = 200) -> Response:
        message = f'<p class="error">{e(error)}</p>' if error else ""
        body = (
            f"{message}<p>Sign in with your gateway token (the <code>pvk_…</code> value "
            "printed by <code>provara-gateway tenants create NAME</code>).</p>"
            '<form method="post" action="/dashboard/login">'
            '<input type="password" name="token" placeholder="pvk_…" size="52" '
            'autocomplete="off" required autofocus> '
            '<button class="primary" type="submit">Sign in</button></form>'
        )
        return render("Sign in", body, status_code=status_code)

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        token = form.get("token", "").strip()
        try:
            await self.gateway.auth.tenant_for_token(token or None)
        except GatewayError:
            if token.startswith("pvo_"):
                return self.login_page(
                    error="That is an operator token: operators sign in at "
                    "/dashboard/operator/login.",
                    status_code=401,
                )
            return self.login_page(error="That token is not valid here.", status_code=401)
        response = RedirectResponse("/dashboard/api-keys", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=_COOKIE_SECONDS,
            path="/dashboard",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        response.headers.update(SECURITY_HEADERS)
        return response

    async def logout(self, request: Request) -> Response:
        session = await self.session(request)
        if session is not None:
            session.check_csrf(await read_form(request))
        response = RedirectResponse("/dashboard/api-keys", status_code=303)
        response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
        return response
