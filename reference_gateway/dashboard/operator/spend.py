"""``/dashboard/operator/spend``: every tenant's requests, tokens and cost over a range.

The range form is the usage page's (``?from=&to=`` or ``?last=N``, UTC days). One chart
shows the gateway's spend per day (per hour for one day), another each tenant's share; the
table has one line per tenant, revoked ones included (their usage stays). Cost is the
exact sum of the priced attempts; attempts at unpriced models are counted apart with their
tokens, never as $0, and cost resting on estimated token counts is subtotalled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from reference_gateway.dashboard.charts import Point, bar_chart
from reference_gateway.dashboard.figures import count, counted, unpriced_flag, usd, usd_tick
from reference_gateway.dashboard.operator.frame import render_operator
from reference_gateway.dashboard.operator.session import OperatorSession, OperatorSessions
from reference_gateway.dashboard.page import e
from reference_gateway.dashboard.ranges import DateRange, InvalidRange, parse_range
from reference_gateway.dashboard.usage import range_form
from reference_gateway.store.operator_reports import TenantSpend, tenant_spend
from reference_gateway.store.usage_reports import Bucket, usage_series

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["SpendPage"]

_PATH = "/dashboard/operator/spend"
_UNPRICED = "unpriced usage: cost unknown, not in the bar"


def _charts(buckets: list[Bucket], rows: list[TenantSpend]) -> str:
    per = "hour" if len(buckets) == 24 and buckets[0].label.endswith(" 00:00") else "day"
    by_time = [
        Point(
            b.label,
            b.label[11:] if per == "hour" else b.label[5:],
            b.cost_picodollars,
            flag=unpriced_flag(b.unpriced),
        )
        for b in buckets
    ]
    by_tenant = [
        Point(row.name, row.name[:10], row.cost_picodollars, flag=unpriced_flag(row.unpriced))
        for row in rows
        if row.attempts
    ]
    return (
        '<section id="spend-charts" class="charts">'
        + bar_chart(
            "spend-chart-time",
            f"Spend per {per}, every tenant (USD, priced usage)",
            by_time,
            fmt=lambda v: usd(round(v)),
            axis=usd_tick,
            flag_legend=_UNPRICED,
        )
        + bar_chart(
            "spend-chart-tenants",
            "Spend by tenant (USD, priced usage)",
            by_tenant,
            fmt=lambda v: usd(round(v)),
            axis=usd_tick,
            flag_legend=_UNPRICED,
            category="Tenant",
        )
        + "</section>"
    )


def _table(rows: list[TenantSpend]) -> str:
    body = []
    for row in rows:
        name = e(row.name)
        if row.revoked:
            name += ' <span class="flag">revoked</span>'
        estimated = (
            f'{usd(row.estimated_picodollars)} <span class="muted">'
            f"({counted(row.estimated, 'attempt')})</span>"
            if row.estimated
            else '<span class="muted">—</span>'
        )
        unpriced = (
            f'<span class="flag">{counted(row.unpriced, "attempt")}</span> '
            f'<span class="muted">{counted(row.unpriced_tokens, "token")}, cost unknown</span>'
            if row.unpriced
            else '<span class="muted">—</span>'
        )
        body.append(
            f'<tr data-tenant="{e(row.name)}"><td>{name}</td>'
            f'<td class="num requests">{count(row.requests)}</td>'
            f'<td class="num attempts">{count(row.attempts)}</td>'
            f'<td class="num tokens-in">{count(row.input_tokens)}</td>'
            f'<td class="num tokens-out">{count(row.output_tokens)}</td>'
            f'<td class="num cost">{usd(row.cost_picodollars)}</td>'
            f'<td class="num estimated">{estimated}</td>'
            f'<td class="unpriced">{unpriced}</td></tr>'
        )
    return (
        '<div class="scroll"><table id="spend-table"><thead><tr><th>Tenant</th>'
        "<th class=num>Requests</th>"
        "<th class=num>Attempts</th><th class=num>Input tokens</th>"
        "<th class=num>Output tokens</th><th class=num>Cost (priced)</th>"
        "<th class=num>of which estimated</th><th>Unpriced</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


class SpendPage:
    def __init__(self, gateway: Gateway, sessions: OperatorSessions) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if not isinstance(session, OperatorSession):
            return session
        params = dict(request.query_params)
        try:
            chosen = parse_range(params)
        except InvalidRange as exc:
            body = f'<p class="error" id="error">{e(exc)}</p>' + range_form(
                _PATH, None, typed=params
            )
            return render_operator("Spend", body, session, status_code=400)
        return await self._page(session, chosen)

    async def _page(self, session: OperatorSession, chosen: DateRange) -> Response:
        await self.gateway.usage.flush()
        db = self.gateway.db
        rows = await db.read(tenant_spend, chosen.first, chosen.last)
        buckets = await db.read(usage_series, None, chosen.first, chosen.last)
        total = sum(row.cost_picodollars for row in rows)
        unpriced = sum(row.unpriced for row in rows)
        estimated = sum(row.estimated_picodollars for row in rows)
        parts = [
            range_form(_PATH, chosen, typed={}),
            f'<section id="spend"><p>Every tenant, {e(chosen)} (UTC days): '
            f'<strong id="spend-total">{usd(total)}</strong> over '
            f'<span id="spend-requests">{count(sum(row.requests for row in rows))}</span> '
            "requests",
        ]
        if estimated:
            parts.append(
                f'; <span id="spend-estimated">{usd(estimated)}</span> of it rests on '
                '<span class="flag">estimated tokens</span>'
            )
        parts.append(".")
        if unpriced:
            parts.append(
                f' <span class="flag">cost unknown</span> <span id="spend-unpriced">'
                f"{count(unpriced)}</span> attempts at unpriced models are not in that total, "
                "and not $0."
            )
        parts.append("</p>")
        parts.append(_charts(buckets, rows))
        parts.append(_table(rows) if rows else '<p class="muted">No tenants yet.</p>')
        parts.append("</section>")
        return render_operator("Spend", "".join(parts), session)
