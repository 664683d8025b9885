"""``/dashboard/router``: each cell's samples per model, posteriors and current choice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from provara_kit.pricing import to_picodollars
from reference_gateway.dashboard.page import e, render
from reference_gateway.dashboard.session import SessionAuth
from reference_gateway.dashboard.usage import usd
from reference_gateway.router import COMPLEXITIES, KINDS

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["RouterPage"]


class RouterPage:
    def __init__(self, gateway: Gateway, sessions: SessionAuth) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page()
        router = self.gateway.router
        parts = [
            f'<p><code>model: "auto"</code> routes by cell (kind x complexity; kinds '
            f"{e(', '.join(KINDS))}; complexities {e(', '.join(COMPLEXITIES))}; header "
            "<code>x-provara-cell</code> overrides). A model becomes a candidate in a cell "
            f"after <strong>{router.min_samples}</strong> samples (PROVARA_MIN_SAMPLES) and "
            "only if priced; until then the cell uses the pinned default "
            f"<code>{e(router.default_model)}</code>. Each request draws a quality "
            "q ~ Beta(1 + sum of scores, 1 + n - sum) per candidate and takes the largest "
            f"q - {router.cost_weight:g} x expected USD cost. Below, the score uses the "
            "posterior mean and a typical request of the cell: the choice most requests "
            "get. Samples are gateway-wide (all tenants).</p>"
        ]
        cells = sorted(router.posteriors)
        if not cells:
            parts.append('<p class="muted">No samples yet: every cell uses the default.</p>')
        for cell in cells:
            decision = router.decide(cell, sample=False)
            parts.append(
                f'<h2 id="cell-{e(cell)}">{e(cell)}</h2>'
                f'<p>Routes to <strong class="choice">{e(decision.model)}</strong> '
                f'<span class="muted">{e(decision.reason)}</span></p>'
                "<table><thead><tr><th>Model</th><th class=num>Samples</th>"
                "<th class=num>Posterior mean</th><th>MIN_SAMPLES</th><th>Candidate</th>"
                "<th class=num>Expected cost</th><th class=num>Score</th></tr></thead><tbody>"
            )
            for c in decision.candidates:
                reached = (
                    '<span class="ok">reached</span>'
                    if c.n >= router.min_samples
                    else f'<span class="muted">{c.n}/{router.min_samples}</span>'
                )
                status = "yes" if c.eligible else "no"
                cost = (
                    usd(to_picodollars(c.expected_cost))
                    if c.expected_cost is not None
                    else '<span class="flag">unpriced</span>'
                )
                parts.append(
                    f"<tr><td><code>{e(c.model)}</code></td><td class=num>{c.n}</td>"
                    f"<td class=num>{c.mean:.3f}</td><td>{reached}</td>"
                    f'<td>{status} <span class="muted">{e(c.reason)}</span></td>'
                    f"<td class=num>{cost}</td><td class=num>{c.utility:.3f}</td></tr>"
                )
            parts.append("</tbody></table>")
        return render("Router", "".join(parts), tenant=session.tenant.name, csrf=session.csrf)
