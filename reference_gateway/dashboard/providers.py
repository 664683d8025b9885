"""``/dashboard/providers``: what is registered, whether it streams, each model's pricing,
the last discovery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from provara_kit.errors import ConfigurationError
from provara_kit.pricing import lookup_price, missing_pricing_hint
from provara_kit.registry import ProviderSpec
from reference_gateway.dashboard.page import e, render
from reference_gateway.dashboard.session import SessionAuth

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["ProvidersPage"]


def _price_cell(provider: str, model: str, table: Mapping[str, object]) -> str:
    try:
        price = lookup_price(provider, model, table)
    except ConfigurationError as exc:
        return f'<span class="flag">bad pricing row</span> <span class="muted">{e(exc)}</span>'
    if price is None:
        return (
            '<span class="flag">unpriced</span> '
            f'<span class="muted">add <code>{e(missing_pricing_hint(provider, model))}</code>'
            "</span>"
        )
    return (
        f'<span class="ok">priced</span> ${e(price.input_per_million)} in / '
        f"${e(price.output_per_million)} out per 1M"
    )


def _streaming_cell(spec: ProviderSpec, environ: Mapping[str, str]) -> str:
    try:
        streams = spec.streams(environ)
    except ConfigurationError as exc:
        return f'<span class="flag">bad setting</span> <span class="muted">{e(exc)}</span>'
    if streams:
        return '<span class="ok">on</span>'
    why = (
        f"{spec.streaming_env}={environ[spec.streaming_env]}"
        if environ.get(spec.streaming_env, "").strip()
        else "registered with streaming=False"
    )
    return (
        f'<span class="flag">off</span> <span class="muted">{e(why)}: streams are served '
        "from one completion</span>"
    )


class ProvidersPage:
    def __init__(self, gateway: Gateway, sessions: SessionAuth) -> None:
        self.gateway = gateway
        self.sessions = sessions

    async def get(self, request: Request) -> Response:
        session = await self.sessions.session(request)
        if session is None:
            return self.sessions.login_page()
        gateway = self.gateway
        registry = gateway.registry
        environ = gateway.settings.environ
        parts = [
            "<p>Every provider this gateway can route to, whether it streams, its models and "
            "whether each is priced. An unpriced model's requests are reported with unknown "
            "cost, never $0, and <code>auto</code> never routes to it. A provider with "
            "streaming off answers streamed requests from one plain completion, sent as a "
            "stream when it is complete (<code>&lt;NAME&gt;_STREAMING=0</code>).</p>",
            "<table><thead><tr><th>Provider</th><th>Operator key</th><th>Streaming</th>"
            "<th>Last refresh</th><th>Model</th><th>Pricing</th></tr></thead><tbody>",
        ]
        unpriced = 0
        for provider, models in gateway.providers.provider_models().items():
            if provider in registry:
                spec = registry.get(provider)
                if spec.api_key(environ):
                    key = "set"
                else:
                    key = "not set" if spec.api_key_required else "not needed"
                streaming = _streaming_cell(spec, environ)
                refresh = registry.last_refresh.get(provider)
                if refresh is None:
                    last = '<span class="muted">not refreshed</span>'
                elif refresh.status == "error":
                    last = f'<span class="flag">error</span> {e(refresh.error or "")}'
                else:
                    last = (
                        f"{e(refresh.status)}: {len(refresh.models)} models "
                        f'<span class="muted">({refresh.seconds:.2f} s)</span>'
                    )
            else:
                key, last = "not needed", '<span class="muted">built in</span>'
                streaming = '<span class="ok">on</span>'
            rows = models or ("",)
            for index, model in enumerate(rows):
                head = (
                    f'<td rowspan="{len(rows)}"><strong>{e(provider)}</strong></td>'
                    f'<td rowspan="{len(rows)}">{e(key)}</td>'
                    f'<td rowspan="{len(rows)}">{streaming}</td>'
                    f'<td rowspan="{len(rows)}">{last}</td>'
                    if index == 0
                    else ""
                )
                if model:
                    pricing = _price_cell(provider, model, gateway.router.pricing)
                    unpriced += "unpriced" in pricing
                    parts.append(
                        f"<tr>{head}<td><code>{e(model)}</code></td><td>{pricing}</td></tr>"
                    )
                else:
                    parts.append(f'<tr>{head}<td class="muted">no models known</td><td></td></tr>')
        parts.append("</tbody></table>")
        parts.append(
            f'<p class="muted">{unpriced} unpriced model(s). Add rows to '
            "<code>MODEL_PRICING</code> (USD per 1M tokens, input and output).</p>"
        )
        return render("Providers", "".join(parts), tenant=session.tenant.name, csrf=session.csrf)
