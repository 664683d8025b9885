"""``/dashboard/router``: where ``auto`` sends the signed-in tenant, cell by cell.

A tenant sees its own samples and mean scores per ``(cell, model)`` and the model ``auto``
would pick for it in each cell; never another tenant's samples, nor the gateway-wide
totals its prior is drawn from (see :mod:`reference_gateway.router`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from provara_kit.pricing import to_picodollars
from reference_gateway.dashboard.page import e, render
from reference_gateway.dashboard.session import SessionAuth
from reference_gateway.dashboard.usage import usd
from reference_gateway.router import COMPLEXITIES, KINDS, Router

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["RouterPage"]


def _explanation(router: Router) -> str:
    weight = router.prior_weight
    if weight:
        prior = (
            "Your cells learn from your own feedback, starting from a prior: the other "
            "tenants' samples of each model in the cell, counted as at most "
            f"<strong>{weight:g}</strong> samples (PROVARA_ROUTER_PRIOR_WEIGHT) whatever "
            "their number. So a new tenant starts from the gateway-wide figures, and your "
            f"own samples outweigh the prior once you have more than {weight:g} of them."
        )
    else:
        prior = (
            "Your cells learn only from your own feedback (PROVARA_ROUTER_PRIOR_WEIGHT is "
            "0): other tenants' samples do not move your choices."
        )
    return (
        f'<p><code>model: "auto"</code> routes by cell (kind x complexity; kinds '
        f"{e(', '.join(KINDS))}; complexities {e(', '.join(COMPLEXITIES))}; header "
        f"<code>x-provara-cell</code> overrides). {prior}</p>"
        f"<p>A model becomes a candidate in a cell after <strong>{router.min_samples}"
        "</strong> samples (PROVARA_MIN_SAMPLES; yours plus the prior's) and only if "
        "priced; until then the cell uses the pinned default "
        f"<code>{e(router.default_model)}</code>. Each request draws a quality "
        "q ~ Beta(1 + sum of scores, 1 + n - sum) per candidate and takes the largest "
        f"q - {router.cost_weight:g} x expected USD cost. The choice below uses the "
        "posterior means and a typical request of the cell: the choice most of your "
        "requests get. The figures are yours alone; other tenants' are never shown.</p>"
    )


def _failures(router: Router, tenant_id: str) -> str:
    """The tenant's recent failed attempts per model, as ``auto`` holds them against it."""
    failures = {m: f for m, f in router.failures(tenant_id).items() if f >= 0.05}
    if not failures:
        return ""
    rows = "".join(
        f"<tr><td><code>{e(model)}</code></td><td class=num>{count:.2f}</td></tr>"
        for model, count in sorted(failures.items(), key=lambda item: -item[1])
    )
    return (
        '<h2 id="failures">Recent failures</h2>'
        "<p>Failed attempts of yours per model (429s, 5xx, no connection, no first token "
        f"in time, a refused key), halving every {router.failure_half_life / 60:g} minutes "
        "and on each success. <code>auto</code> counts each as a zero score, so a failing "
        "model is drawn less often until it recovers.</p>"
        "<table><thead><tr><th>Model</th><th class=num>Recent failures</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


class RouterPage:
    def __init__(self, gateway: Gateway, sessions: SessionAuth) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page()
        router = self.gateway.router
        tenant_id = session.tenant.id
        parts = [_explanation(router), _failures(router, tenant_id)]
        shown = 0
        for cell in router.cells():
            own = router.samples(tenant_id, cell)
            decision = router.decide(cell, tenant_id=tenant_id, sample=False)
            if not own and decision.model == router.default_model:
                continue
            shown += 1
            parts.append(
                f'<h2 id="cell-{e(cell)}">{e(cell)}</h2>'
                f'<p>Routes to <strong class="choice">{e(decision.model)}</strong> '
                f'<span class="muted">{e(decision.reason)}</span></p>'
            )
            if not own:
                parts.append(
                    '<p class="muted">No samples of yours in this cell yet: the choice comes '
                    "from the prior.</p>"
                )
                continue
            standing = {c.model: c for c in decision.candidates}
            parts.append(
                "<table><thead><tr><th>Model</th><th class=num>Your samples</th>"
                "<th class=num>Your mean score</th><th class=num>Expected cost</th>"
                "<th>Note</th></tr></thead><tbody>"
            )
            for model in sorted(own):
                samples = own[model]
                cost = standing[model].expected_cost if model in standing else None
                if cost is None:
                    price = '<span class="flag">unpriced</span>'
                    note = "unpriced: excluded from auto"
                else:
                    price = usd(to_picodollars(cost))
                    note = ""
                if model == router.default_model:
                    note = "the pinned default, always a candidate"
                if model == decision.model:
                    note = f"auto's choice; {note}" if note else "auto's choice"
                parts.append(
                    f"<tr><td><code>{e(model)}</code></td><td class=num>{samples.n}</td>"
                    f"<td class=num>{samples.mean:.3f}</td><td class=num>{price}</td>"
                    f'<td class="muted">{e(note)}</td></tr>'
                )
            parts.append("</tbody></table>")
        if not shown:
            parts.append(
                '<p class="muted">No samples of yours yet: every cell uses the default.</p>'
            )
        return render("Router", "".join(parts), tenant=session.tenant.name, csrf=session.csrf)
