"""``/dashboard/usage``: the signed-in tenant's spend, tokens and requests over a date range.

The page has charts by day (by hour for a one-day range), totals, a breakdown by provider,
model and key, and the request log; ``/dashboard/usage.csv`` exports the range's attempts
(:mod:`reference_gateway.dashboard.usage_csv`). Cost is the exact sum of the stored
pico-dollars. Attempts at unpriced models have no cost: they are counted apart and
flagged, never added as $0; cost resting on estimated token counts is flagged and
subtotalled. Every query is scoped to the session's tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from reference_gateway.dashboard.charts import Point, bar_chart
from reference_gateway.dashboard.figures import (
    count,
    counted,
    key_label,
    unpriced_flag,
    usd,
    usd_tick,
)
from reference_gateway.dashboard.page import e, render
from reference_gateway.dashboard.ranges import PRESETS, DateRange, InvalidRange, parse_range
from reference_gateway.dashboard.request_log import PAGE_SIZE, log_table
from reference_gateway.dashboard.session import Session, SessionAuth
from reference_gateway.store.usage_reports import (
    Bucket,
    KeyedUsage,
    LoggedRequest,
    Totals,
    request_log,
    usage_breakdown,
    usage_series,
    usage_totals,
)

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["UsagePage", "range_form", "usd"]

_PATH = "/dashboard/usage"
_UNPRICED = "unpriced usage: cost unknown, not in the bar"


def range_form(path: str, chosen: DateRange | None, *, typed: dict[str, str]) -> str:
    """The GET form choosing a range, with the quick ranges beside it."""
    start = chosen.first.isoformat() if chosen else typed.get("from", "")
    end = chosen.last.isoformat() if chosen else typed.get("to", "")
    presets = " ".join(
        f'<a id="range-last-{days}" href="{e(path)}?last={days}">{e(label)}</a>'
        for days, label in PRESETS
    )
    return (
        f'<form id="range-form" class="range" method="get" action="{e(path)}">'
        f'<label>From <input type="date" id="range-from" name="from" value="{e(start)}">'
        "</label> "
        f'<label>To <input type="date" id="range-to" name="to" value="{e(end)}"></label> '
        '<button id="range-apply" class="primary" type="submit">Show</button></form>'
        f'<p class="presets" id="range-presets">{presets}</p>'
    )


def _short(label: str) -> str:
    return label[11:] if len(label) > 10 else label[5:]  # "13:00" or "01-31"


def _charts(buckets: list[Bucket], *, hourly: bool) -> str:
    spend = [
        Point(
            b.label,
            _short(b.label),
            b.cost_picodollars,
            flag=unpriced_flag(b.unpriced),
        )
        for b in buckets
    ]
    tokens = [Point(b.label, _short(b.label), b.input_tokens + b.output_tokens) for b in buckets]
    requests = [Point(b.label, _short(b.label), b.requests) for b in buckets]
    per = "hour" if hourly else "day"
    return (
        '<section id="usage-charts" class="charts">'
        + bar_chart(
            "usage-chart-spend",
            f"Spend per {per} (USD, priced usage)",
            spend,
            fmt=lambda v: usd(round(v)),
            axis=usd_tick,
            flag_legend=_UNPRICED,
        )
        + bar_chart("usage-chart-tokens", f"Tokens per {per} (input + output)", tokens, fmt=count)
        + bar_chart("usage-chart-requests", f"Requests per {per}", requests, fmt=count)
        + "</section>"
    )


def _totals(totals: Totals) -> str:
    parts = [
        '<section id="usage-totals"><h2>Totals</h2><dl class="totals">',
        f'<div><dt>Requests</dt><dd id="total-requests">{count(totals.requests)}</dd></div>',
        f'<div><dt>Attempts</dt><dd id="total-attempts">{count(totals.attempts)}'
        f' <span class="muted">({count(totals.failed)} failed)</span></dd></div>',
        f'<div><dt>Tokens in / out</dt><dd id="total-tokens">{count(totals.input_tokens)}'
        f" / {count(totals.output_tokens)}</dd></div>",
        f'<div><dt>Cost (priced)</dt><dd><strong id="priced-total">'
        f"{usd(totals.cost_picodollars)}</strong></dd></div>",
        "</dl>",
    ]
    if totals.estimated_picodollars or totals.estimated:
        parts.append(
            f'<p>Of that cost, <span id="estimated-total">{usd(totals.estimated_picodollars)}'
            f"</span> over {counted(totals.estimated, 'attempt')} uses "
            '<span class="flag">estimated tokens</span> (the upstream reported no usage: '
            "counted by the adapter's count endpoint or tokenizer where it has one, else "
            "characters / 4).</p>"
        )
    if totals.unpriced:
        parts.append(
            f'<p><span class="flag">cost unknown</span> <span id="unpriced-attempts">'
            f"{count(totals.unpriced)}</span> attempts at models with no pricing row: not "
            "included in the cost above, and not $0.</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _breakdown(lines: list[KeyedUsage]) -> str:
    head = (
        "<tr><th>Provider</th><th>Model</th><th>Key</th><th class=num>Requests</th>"
        "<th class=num>Attempts</th><th class=num>Failed</th><th class=num>Input tokens</th>"
        "<th class=num>Output tokens</th><th class=num>Cost</th><th>Flags</th></tr>"
    )
    rows = []
    for line in lines:
        flags = []
        if line.unpriced:
            flags.append(f'<span class="flag">unpriced: {line.unpriced}</span>')
        if line.estimated:
            flags.append(f'<span class="flag">estimated tokens: {line.estimated}</span>')
        priced = line.attempts - line.unpriced
        cost = usd(line.cost_picodollars) if priced else '<span class="flag">cost unknown</span>'
        rows.append(
            f"<tr><td>{e(line.provider)}</td><td><code>{e(line.model)}</code></td>"
            f"<td>{e(key_label(line.key_source, line.key_hint))}</td>"
            f"<td class=num>{count(line.requests)}</td><td class=num>{count(line.attempts)}</td>"
            f"<td class=num>{count(line.failed)}</td>"
            f"<td class=num>{count(line.input_tokens)}</td>"
            f"<td class=num>{count(line.output_tokens)}</td>"
            f"<td class=num>{cost}</td><td>{' '.join(flags)}</td></tr>"
        )
    return (
        '<section id="usage-breakdown"><h2>By provider, model and key</h2>'
        '<div class="scroll"><table><thead>'
        f"{head}</thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _log(chosen: DateRange, total: int, page: int, requests: list[LoggedRequest]) -> str:
    pages = max(1, -(-total // PAGE_SIZE))
    links = []
    if page > 1:
        links.append(
            f'<a id="log-newer" href="{_PATH}?{e(chosen.query(page=page - 1))}#request-log">'
            "← Newer</a>"
        )
    if page < pages:
        links.append(
            f'<a id="log-older" href="{_PATH}?{e(chosen.query(page=page + 1))}#request-log">'
            "Older →</a>"
        )
    first = (page - 1) * PAGE_SIZE + 1
    shown = (
        f"requests {first} to {first + len(requests) - 1} of {total}, newest first"
        if requests
        else f"no requests on this page ({total} in the range)"
    )
    return (
        '<section id="request-log"><h2>Request log</h2>'
        f'<p class="muted">{shown}.</p>'
        + (log_table(requests) if requests else "")
        + f'<p class="pager">{" ".join(links)}</p></section>'
    )


def _page_number(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise InvalidRange("'page' must be a page number from 1.")
    return int(text)


class UsagePage:
    def __init__(self, gateway: Gateway, sessions: SessionAuth) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page()
        params = dict(request.query_params)
        try:
            chosen = parse_range(params)
            page = _page_number(params.get("page", "1") or "1")
        except InvalidRange as exc:
            body = f'<p class="error" id="range-error">{e(exc)}</p>' + range_form(
                _PATH, None, typed=params
            )
            return self._render(session, body, status_code=400)
        await self.gateway.usage.flush()
        tenant_id = session.tenant.id

        def report(
            conn: sa.Connection,
        ) -> tuple[list[Bucket], Totals, list[KeyedUsage], tuple[int, list[LoggedRequest]]]:
            return (
                usage_series(conn, tenant_id, chosen.first, chosen.last),
                usage_totals(conn, tenant_id, chosen.first, chosen.last),
                usage_breakdown(conn, tenant_id, chosen.first, chosen.last),
                request_log(
                    conn,
                    tenant_id,
                    chosen.first,
                    chosen.last,
                    limit=PAGE_SIZE,
                    offset=(page - 1) * PAGE_SIZE,
                ),
            )

        buckets, totals, lines, (logged, requests) = await self.gateway.db.read(report)
        export = f"/dashboard/usage.csv?{chosen.query()}"
        parts = [
            range_form(_PATH, chosen, typed=params),
            f"<p>Your requests through this gateway, {e(chosen)} (UTC). "
            f'<a id="export-csv" href="{e(export)}" download>Download CSV</a> '
            '<span class="muted">(one row per attempt)</span></p>',
        ]
        if not totals.attempts:
            parts.append('<p class="muted" id="usage-empty">No usage in this range.</p>')
        parts.append(_totals(totals))
        parts.append(_charts(buckets, hourly=chosen.days == 1))
        parts.append(_breakdown(lines) if lines else "")
        parts.append(_log(chosen, logged, page, requests))
        return self._render(session, "".join(parts))

    @staticmethod
    def _render(session: Session, body: str, *, status_code: int = 200) -> Response:
        return render(
            "Usage", body, status_code=status_code, tenant=session.tenant.name, csrf=session.csrf
        )
