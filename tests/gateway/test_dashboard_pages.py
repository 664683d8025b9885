"""The providers, usage and router pages: right numbers, own tenant only, all escaped."""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai

from provara_kit.registry import ModelRefresh
from reference_gateway.store import connect
from reference_gateway.store.usage import USAGE_COLUMNS, insert_usage
from tests.gateway.conftest import GatewayServer
from tests.gateway.db import tenant_id


def usage_row(tenant: str, request_id: str, model: str, **values: Any) -> tuple[Any, ...]:
    row: dict[str, Any] = {
        "request_id": request_id,
        "tenant_id": tenant,
        "created_at": "2026-01-02T03:04:05.000+00:00",
        "day": "2026-01-02",
        "provider": "p",
        "model": model,
        "key_source": "operator",
        "stream": 0,
        "input_tokens": 10,
        "output_tokens": 20,
        "input_tokens_source": "upstream",
        "output_tokens_source": "upstream",
        "estimated": 0,
        "priced": 1,
        "cost_picodollars": 0,
        "finish_reason": "stop",
        "ttft_ms": None,
        "latency_ms": 1.0,
        "cell": "chat/simple",
        "input_tokens_method": "upstream",
        "output_tokens_method": "upstream",
    }
    row.update(values)
    return tuple(row[column] for column in USAGE_COLUMNS)


def page(gateway: GatewayServer, path: str, token: str) -> str:
    response = httpx.get(f"{gateway.url}{path}", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    return response.text


def test_usage_page_rolls_up_own_usage_exactly(gateway: GatewayServer, new_tenant: Any) -> None:
    mine, other = new_tenant(), new_tenant()
    me, them = tenant_id(gateway.database, mine), tenant_id(gateway.database, other)
    with connect(gateway.database) as conn:
        insert_usage(
            conn,
            [
                usage_row(me, "r1", "big", cost_picodollars=1_234_567),
                usage_row(me, "r2", "big", cost_picodollars=10),
                usage_row(
                    me,
                    "r3",
                    "big",
                    cost_picodollars=5,
                    estimated=1,
                    output_tokens_source="estimated",
                    output_tokens_method="chars/4",
                ),
                usage_row(
                    me,
                    "r6",
                    "counted",
                    cost_picodollars=0,
                    estimated=1,
                    input_tokens_source="estimated",
                    output_tokens_source="estimated",
                    input_tokens_method="count-endpoint",
                    output_tokens_method="count-endpoint",
                ),
                usage_row(me, "r4", "<b>odd</b>", priced=0, cost_picodollars=None),
                usage_row(them, "r5", "theirs-only", cost_picodollars=999_000_000_000),
            ],
        )
    stored = httpx.post(
        f"{gateway.url}/api/provider-keys",
        json={"name": "ACME_API_KEY", "value": "sk-mine-acme-0000000000000"},
        headers={"authorization": f"Bearer {mine}"},
    )
    assert stored.is_success
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=mine, max_retries=0) as client:
        # acme is unpriced and reports no usage: an unpriced, estimated row.
        client.chat.completions.create(
            model="acme/acme-large", messages=[{"role": "user", "content": "x"}]
        )
        client.chat.completions.create(
            model="local/echo", messages=[{"role": "user", "content": "hello"}]
        )
    html = page(gateway, "/dashboard/usage", mine)
    assert 'id="priced-total">$0.000001234582<' in html  # 1234567 + 10 + 5 (+ 0) pico-dollars
    assert 'id="estimated-total">$0.000000000005<' in html
    assert 'id="unpriced-requests">2<' in html
    assert "&lt;b&gt;odd&lt;/b&gt;" in html and "<b>odd</b>" not in html
    assert "theirs-only" not in html and "999" not in html
    # Priced groups: (big, upstream) 2 requests, (big, estimated) 1, local/echo 1.
    assert re.search(r"<code>big</code></td><td class=num>2</td>", html)
    assert re.search(r"<code>echo</code></td><td class=num>1</td>.*?\$0<", html)
    # Each row says what counted its tokens.
    assert re.search(
        r"<code>big</code></td><td class=num>1</td>.*?input: upstream, output: chars/4", html
    )
    assert re.search(r"<code>counted</code>.*?<td class=method>count-endpoint</td>", html)
    # The unpriced row is flagged and carries no dollar figure.
    unpriced = html.split("<h2>Unpriced</h2>")[1]
    assert "cost unknown" in unpriced and "$" not in unpriced.split("<table>")[1]
    assert re.search(
        r"<code>acme-large</code>.*?unpriced</span> <span class=\"flag\">estimated tokens", unpriced
    )
    assert re.search(r"<code>acme-large</code>.*?<td class=method>chars/4</td>", unpriced)


def test_providers_page_flags_unpriced_models(gateway: GatewayServer, token: str) -> None:
    registry = gateway.gateway.registry
    registry.last_refresh["acme"] = ModelRefresh("acme", "error", error="<down>", seconds=0.1)
    try:
        html = page(gateway, "/dashboard/providers", token)
    finally:
        registry.last_refresh.pop("acme", None)
    acme = html.split("<strong>acme</strong>")[1].split("<strong>boom</strong>")[0]
    assert "&lt;down&gt;" in acme and '<span class="flag">error</span>' in acme
    assert "<code>acme-large</code>" in acme and "unpriced" in acme
    assert "MODEL_PRICING" in acme or "acme/acme-large" in acme
    local = html.split("<strong>local</strong>")[1].split("<strong>acme</strong>")[0]
    assert local.count('<span class="ok">priced</span>') == 2 and "unpriced" not in local


def test_router_page_explains_each_cell(gateway: GatewayServer, token: str) -> None:
    # A cell no other test routes in: these samples stay in the shared gateway's router.
    router, me = gateway.gateway.router, tenant_id(gateway.database, token)
    for _ in range(5):
        router.add_sample(me, "tools/complex", "local/echo-anthropic", 1.0)
    for _ in range(2):
        router.add_sample(me, "tools/complex", "acme/acme-large", 0.5)
    router.add_sample(me, "tools/complex", "local/echo", 0.0)
    html = page(gateway, "/dashboard/router", token)
    cell = html.split('id="cell-tools/complex"')[1].split("<h2")[0]
    assert '<strong class="choice">local/echo-anthropic</strong>' in cell
    rows = {
        match[0]: match[1:]
        for match in re.findall(
            r"<tr><td><code>([^<]+)</code></td><td class=num>(\d+)</td>"
            r"<td class=num>([\d.]+)</td><td class=num>(.*?)</td><td[^>]*>(.*?)</td>",
            cell,
        )
    }
    assert rows["local/echo-anthropic"] == ("5", "1.000", "$0", "auto&#x27;s choice")
    assert rows["local/echo"] == ("1", "0.000", "$0", "the pinned default, always a candidate")
    assert rows["acme/acme-large"][:2] == ("2", "0.500")
    assert "unpriced" in rows["acme/acme-large"][2]
    assert rows["acme/acme-large"][3] == "unpriced: excluded from auto"
    assert f"after <strong>{router.min_samples}</strong> samples" in html
    assert f"at most <strong>{router.prior_weight:g}</strong> samples" in html


def test_new_pages_need_a_session(gateway: GatewayServer) -> None:
    for path in ("/dashboard/providers", "/dashboard/usage", "/dashboard/router"):
        response = httpx.get(f"{gateway.url}{path}")
        assert response.status_code == 200 and "Sign in" in response.text
        assert "Usage" not in response.text.split("<main>")[1]
