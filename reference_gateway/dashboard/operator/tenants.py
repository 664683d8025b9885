"""``/dashboard/operator/tenants``: every tenant, create one, revoke one.

A new tenant's token is shown once, on the page that answers the form (never in a URL,
never again: only its digest is stored). Revoking takes a confirmation step, a page of its
own with a second form; the token then stops working in every gateway process, and the
tenant's usage and keys stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_gateway.auth import create_tenant
from reference_gateway.dashboard.operator.frame import render_operator
from reference_gateway.dashboard.operator.session import OperatorSession, OperatorSessions
from reference_gateway.dashboard.page import SECURITY_HEADERS, e
from reference_gateway.dashboard.session import read_form
from reference_gateway.store.tenants import (
    TenantExistsError,
    TenantRow,
    list_tenants,
    revoke_tenant,
)

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["TenantsPage"]

_PATH = "/dashboard/operator/tenants"
_CONFIRM = "/dashboard/operator/tenants/revoke"


class TenantsPage:
    """The tenants page, its forms and the revoke confirmation, bound to one gateway."""

    def __init__(self, gateway: Gateway, sessions: OperatorSessions) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if not isinstance(session, OperatorSession):
            return session
        notice = None
        if request.query_params.get("done") == "revoked":
            name = request.query_params.get("name", "")
            rows = await self.gateway.db.read(list_tenants)
            if any(row.name == name and row.revoked_at for row in rows):
                notice = (
                    f"Revoked {name}: its token stops working on every gateway process "
                    "within a second; its usage and keys stay."
                )
        return await self._page(session, notice=notice)

    async def confirm(self, request: Request) -> Response:
        """The confirmation page of a revocation (``?name=``)."""
        session = await self.sessions.session(request)
        if not isinstance(session, OperatorSession):
            return session
        name = request.query_params.get("name", "")
        row = await self._active(name)
        if row is None:
            return await self._page(
                session, error=f"There is no active tenant named {name!r}.", status_code=404
            )
        return self._confirmation(session, row)

    async def post(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if not isinstance(session, OperatorSession):
            return session
        form = await read_form(request)
        session.check_csrf(form)
        action = form.get("action")
        name = form.get("name", "")
        if action == "create":
            return await self._create(session, name)
        if action == "revoke":
            row = await self._active(name)
            if row is None:
                return await self._page(
                    session, error=f"There is no active tenant named {name!r}.", status_code=404
                )
            if form.get("confirm") != "yes":
                # Only the confirmation page's form says yes: anything else asks first.
                return self._confirmation(session, row)
            tenant = await self.gateway.db.run(revoke_tenant, row.name)
            if tenant is not None:
                self.gateway.auth.forget_tenant(tenant.id)  # here at once; elsewhere by sync
            query = urlencode({"done": "revoked", "name": row.name})
            return RedirectResponse(f"{_PATH}?{query}", status_code=303, headers=SECURITY_HEADERS)
        return await self._page(session, error="Unknown action.", status_code=400)

    async def _active(self, name: str) -> TenantRow | None:
        rows = await self.gateway.db.read(list_tenants)
        return next((row for row in rows if row.name == name and not row.revoked_at), None)

    async def _create(self, session: OperatorSession, name: str) -> Response:
        try:
            tenant, token = await self.gateway.db.run(create_tenant, name)
        except (ValueError, TenantExistsError) as exc:
            status = 409 if isinstance(exc, TenantExistsError) else 400
            return await self._page(session, error=str(exc), status_code=status, name=name)
        self.gateway.auth.forget_unknown()
        created = (
            '<section id="new-tenant">'
            f'<p class="notice">Created tenant <strong>{e(tenant.name)}</strong> '
            f"(<code>{e(tenant.id)}</code>). Its token is below: <strong>copy it now</strong>. "
            "It is shown only this once; the gateway keeps only its digest, so it cannot be "
            "shown again (revoke the tenant and create another if it is lost).</p>"
            f'<p><code id="new-tenant-token">{e(token)}</code></p></section>'
        )
        return await self._page(session, created=created)

    def _confirmation(self, session: OperatorSession, row: TenantRow) -> Response:
        body = (
            f'<section id="revoke-tenant"><p>Revoke tenant <strong>{e(row.name)}</strong> '
            f"(<code>{e(row.id)}</code>, token <code>{e(row.token_prefix)}…</code>)? Its token "
            "stops working on every gateway process within a second, for the API and the "
            "dashboard. Its usage and stored keys stay. This cannot be undone: a revoked "
            "tenant's name cannot be reused.</p>"
            f'<form id="confirm-revoke" class="inline" method="post" action="{_PATH}">'
            f"{session.csrf_field}"
            '<input type="hidden" name="action" value="revoke">'
            f'<input type="hidden" name="name" value="{e(row.name)}">'
            '<input type="hidden" name="confirm" value="yes">'
            f'<button class="danger" type="submit" id="confirm-revoke-button">Revoke '
            f"{e(row.name)}</button></form> "
            f'<a id="cancel-revoke" href="{_PATH}">Cancel</a></section>'
        )
        return render_operator("Revoke a tenant", body, session)

    async def _page(
        self,
        session: OperatorSession,
        *,
        notice: str | None = None,
        error: str | None = None,
        created: str = "",
        name: str = "",
        status_code: int = 200,
    ) -> Response:
        rows = await self.gateway.db.read(list_tenants)
        parts: list[str] = []
        if notice:
            parts.append(f'<p class="notice" id="notice">{e(notice)}</p>')
        if error:
            parts.append(f'<p class="error" id="error">{e(error)}</p>')
        parts.append(created)
        parts.append(
            "<h2>Create a tenant</h2>"
            f'<form id="create-tenant" class="inline" method="post" action="{_PATH}">'
            f"{session.csrf_field}"
            '<input type="hidden" name="action" value="create">'
            f'<input type="text" name="name" value="{e(name)}" placeholder="tenant name" '
            'maxlength="64" required> '
            '<button class="primary" type="submit" id="create-tenant-button">Create</button>'
            "</form>"
        )
        parts.append('<h2>Tenants</h2><section id="tenants">')
        if rows:
            body = []
            for row in rows:
                if row.revoked_at:
                    state = f'<span class="flag">revoked</span> {e(row.revoked_at)}'
                    action = ""
                else:
                    state = '<span class="ok">active</span>'
                    action = (
                        f'<a class="revoke" href="{_CONFIRM}?{e(urlencode({"name": row.name}))}"'
                        f">Revoke…</a>"
                    )
                body.append(
                    f'<tr data-tenant="{e(row.name)}"><td>{e(row.name)}</td>'
                    f"<td><code>{e(row.id)}</code></td>"
                    f"<td><code>{e(row.token_prefix)}…</code></td>"
                    f'<td class="muted">{e(row.created_at)}</td><td>{state}</td>'
                    f"<td>{action}</td></tr>"
                )
            parts.append(
                '<div class="scroll"><table><thead><tr><th>Name</th><th>Id</th>'
                "<th>Token</th><th>Created</th>"
                "<th>State</th><th></th></tr></thead><tbody>"
                + "".join(body)
                + "</tbody></table></div>"
            )
        else:
            parts.append('<p class="muted">No tenants yet.</p>')
        parts.append("</section>")
        return render_operator("Tenants", "".join(parts), session, status_code=status_code)
