"""``/dashboard/api-keys``: add, list (masked), rotate and delete your provider keys.

Server-rendered HTML with plain forms; every change goes through the same
:class:`~reference_gateway.keys.ProviderKeys` service as the JSON API
(``/api/provider-keys``), then redirects back (post/redirect/get). Deleting takes two
steps: the Delete button opens a confirmation naming the key (``?delete=NAME``), and only
its Confirm form, which posts ``confirm=yes``, deletes; a delete post without it shows the
same confirmation and deletes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from reference_gateway.api.errors import GatewayError
from reference_gateway.dashboard.page import SECURITY_HEADERS, e, render
from reference_gateway.dashboard.session import Session, SessionAuth, read_form

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["ApiKeysPage"]

_NOTICES = {"added": "Added", "rotated": "Rotated", "deleted": "Deleted"}
_PATH = "/dashboard/api-keys"


class ApiKeysPage:
    """The page and its form handler, bound to one gateway."""

    def __init__(self, gateway: Gateway, sessions: SessionAuth) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page()
        doomed = request.query_params.get("delete")
        if doomed is not None:
            return await self._confirm_delete(session, doomed)
        notice = None
        done = request.query_params.get("done")
        name = request.query_params.get("name", "")
        if done in _NOTICES and name in self.gateway.keys.key_names():
            notice = f"{_NOTICES[done]} {name}."
        return await self._page(session, notice=notice)

    async def post(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page(
                error="Your session has ended; sign in again.", status_code=401
            )
        form = await read_form(request)
        session.check_csrf(form)
        action = form.get("action")
        name = form.get("name", "")
        keys = self.gateway.keys
        try:
            if action == "add":
                key_name = (await keys.add(session.tenant, name, form.get("value"))).name
                done = "added"
            elif action == "rotate":
                key_name = (await keys.rotate(session.tenant, name, form.get("value"))).name
                done = "rotated"
            elif action == "delete" and form.get("confirm") != "yes":
                return await self._confirm_delete(session, name)
            elif action == "delete":
                key_name = await keys.delete(session.tenant, name)
                done = "deleted"
            else:
                raise GatewayError(400, "Unknown action.", code="invalid_action")
        except GatewayError as exc:
            return await self._page(session, error=exc.message, status_code=exc.status)
        query = urlencode({"done": done, "name": key_name})
        return RedirectResponse(f"{_PATH}?{query}", status_code=303, headers=SECURITY_HEADERS)

    async def _confirm_delete(self, session: Session, name: str) -> Response:
        """The confirmation step of a delete: names the key, Confirm posts, Cancel goes back."""
        stored = {key.name: key for key in await self.gateway.keys.list(session.tenant)}
        key = stored.get(name)
        if key is None:
            return await self._page(
                session, error=f"You have no stored key named {name[:64]}.", status_code=404
            )
        body = (
            '<section id="confirm-delete-section" class="confirm">'
            f"<h2>Delete {e(key.name)}?</h2>"
            f"<p>This deletes your <strong>{e(key.provider)}</strong> key "
            f"<code>{e(key.name)}</code> (<code>{e(key.masked)}</code>) from this gateway. "
            f"Your requests to {e(key.provider)} then use the operator's key, if it has one. "
            "The key itself stays valid at the provider.</p>"
            f'<form id="confirm-delete-form" class="inline" method="post" action="{_PATH}">'
            f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'
            '<input type="hidden" name="action" value="delete">'
            f'<input type="hidden" name="name" value="{e(key.name)}">'
            '<input type="hidden" name="confirm" value="yes">'
            '<button id="confirm-delete" class="danger" type="submit">'
            f"Delete {e(key.name)}</button></form> "
            f'<a id="cancel-delete" href="{_PATH}">Cancel</a></section>'
        )
        return render("API keys", body, tenant=session.tenant.name, csrf=session.csrf)

    async def _page(
        self,
        session: Session,
        *,
        notice: str | None = None,
        error: str | None = None,
        status_code: int = 200,
    ) -> Response:
        keys = await self.gateway.keys.list(session.tenant)
        csrf = f'<input type="hidden" name="csrf" value="{e(session.csrf)}">'
        parts: list[str] = []
        if notice:
            parts.append(f'<p class="notice">{e(notice)}</p>')
        if error:
            parts.append(f'<p class="error">{e(error)}</p>')
        parts.append(
            "<p>Your own provider keys. Requests you send through this gateway use your key "
            "for that provider when you store one, and the operator's otherwise. Keys are "
            "encrypted at rest (AES-256-GCM); only their last four characters are shown.</p>"
        )
        if keys:
            rows = []
            for key in keys:
                rows.append(
                    "<tr>"
                    f"<td><code>{e(key.name)}</code></td><td>{e(key.provider)}</td>"
                    f"<td><code>{e(key.masked)}</code></td>"
                    f'<td class="muted">{e(key.updated_at)}</td>'
                    "<td>"
                    f'<form class="inline" method="post" action="{_PATH}">{csrf}'
                    '<input type="hidden" name="action" value="rotate">'
                    f'<input type="hidden" name="name" value="{e(key.name)}">'
                    '<input type="password" name="value" placeholder="new value" '
                    'autocomplete="off" required>'
                    f'<button id="rotate-{e(key.name)}" type="submit">Rotate</button></form> '
                    f'<form class="inline" method="get" action="{_PATH}">'
                    f'<input type="hidden" name="delete" value="{e(key.name)}">'
                    f'<button id="delete-{e(key.name)}" class="danger" type="submit">'
                    "Delete</button></form>"
                    "</td></tr>"
                )
            parts.append(
                '<div class="scroll"><table id="api-keys"><thead><tr><th>Name</th>'
                "<th>Provider</th><th>Key</th><th>Updated</th><th></th></tr></thead><tbody>"
                + "".join(rows)
                + "</tbody></table></div>"
            )
        else:
            parts.append('<p class="muted">No keys stored yet.</p>')
        stored = {key.name for key in keys}
        names = self.gateway.keys.key_names()
        options = "".join(
            f'<option value="{e(name)}">{e(name)} ({e(provider)})</option>'
            for name, provider in sorted(names.items())
            if name not in stored
        )
        parts.append(
            "<h2>Add a key</h2>"
            f'<form id="add-key-form" class="inline" method="post" action="{_PATH}">{csrf}'
            '<input type="hidden" name="action" value="add">'
            f'<select name="name" required>{options}</select>'
            '<input type="password" name="value" placeholder="key value" size="40" '
            'autocomplete="off" required>'
            '<button id="add-key" class="primary" type="submit">Add</button></form>'
        )
        return render(
            "API keys",
            "".join(parts),
            status_code=status_code,
            tenant=session.tenant.name,
            csrf=session.csrf,
        )
