"""``/dashboard/usage.csv?from=YYYY-MM-DD&to=YYYY-MM-DD``: the range's usage as CSV.

One row per attempt (a retried or fallen-back request has several, sharing its
``request_id``), oldest first, after a header line; the range is read as on the usage page
(:mod:`reference_gateway.dashboard.ranges`) and the session is the page's. ``cost_usd`` is
the exact amount, empty for an unpriced attempt (its cost is unknown, not 0). A text cell
that a spreadsheet would run as a formula (one starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return; a model name comes from the client) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from provara_kit.pricing import from_picodollars
from reference_gateway.dashboard.page import SECURITY_HEADERS
from reference_gateway.dashboard.ranges import InvalidRange, parse_range
from reference_gateway.dashboard.session import SessionAuth
from reference_gateway.store.usage_reports import ATTEMPT_COLUMNS, attempt_rows

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["UsageCsv", "safe_cell", "usage_csv"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs."""
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA) else text


def usage_csv(rows: Iterable[tuple[Any, ...]], columns: tuple[str, ...]) -> str:
    """``rows`` (in ``columns`` order) as CSV text with a header and a ``cost_usd`` column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow((*columns, "cost_usd"))
    cost_at = columns.index("cost_picodollars")
    for row in rows:
        cost = row[cost_at]
        usd = "" if cost is None else format(from_picodollars(int(cost)), "f")
        writer.writerow([safe_cell(value) for value in row] + [usd])
    return out.getvalue()


def _filename_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "tenant"


class UsageCsv:
    """The export, bound to one gateway."""

    def __init__(self, gateway: Gateway, sessions: SessionAuth) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page(
                error="Sign in to download your usage.", status_code=401
            )
        try:
            chosen = parse_range(dict(request.query_params))
        except InvalidRange as exc:
            return Response(
                f"{exc}\n", status_code=400, media_type="text/plain", headers=SECURITY_HEADERS
            )
        await self.gateway.usage.flush()
        tenant_id = session.tenant.id

        def export(conn: sa.Connection) -> str:
            rows = attempt_rows(conn, tenant_id, chosen.first, chosen.last)
            return usage_csv(rows, ATTEMPT_COLUMNS)

        text = await self.gateway.db.read(export)
        name = (
            f"provara-usage-{_filename_part(session.tenant.name)}-"
            f"{chosen.first.isoformat()}-to-{chosen.last.isoformat()}.csv"
        )
        headers = {**SECURITY_HEADERS, "content-disposition": f'attachment; filename="{name}"'}
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
