"""The operator pages: operator sign-in, tenants created and revoked (with confirmation),
provider health and spend from usage rows on both stores; tenant tokens and cross-site
posts refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_gateway.auth import hash_token
from reference_gateway.dashboard.session import csrf_token
from reference_gateway.operators import create_operator
from reference_gateway.store import connect
from reference_gateway.store.tables import usage
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.db import query, scalar, tenant_id

_names = count()
OPERATOR = "/dashboard/operator"
PAGES = ("/tenants", "/spend", "/health", "/tenants/revoke?name=x")


def new_operator(database: str) -> str:
    with connect(database) as conn:
        _, token = create_operator(conn, f"operator-{next(_names)}")
    return token


def signed_in(server: GatewayServer, token: str) -> httpx.Client:
    """A browser-like client signed in through the operator form (cookie session)."""
    client = httpx.Client(base_url=server.url, timeout=10, headers={"origin": server.url})
    answer = client.post(f"{OPERATOR}/login", data={"token": token})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{OPERATOR}/tenants"
    cookie = answer.headers["set-cookie"]
    assert "provara_operator=" in cookie and "Path=/dashboard/operator" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    return client


class Operator:
    """A browser signed in as an operator: its client and its session's CSRF token."""

    def __init__(self, http: httpx.Client, csrf: str) -> None:
        self.http = http
        self.csrf = csrf

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(
        self, path: str, *, headers: dict[str, str] | None = None, **fields: str
    ) -> httpx.Response:
        """A form post carrying the session's CSRF token."""
        return self.http.post(path, data={"csrf": self.csrf, **fields}, headers=headers)


@pytest.fixture
def operator(gateway: GatewayServer) -> Iterator[Operator]:
    token = new_operator(gateway.database)
    client = signed_in(gateway, token)
    try:
        yield Operator(client, csrf_token(token))
    finally:
        client.close()


def api_status(server: GatewayServer, token: str) -> int:
    return httpx.get(
        f"{server.url}/v1/models", headers={"authorization": f"Bearer {token}"}
    ).status_code


def test_sign_in_then_every_page_renders(gateway: GatewayServer, operator: Operator) -> None:
    anonymous = httpx.get(f"{gateway.url}{OPERATOR}/tenants")
    assert anonymous.status_code == 200 and 'id="operator-login"' in anonymous.text
    assert operator.get(OPERATOR).headers["location"] == f"{OPERATOR}/tenants"
    for path in ("/tenants", "/spend", "/health"):
        page = operator.get(f"{OPERATOR}{path}")
        assert page.status_code == 200, path
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert 'id="operator-nav"' in page.text and "<script" not in page.text
    tenants = operator.get(f"{OPERATOR}/tenants").text
    assert 'id="tenants"' in tenants and 'id="create-tenant"' in tenants
    assert 'id="provider-health"' in operator.get(f"{OPERATOR}/health").text
    # Signed in already: the sign-in page sends the operator on.
    assert operator.get(f"{OPERATOR}/login").status_code == 303
    # Log out: the cookie goes, the pages ask to sign in again.
    out = operator.post(f"{OPERATOR}/logout")
    assert out.status_code == 303 and 'provara_operator=""' in out.headers["set-cookie"]
    assert 'id="operator-login"' in operator.get(f"{OPERATOR}/tenants").text


def test_a_wrong_token_does_not_sign_in(gateway: GatewayServer) -> None:
    origin = {"origin": gateway.url}
    wrong = httpx.post(
        f"{gateway.url}{OPERATOR}/login", data={"token": "pvo_" + "a" * 43}, headers=origin
    )
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    stale = httpx.get(
        f"{gateway.url}{OPERATOR}/tenants", cookies={"provara_operator": "pvo_" + "b" * 43}
    )
    assert stale.status_code == 401 and "sign in again" in stale.text


