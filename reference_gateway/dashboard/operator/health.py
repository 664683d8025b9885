"""``/dashboard/operator/health``: each provider's last hour and last 24 hours.

Computed from the ``usage`` table, one row per attempt, so every gateway process shows the
same figures: attempts, the share that failed (error codes that are the client's or the
gateway's doing left out), aborted streams, timeouts, rate limits, and latency and time to
first token of the attempts that succeeded (p50 and p95).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from reference_gateway.dashboard.operator.frame import render_operator
from reference_gateway.dashboard.operator.session import OperatorSession, OperatorSessions
from reference_gateway.dashboard.page import e
from reference_gateway.store.operator_reports import (
    NOT_THE_PROVIDER,
    TIMEOUTS,
    ProviderHealth,
    provider_health,
)

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["WINDOWS", "HealthPage"]

WINDOWS: tuple[tuple[str, str, timedelta], ...] = (
    ("1h", "Last hour", timedelta(hours=1)),
    ("24h", "Last 24 hours", timedelta(hours=24)),
)
"""The windows shown: ``(id suffix, heading, length)``."""


def _ms(value: float | None) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    if value < 10:
        return f"{value:.1f} ms"  # a local upstream answers in well under 10 ms
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def _rate(row: ProviderHealth) -> str:
    text = f"{row.error_rate:.1%}"
    return f'<span class="flag">{text}</span>' if row.failed else text


def _table(window: str, rows: list[ProviderHealth]) -> str:
    if not rows:
        return f'<p class="muted" id="health-{window}">No attempts in this window.</p>'
    body = "".join(
        f'<tr data-provider="{e(row.provider)}"><td><strong>{e(row.provider)}</strong></td>'
        f'<td class="num attempts">{row.attempts:,}</td>'
        f'<td class="num failed">{row.failed:,}</td>'
        f'<td class="num error-rate">{_rate(row)}</td>'
        f'<td class="num rate-limited">{row.rate_limited:,}</td>'
        f'<td class="num aborted">{row.aborted:,}</td>'
        f'<td class="num timeouts">{row.timeouts:,}</td>'
        f'<td class="num latency-p50">{_ms(row.latency_p50)}</td>'
        f'<td class="num latency-p95">{_ms(row.latency_p95)}</td>'
        f'<td class="num ttft-p50">{_ms(row.ttft_p50)}</td>'
        f'<td class="num ttft-p95">{_ms(row.ttft_p95)}</td></tr>'
        for row in rows
    )
    return (
        f'<div class="scroll"><table id="health-{window}"><thead><tr><th>Provider</th>'
        "<th class=num>Attempts</th>"
        "<th class=num>Failed</th><th class=num>Error rate</th>"
        "<th class=num>Rate limited</th><th class=num>Stream aborts</th>"
        "<th class=num>Timeouts</th><th class=num>Latency p50</th>"
        "<th class=num>Latency p95</th><th class=num>TTFT p50</th><th class=num>TTFT p95</th>"
        f"</tr></thead><tbody>{body}</tbody></table></div>"
    )


class HealthPage:
    def __init__(self, gateway: Gateway, sessions: OperatorSessions) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if not isinstance(session, OperatorSession):
            return session
        await self.gateway.usage.flush()
        now = datetime.now(UTC)
        parts = [
            '<section id="provider-health">'
            "<p>Every attempt at a provider is a usage row (a retry or a fallback is an "
            "attempt of its own), so these figures are the same on every gateway process. "
            "<em>Failed</em> counts attempts with an error, except "
            f"{', '.join(f'<code>{e(code)}</code>' for code in NOT_THE_PROVIDER)} (the "
            "client's or the gateway's doing); rate limited counts 429 and 529 answers; "
            "timeouts are "
            f"{' and '.join(f'<code>{e(code)}</code>' for code in TIMEOUTS)}. Latency and "
            "time to first token (streams only) are over the attempts that succeeded.</p>"
        ]
        for window, heading, length in WINDOWS:
            since = (now - length).isoformat(timespec="milliseconds")
            rows = await self.gateway.db.read(provider_health, since)
            parts.append(f"<h2>{e(heading)}</h2>{_table(window, rows)}")
        parts.append("</section>")
        return render_operator("Provider health", "".join(parts), session)
