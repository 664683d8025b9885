"""``/dashboard/usage``: the logged-in tenant's usage and cost by day, provider and model.

Cost is the exact sum of the stored pico-dollars. Unpriced usage has no cost and is shown
apart, flagged; usage with estimated token counts is flagged and its cost subtotalled.
Each row says what counted its tokens: the upstream, the adapter's count endpoint or
tokenizer, or characters / 4.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from provara_kit.pricing import from_picodollars
from reference_gateway.dashboard.page import e, render
from reference_gateway.dashboard.session import SessionAuth
from reference_gateway.store.usage import usage_rollup

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["UsagePage", "usd"]


def usd(picodollars: int) -> str:
    """Exact USD of an integer number of pico-dollars, trailing zeros dropped."""
    amount: Decimal = from_picodollars(picodollars)
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"${text}"


def counted_by(row: dict[str, Any]) -> str:
    """The methods that produced a row's token counts, one word when both agree."""
    found = row.get("input_tokens_method") or "unknown"
    produced = row.get("output_tokens_method") or "unknown"
    if found == produced:
        return found
    return f"input: {found}, output: {produced}"


def _table(rows: list[dict[str, Any]], *, cost: bool) -> str:
    head = (
        "<tr><th>Day</th><th>Provider</th><th>Model</th><th class=num>Requests</th>"
        "<th class=num>Input tokens</th><th class=num>Output tokens</th>"
        f"{'<th class=num>Cost</th>' if cost else ''}<th>Counted by</th><th>Flags</th></tr>"
    )
    body = []
    for row in rows:
        flags = []
        if not row["priced"]:
            flags.append('<span class="flag">unpriced</span>')
        if row["estimated"]:
            flags.append('<span class="flag">estimated tokens</span>')
        price = f"<td class=num>{usd(row['cost_picodollars'])}</td>" if cost else ""
        body.append(
            f"<tr><td>{e(row['day'])}</td><td>{e(row['provider'])}</td>"
            f"<td><code>{e(row['model'])}</code></td><td class=num>{row['requests']}</td>"
            f"<td class=num>{row['input_tokens']}</td><td class=num>{row['output_tokens']}</td>"
            f"{price}<td class=method>{e(counted_by(row))}</td><td>{' '.join(flags)}</td></tr>"
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


class UsagePage:
    def __init__(self, gateway: Gateway, sessions: SessionAuth) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page()
        await self.gateway.usage.flush()
        tenant_id = session.tenant.id
        rows = await self.gateway.db.run(lambda conn: usage_rollup(conn, tenant_id))
        priced = [row for row in rows if row["priced"]]
        unpriced = [row for row in rows if not row["priced"]]
        total = sum(int(row["cost_picodollars"]) for row in priced)
        estimated = [row for row in priced if row["estimated"]]
        estimated_cost = sum(int(row["cost_picodollars"]) for row in estimated)
        parts = ["<p>Your requests through this gateway, by day, provider and model.</p>"]
        parts.append(
            "<h2>Priced</h2>"
            f'<p>Total cost <strong id="priced-total">{usd(total)}</strong> over '
            f"{sum(row['requests'] for row in priced)} requests"
        )
        if estimated:
            parts.append(
                f'; of which <span id="estimated-total">{usd(estimated_cost)}</span> over '
                f"{sum(row['requests'] for row in estimated)} requests uses "
                '<span class="flag">estimated tokens</span> (the upstream reported no usage: '
                "counted by the adapter's count endpoint or tokenizer where it has one, else "
                "characters / 4, as the Counted by column says)"
            )
        parts.append(".</p>")
        parts.append(_table(priced, cost=True) if priced else '<p class="muted">None.</p>')
        parts.append("<h2>Unpriced</h2>")
        if unpriced:
            parts.append(
                f'<p><span class="flag">cost unknown</span> <span id="unpriced-requests">'
                f"{sum(row['requests'] for row in unpriced)}</span> requests to models with no "
                "pricing row: not included in the total above, and not $0.</p>"
            )
            parts.append(_table(unpriced, cost=False))
        else:
            parts.append('<p class="muted">None.</p>')
        return render("Usage", "".join(parts), tenant=session.tenant.name, csrf=session.csrf)