def test_a_created_tenant_token_is_shown_once_and_works(
    gateway: GatewayServer, operator: Operator
) -> None:
    name = f"made-by-operator-{next(_names)}"
    page = operator.post(f"{OPERATOR}/tenants", action="create", name=name)
    assert page.status_code == 200
    assert "copy it now" in page.text and "shown only this once" in page.text
    found = re.search(r'<code id="new-tenant-token">(pvk_[A-Za-z0-9_-]{43})</code>', page.text)
    assert found is not None
    token = found.group(1)
    assert scalar(gateway.database, "SELECT token_sha256 FROM tenants WHERE name = :n", n=name) == (
        hash_token(token)
    )
    assert api_status(gateway, token) == 200
    listing = operator.get(f"{OPERATOR}/tenants").text
    assert f'data-tenant="{name}"' in listing and token not in listing
    assert token[:8] in listing  # its prefix, as the CLI lists it

    again = operator.post(f"{OPERATOR}/tenants", action="create", name=name)
    assert again.status_code == 409 and "exists already" in again.text
    bad = operator.post(f"{OPERATOR}/tenants", action="create", name="<b>bad</b>")
    assert bad.status_code == 400 and "<b>bad" not in bad.text and "&lt;b&gt;bad" in bad.text


def test_revoking_a_tenant_takes_a_confirmation(gateway: GatewayServer, operator: Operator) -> None:
    name = f"leaving-{next(_names)}"
    token = gateway.tenant(name)
    assert api_status(gateway, token) == 200
    listing = operator.get(f"{OPERATOR}/tenants").text
    assert f"/dashboard/operator/tenants/revoke?name={name}" in listing

    confirm = operator.get(f"{OPERATOR}/tenants/revoke", params={"name": name})
    assert confirm.status_code == 200 and 'id="confirm-revoke"' in confirm.text
    assert api_status(gateway, token) == 200  # asking is not doing
    # A revoke post without the confirmation's "yes" only asks.
    asked = operator.post(f"{OPERATOR}/tenants", action="revoke", name=name)
    assert asked.status_code == 200 and 'id="confirm-revoke"' in asked.text
    assert api_status(gateway, token) == 200
    assert (
        scalar(gateway.database, "SELECT revoked_at FROM tenants WHERE name = :n", n=name) is None
    )

    done = operator.post(f"{OPERATOR}/tenants", action="revoke", name=name, confirm="yes")
    assert done.status_code == 303
    assert api_status(gateway, token) == 401
    after = operator.get(done.headers["location"]).text
    assert f"Revoked {name}" in after
    assert operator.get(f"{OPERATOR}/tenants/revoke", params={"name": name}).status_code == 404
    again = operator.post(f"{OPERATOR}/tenants", action="revoke", name=name, confirm="yes")
    assert again.status_code == 404 and "no active tenant" in again.text


def test_tenant_tokens_are_refused(gateway: GatewayServer, token: str) -> None:
    bearer = {"authorization": f"Bearer {token}"}
    for path in PAGES:
        answer = httpx.get(f"{gateway.url}{OPERATOR}{path}", headers=bearer)
        assert answer.status_code == 403, path
        assert "operators" in answer.text and 'id="tenants"' not in answer.text
    # A tenant signed in to the dashboard (its own cookie) is refused too.
    with httpx.Client(base_url=gateway.url, headers={"origin": gateway.url}) as tenant:
        assert tenant.post("/dashboard/login", data={"token": token}).status_code == 303
        assert tenant.get("/dashboard/api-keys").status_code == 200
        for path in PAGES:
            assert tenant.get(f"{OPERATOR}{path}").status_code == 403, path
        refused = tenant.post(f"{OPERATOR}/login", data={"token": token})
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        made = tenant.post(f"{OPERATOR}/tenants", data={"action": "create", "name": "sneaky"})
        assert made.status_code == 403
    assert query(gateway.database, "SELECT id FROM tenants WHERE name = 'sneaky'") == []


def test_an_operator_token_is_no_tenant_token(gateway: GatewayServer) -> None:
    operator = new_operator(gateway.database)
    assert api_status(gateway, operator) == 401
    page = httpx.get(
        f"{gateway.url}/dashboard/usage", headers={"authorization": f"Bearer {operator}"}
    )
    assert "Sign in with your gateway token" in page.text
    with httpx.Client(base_url=gateway.url, headers={"origin": gateway.url}) as browser:
        tenant_form = browser.post("/dashboard/login", data={"token": operator})
        assert tenant_form.status_code == 401 and "set-cookie" not in tenant_form.headers
        assert "operators sign in at /dashboard/operator/login" in tenant_form.text


