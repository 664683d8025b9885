"""The providers, usage and router pages: right numbers, own tenant only, all escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import openai

from provara_kit.registry import ModelRefresh
from reference_gateway.store import connect
from tests.gateway.conftest import GatewayServer
from tests.gateway.db import tenant_id
from tests.gateway.usage_rows import attempt_row, insert_attempts


def page(gateway: GatewayServer, path: str, token: str) -> str:
    response = httpx.get(f"{gateway.url}{path}", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    return response.text


def test_usage_page_rolls_up_own_usage_exactly(gateway: GatewayServer, new_tenant: Any) -> None:
    mine, other = new_tenant(), new_tenant()
    me, them = tenant_id(gateway.database, mine), tenant_id(gateway.database, other)
    now = datetime.now(UTC)
    with connect(gateway.database) as conn:
        insert_attempts(
            conn,
            [
                attempt_row(me, "r1", now, model="big", cost_picodollars=1_234_567),
                attempt_row(me, "r2", now, model="big", cost_picodollars=10),
                attempt_row(
                    me,
                    "r3",
                    now,
                    model="big",
                    cost_picodollars=5,
                    estimated=1,
                    output_tokens_source="estimated",
                    output_tokens_method="chars/4",
                ),
                attempt_row(
                    me,
                    "r6",
                    now,
                    model="counted",
                    cost_picodollars=0,
                    estimated=1,
                    input_tokens_source="estimated",
                    output_tokens_source="estimated",
                    input_tokens_method="count-endpoint",
                    output_tokens_method="count-endpoint",
                ),
                attempt_row(me, "r4", now, model="<b>odd</b>", priced=0),
                attempt_row(them, "r5", now, model="theirs-only", cost_picodollars=999 * 10**9),
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
    assert 'id="unpriced-attempts">2<' in html
    assert "&lt;b&gt;odd&lt;/b&gt;" in html and "<b>odd</b>" not in html
    assert "theirs-only" not in html and "999" not in html
    # By provider, model and key: the three "big" requests are one line, on the operator's key.
    assert re.search(r"<code>big</code></td><td>operator key</td><td class=num>3</td>", html)
    assert re.search(r"<code>echo</code></td>.*?\$0<", html)
    assert re.search(r"<code>acme-large</code></td><td>your key", html)
    # The unpriced lines carry no dollar figure, only the flag.
    unpriced = re.search(r"<code>&lt;b&gt;odd&lt;/b&gt;</code>.*?</tr>", html)
    assert unpriced and "cost unknown" in unpriced[0] and "$" not in unpriced[0]
    # The request log says what counted the estimated tokens.
    log = html.split('id="request-log"')[1]
    assert "estimated tokens (input: upstream, output: chars/4)</span>" in log
    assert "estimated tokens (count-endpoint)</span>" in log
    # A request served by the model it asked for names it once.
    assert "<td><code>local/echo</code></td>" in log and "local/echo</code> →" not in log
    acme = re.search(r"<code>acme/acme-large</code>.*?</tr>", log)
    assert acme and ">unpriced</span>" in acme[0] and "counted by chars/4" in acme[0]


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
