"""Cross-site posts to the dashboard are refused before they are read.

Every dashboard ``POST`` (sign-in included) must come from the gateway's own pages. A
browser says where a post comes from: ``Sec-Fetch-Site`` (every current browser sends it;
``same-origin`` passes), else ``Origin``, else ``Referer``, whose host and port must be the
ones the request was sent to (its ``Host``; the scheme is not compared, so a gateway behind
a TLS-terminating proxy still matches). ``Origin: null`` (an opaque origin) is refused. A
post with none of the three comes from a tool, not from a browser another site could drive.

That covers sign-in, which no session can protect: a forged sign-in would put the victim in
the attacker's tenant (login CSRF). Forms behind a session carry their session's CSRF token
as well (:meth:`~reference_gateway.dashboard.session.Session.check_csrf`). A refused post
gets a 403 page that says why, and nothing it asked for is done.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reference_gateway.api.errors import GatewayError
from reference_gateway.dashboard.page import e, render

__all__ = ["CrossSitePost", "cross_site", "guard_posts", "refused", "same_origin_only"]

logger = logging.getLogger("reference_gateway")

Endpoint = Callable[[Request], Awaitable[Response]]

_DEFAULT_PORTS = {"http": "80", "https": "443"}


class CrossSitePost(GatewayError):
    """A dashboard post refused as forged; ``reason`` says why, for the 403 page (a route
    not behind :func:`same_origin_only` answers it as a JSON 403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(403, f"The form was refused: {reason}.", code="cross_site_post")
        self.reason = reason


def _host_port(netloc: str, scheme: str) -> str:
    """``host:port`` in lower case, the scheme's default port made explicit."""
    netloc = netloc.rpartition("@")[2].lower()
    host, colon, port = netloc.rpartition(":")
    if not colon or "]" in port:  # no port (an IPv6 literal's colons are inside [...])
        host, port = netloc, _DEFAULT_PORTS.get(scheme, "")
    return f"{host}:{port}"


def _same_origin(source: str, request: Request) -> bool:
    """Whether the URL or origin ``source`` names the host and port ``request`` went to."""
    parts = urlsplit(source)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return False
    own = request.headers.get("host") or request.url.netloc
    return _host_port(parts.netloc, parts.scheme) == _host_port(own, parts.scheme)


def cross_site(request: Request) -> str | None:
    """Why ``request`` looks forged by another site; ``None`` when it does not."""
    headers = request.headers
    site = headers.get("sec-fetch-site")
    if site is not None:
        if site in ("same-origin", "none"):
            return None
        return f"your browser says it was sent from another site (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is not None:
        if _same_origin(origin, request):
            return None
        return f"it was sent from {origin} (Origin), not from this gateway's pages"
    referer = headers.get("referer")
    if referer is not None and not _same_origin(referer, request):
        parts = urlsplit(referer)
        return f"it was sent from {parts.scheme}://{parts.netloc} (Referer), not from this gateway"
    return None


def refused(reason: str) -> Response:
    """The 403 page of a refused post."""
    body = (
        f'<p class="error">This form was refused: {e(reason)}. Nothing was changed.</p>'
        '<p>Open the dashboard at this gateway\'s own address, <a href="/dashboard/api-keys">'
        "reload the page</a> and send the form again.</p>"
    )
    return render("Refused", body, status_code=403)


def same_origin_only(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` behind the cross-site check; a :class:`CrossSitePost` it raises (a
    missing or wrong CSRF token) gets the same 403 page."""

    async def guarded(request: Request) -> Response:
        reason = cross_site(request)
        if reason is None:
            try:
                return await endpoint(request)
            except CrossSitePost as exc:
                reason = exc.reason
        logger.warning("refused %s %s: %s", request.method, request.url.path, reason)
        return refused(reason)

    return guarded


def guard_posts(routes: list[Route]) -> list[Route]:
    """``routes`` with every ``POST`` endpoint behind :func:`same_origin_only`."""
    return [
        Route(route.path, same_origin_only(route.endpoint), methods=route.methods, name=route.name)
        if route.methods is not None and "POST" in route.methods
        else route
        for route in routes
    ]