def test_cross_site_posts_are_refused(gateway: GatewayServer, operator: Operator) -> None:
    name = f"forged-{next(_names)}"
    evil = {"origin": "https://evil.example"}
    forged = operator.post(f"{OPERATOR}/tenants", action="create", name=name, headers=evil)
    assert forged.status_code == 403 and "evil.example" in forged.text
    site = {"sec-fetch-site": "cross-site"}
    forged = operator.post(f"{OPERATOR}/tenants", action="create", name=name, headers=site)
    assert forged.status_code == 403
    # Same site but no CSRF token of the session: refused as well.
    stale = operator.post(f"{OPERATOR}/tenants", action="create", name=name, csrf="0" * 32)
    assert stale.status_code == 403 and "CSRF" in stale.text
    assert query(gateway.database, "SELECT id FROM tenants WHERE name = :n", n=name) == []
    # A forged sign-in (login CSRF) is refused before the token is read.
    login = httpx.post(
        f"{gateway.url}{OPERATOR}/login",
        data={"token": new_operator(gateway.database)},
        headers=evil,
    )
    assert login.status_code == 403 and "set-cookie" not in login.headers


# --- Health and spend from usage rows, on both stores ------------------------------------


def _row(tenant: str, when: datetime, provider: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": f"req-{next(_names)}",
        "tenant_id": tenant,
        "created_at": when.isoformat(timespec="milliseconds"),
        "day": when.date().isoformat(),
        "provider": provider,
        "model": "m",
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
        "cell": None,
        "input_tokens_method": "upstream",
        "output_tokens_method": "upstream",
        "status": 200,
        "error": None,
        "attempt": 0,
        "requested_model": f"{provider}/m",
        "key_hint": None,
    }
    row.update(values)
    return row


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[GatewayServer]:
    with GatewayServer(make_settings(tmp_path, database_url=store_url)) as started:
        yield started


def _cells(html: str, table: str, provider: str) -> dict[str, str]:
    """The cells of one provider's row of a health table, by class, tags stripped."""
    section = re.search(rf'<table id="{table}">(.*?)</table>', html, re.S)
    assert section is not None, f"no table {table}"
    row = re.search(rf'<tr data-provider="{provider}">(.*?)</tr>', section.group(1), re.S)
    assert row is not None, f"no row for {provider} in {table}"
    cells = re.findall(r'<td class="num ([a-z0-9-]+)">(.*?)</td>', row.group(1), re.S)
    return {name: re.sub(r"<[^>]+>", "", value) for name, value in cells}


def test_provider_health_from_usage_rows(server: GatewayServer) -> None:
    owner = tenant_id(server.database, server.tenant("busy"))
    now = datetime.now(UTC)
    recent = now - timedelta(minutes=5)
    rows = [
        _row(owner, recent, "alpha", latency_ms=ms, ttft_ms=ms / 4, stream=1)
        for ms in (40.0, 10.0, 30.0, 20.0)
    ]
    rows += [
        _row(owner, recent, "alpha", status=429, error="rate_limited", latency_ms=3.0),
        _row(owner, recent, "alpha", error="stream_aborted", latency_ms=900.0, stream=1),
        _row(owner, recent, "alpha", status=504, error="first_token_timeout", latency_ms=9e3),
        _row(owner, recent, "alpha", error="client_disconnected", latency_ms=5.0),
        _row(owner, now - timedelta(hours=2), "alpha", latency_ms=12_000.0),
        _row(owner, now - timedelta(hours=3), "beta", status=502, error="upstream_error"),
        _row(owner, now - timedelta(hours=30), "alpha", error="upstream_error"),
    ]
    with connect(server.database) as conn:
        conn.execute(usage.insert(), rows)
    token = new_operator(server.database)
    page = httpx.get(f"{server.url}{OPERATOR}/health", headers={"authorization": f"Bearer {token}"})
    assert page.status_code == 200
    hour = _cells(page.text, "health-1h", "alpha")
    assert hour == {
        "attempts": "8",
        "failed": "3",  # client_disconnected is not the provider's failure
        "error-rate": "37.5%",
        "rate-limited": "1",
        "aborted": "1",
        "timeouts": "1",
        "latency-p50": "20 ms",  # over the four that succeeded
        "latency-p95": "40 ms",
        "ttft-p50": "5.0 ms",
        "ttft-p95": "10 ms",
    }
    assert 'data-provider="beta"' not in page.text.split('id="health-24h"')[0]
    day = _cells(page.text, "health-24h", "alpha")
    assert (day["attempts"], day["failed"], day["latency-p50"], day["latency-p95"]) == (
        "9",
        "3",
        "30 ms",
        "12.0 s",
    )
    assert day["ttft-p50"] == "5.0 ms"  # the 2-hour-old row was not a stream
    beta = _cells(page.text, "health-24h", "beta")
    assert (beta["attempts"], beta["failed"], beta["error-rate"]) == ("1", "1", "100.0%")
    assert beta["latency-p50"] == "—"


def _spend_row(html: str, name: str) -> dict[str, str]:
    row = re.search(rf'<tr data-tenant="{name}">(.*?)</tr>', html, re.S)
    assert row is not None, f"no row for {name}"
    cells = re.findall(r'<td class="(?:num )?([a-z-]+)">(.*?)</td>', row.group(1), re.S)
    return {key: re.sub(r"<[^>]+>", "", value) for key, value in cells}


def test_spend_by_tenant_keeps_unpriced_and_estimated_apart(server: GatewayServer) -> None:
    first = tenant_id(server.database, server.tenant("first"))
    second = tenant_id(server.database, server.tenant("second"))
    tenant_id(server.database, server.tenant("idle"))
    day = datetime(2026, 3, 4, 12, tzinfo=UTC)
    retried = _row(first, day, "alpha", status=429, error="rate_limited", cost_picodollars=0)
    rows = [
        retried,
        _row(
            first,
            day,
            "alpha",
            request_id=retried["request_id"],
            attempt=1,
            cost_picodollars=1_500_000,
        ),
        _row(
            first,
            day,
            "alpha",
            cost_picodollars=2_000_000,
            estimated=1,
            input_tokens_source="estimated",
            input_tokens_method="chars/4",
        ),
        _row(first, day, "alpha", priced=0, cost_picodollars=None, input_tokens=7, output_tokens=8),
        _row(second, day, "beta", cost_picodollars=250_000, input_tokens=1, output_tokens=2),
        _row(
            second,
            day,
            "beta",
            status=400,
            error="upstream_rejected",
            priced=0,
            cost_picodollars=None,
            input_tokens=0,
            output_tokens=0,
        ),
        _row(second, day - timedelta(days=40), "beta", cost_picodollars=9_999_999_999),
    ]
    with connect(server.database) as conn:
        conn.execute(usage.insert(), rows)
    token = new_operator(server.database)
    auth = {"authorization": f"Bearer {token}"}
    page = httpx.get(
        f"{server.url}{OPERATOR}/spend",
        params={"from": "2026-03-01", "to": "2026-03-31"},
        headers=auth,
    )
    assert page.status_code == 200
    html = page.text
    assert _spend_row(html, "first") == {
        "requests": "3",  # the retried request counts once
        "attempts": "4",
        "tokens-in": "37",
        "tokens-out": "68",
        "cost": "$0.0000035",
        "estimated": "$0.000002 (1 attempt)",
        "unpriced": "1 attempt 15 tokens, cost unknown",
    }
    second_row = _spend_row(html, "second")
    assert (second_row["requests"], second_row["cost"]) == ("2", "$0.00000025")
    # An unpriced attempt refused before any token cost nothing: not of unknown cost.
    assert (second_row["attempts"], second_row["unpriced"]) == ("2", "—")
    assert _spend_row(html, "idle")["requests"] == "0"
    assert '<strong id="spend-total">$0.00000375</strong>' in html
    assert 'id="spend-unpriced">1<' in html
    assert 'id="spend-chart-tenants"' in html and 'id="spend-chart-time"' in html
    by_tenant = html[html.index('id="spend-chart-tenants-figure"') :]
    assert "<th>Tenant</th>" in by_tenant[: by_tenant.index("</figure>")]
    assert "<title>2026-03-04: $0.00000375 (1 unpriced attempt: cost unknown)</title>" in html
    assert "<title>first: $0.0000035 (1 unpriced attempt: cost unknown)</title>" in html
    assert "<title>idle:" not in html  # a tenant with no usage in the range has no bar
    # The order: the costliest first.
    assert html.index('data-tenant="first"') < html.index('data-tenant="second"')
    bad = httpx.get(f"{server.url}{OPERATOR}/spend", params={"from": "March"}, headers=auth)
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
