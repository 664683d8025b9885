"""The usage page (charts, range, breakdown, request log), its CSV export and the delete
confirmation of the API keys page: own tenant only, everything escaped, bad input a 400."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from reference_gateway.dashboard.charts import Point, bar_chart, nice_ticks
from reference_gateway.dashboard.ranges import DateRange, InvalidRange, parse_range
from reference_gateway.dashboard.usage_csv import safe_cell
from reference_gateway.store import connect
from tests.gateway.attempt_helpers import post, start_gateway
from tests.gateway.conftest import GatewayServer
from tests.gateway.db import tenant_id
from tests.gateway.usage_rows import attempt_row, insert_attempts

TODAY = date(2026, 3, 31)


def get(gateway: GatewayServer, path: str, token: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{gateway.url}{path}", params=params, headers={"authorization": f"Bearer {token}"}
    )


def when(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def seed(gateway: GatewayServer, new_tenant: Callable[[], str]) -> tuple[str, str]:
    """My usage in March 2026 (a fallback, an unpriced request, one outside the range) and
    another tenant's; returns ``(my token, their token)``."""
    mine, theirs = new_tenant(), new_tenant()
    me, them = tenant_id(gateway.database, mine), tenant_id(gateway.database, theirs)
    with connect(gateway.database) as conn:
        insert_attempts(
            conn,
            [
                attempt_row(
                    me,
                    "req-fallback",
                    when("2026-03-10", 9),
                    provider="openai",
                    model="gpt-x",
                    status=429,
                    error="rate_limited",
                    input_tokens=0,
                    output_tokens=0,
                    cost_picodollars=0,
                    requested_model="auto",
                ),
                attempt_row(
                    me,
                    "req-fallback",
                    when("2026-03-10", 10),
                    provider="anthropic",
                    model="claude-y",
                    attempt=1,
                    key_source="tenant",
                    key_hint="abcd",
                    cost_picodollars=2_500_000,
                    ttft_ms=120.0,
                    latency_ms=900.0,
                    requested_model="auto",
                ),
                attempt_row(
                    me,
                    "req-unpriced",
                    when("2026-03-12"),
                    provider="acme",
                    model='=HYPERLINK("http://evil")',
                    priced=0,
                    estimated=1,
                    requested_model="@SUM(A1)",
                    finish_reason='say "hi", then stop',
                ),
                attempt_row(me, "req-old", when("2026-02-01"), model="old-model"),
                attempt_row(them, "req-theirs", when("2026-03-11"), model="theirs-only"),
            ],
        )
    return mine, theirs


def test_usage_page_charts_breakdown_and_log_for_a_range(
    gateway: GatewayServer, new_tenant: Callable[[], str]
) -> None:
    mine, _ = seed(gateway, new_tenant)
    response = get(gateway, "/dashboard/usage", mine, **{"from": "2026-03-01", "to": "2026-03-14"})
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    html = response.text
    assert "<script" not in html
    # The range form shows the range; rows outside it are left out.
    assert 'name="from" value="2026-03-01"' in html and 'name="to" value="2026-03-14"' in html
    assert "old-model" not in html and "theirs-only" not in html
    # Three charts, one bar slot per day, zero days included; each readable as text too.
    for chart in ("usage-chart-spend", "usage-chart-tokens", "usage-chart-requests"):
        svg = html.split(f'<svg class="chart" id="{chart}"')[1].split("</svg>")[0]
        assert 'role="img"' in svg and f'<title id="{chart}-title">' in svg
        assert svg.count('<g class="bar">') == 14
    requests_chart = html.split('id="usage-chart-requests-figure"')[1].split("</figure>")[0]
    assert "<td>2026-03-01</td><td class=num>0</td>" in requests_chart
    assert "<td>2026-03-10</td><td class=num>1</td>" in requests_chart
    assert "2026-03-01: 0</title>" in requests_chart
    # Spend: the unpriced day is marked, not drawn as $0 spend alone.
    spend = html.split('id="usage-chart-spend-figure"')[1].split("</figure>")[0]
    assert "<td>2026-03-10</td><td class=num>$0.0000025</td>" in spend
    assert re.search(
        r"<td>2026-03-12</td><td class=num>\$0</td><td><span class=\"flag\">1 "
        r"unpriced attempt: cost unknown",
        spend,
    )
    assert "▲ unpriced usage" in spend and "<path" in spend
    # Totals and the breakdown by key.
    assert 'id="priced-total">$0.0000025<' in html and 'id="unpriced-attempts">1<' in html
    assert 'id="total-requests">2<' in html and 'id="total-attempts">3 ' in html
    assert re.search(
        r"<code>claude-y</code></td><td>your key ••••abcd</td><td class=num>1</td>", html
    )
    assert re.search(
        r"<code>gpt-x</code></td><td>operator key</td><td class=num>1</td>"
        r"<td class=num>1</td><td class=num>1</td>",
        html,
    )
    # The request log: one line per request, newest first, with its path.
    log = html.split('id="request-log"')[1]
    assert log.index("req-unpriced") < log.index("req-fallback")
    line = re.search(r'<tr id="request-req-fallback">.*?</tr>', log)
    assert line is not None
    line_html = line[0]
    assert "<code>auto</code> → <code>anthropic/claude-y</code>" in line_html
    assert '<span class="ok">200</span>' in line_html and "120 ms" in line_html
    assert "1,000 ms" not in line_html and "940 ms" in line_html  # 40 + 900 across attempts
    assert re.sub(r"<[^>]+>", "", line_html.split('class="path">')[1]).startswith(
        "openai/gpt-x 429 → anthropic/claude-y 200"
    )
    assert "$0.0000025" in line_html
    unpriced_line = re.search(r'<tr id="request-req-unpriced">.*?</tr>', log)
    assert unpriced_line and "cost unknown" in unpriced_line[0] and "$" not in unpriced_line[0]
    # The export link carries the range.
    assert 'id="export-csv" href="/dashboard/usage.csv?from=2026-03-01&amp;to=2026-03-14"' in html


def test_one_day_is_charted_by_hour_and_the_default_is_the_last_30_days(
    gateway: GatewayServer, new_tenant: Callable[[], str]
) -> None:
    mine, _ = seed(gateway, new_tenant)
    html = get(gateway, "/dashboard/usage", mine, **{"from": "2026-03-10", "to": "2026-03-10"}).text
    assert "Requests per hour" in html
    svg = html.split('id="usage-chart-requests"')[1].split("</svg>")[0]
    assert svg.count('<g class="bar">') == 24 and "2026-03-10 09:00: 1</title>" in svg
    default = get(gateway, "/dashboard/usage", mine).text
    today = datetime.now(UTC).date()
    start = (today - timedelta(days=29)).isoformat()
    assert f'name="from" value="{start}"' in default
    assert f'name="to" value="{today.isoformat()}"' in default
    assert get(gateway, "/dashboard/usage", mine, last="7").status_code == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01"}, "&#x27;from&#x27; must be a date written YYYY-MM-DD"),
        ({"to": "yesterday"}, "&#x27;to&#x27; must be a date"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "starts (2026-03-10) after it ends"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "at most 366"),
        ({"last": "-3"}, "&#x27;last&#x27; must be a number of days"),
        ({"page": "0"}, "&#x27;page&#x27; must be a page number"),
        ({"from": "<script>x</script>"}, "&lt;script&gt;"),
    ],
)
def test_a_bad_range_is_a_400_page_that_says_why(
    gateway: GatewayServer, token: str, params: dict[str, str], message: str
) -> None:
    response = get(gateway, "/dashboard/usage", token, **params)
    assert response.status_code == 400 and 'id="range-error"' in response.text
    assert message in response.text and "<script>" not in response.text
    assert 'id="range-form"' in response.text
    export = get(gateway, "/dashboard/usage.csv", token, **params)
    if "page" not in params:
        assert export.status_code == 400 and export.headers["content-type"].startswith("text/plain")


def test_request_log_pages_newest_first(gateway: GatewayServer, token: str) -> None:
    me = tenant_id(gateway.database, token)
    base = datetime(2026, 3, 20, 8, tzinfo=UTC)
    with connect(gateway.database) as conn:
        insert_attempts(
            conn,
            [attempt_row(me, f"req-{n:03d}", base + timedelta(minutes=n)) for n in range(55)],
        )
    first = get(gateway, "/dashboard/usage", token, **{"from": "2026-03-20", "to": "2026-03-20"})
    ids = re.findall(r'<tr id="request-(req-\d+)">', first.text)
    assert ids == [f"req-{n:03d}" for n in range(54, 4, -1)]
    assert 'id="log-older"' in first.text and 'id="log-newer"' not in first.text
    older = get(
        gateway,
        "/dashboard/usage",
        token,
        **{"from": "2026-03-20", "to": "2026-03-20", "page": "2"},
    )
    assert re.findall(r'<tr id="request-(req-\d+)">', older.text) == [
        f"req-{n:03d}" for n in range(4, -1, -1)
    ]
    assert 'id="log-newer"' in older.text and 'id="log-older"' not in older.text


def test_csv_export_is_one_row_per_attempt_quoted_and_formula_safe(
    gateway: GatewayServer, new_tenant: Callable[[], str]
) -> None:
    mine, theirs = seed(gateway, new_tenant)
    response = get(
        gateway, "/dashboard/usage.csv", mine, **{"from": "2026-03-01", "to": "2026-03-31"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="provara-usage-')
    assert disposition.endswith('-2026-03-01-to-2026-03-31.csv"')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["request_id"] for row in rows] == ["req-fallback", "req-fallback", "req-unpriced"]
    assert [row["attempt"] for row in rows[:2]] == ["0", "1"]
    assert rows[0]["error"] == "rate_limited" and rows[0]["status"] == "429"
    assert rows[1]["key_hint"] == "abcd" and rows[1]["cost_usd"] == "0.000002500000"
    # Unpriced: no cost at all, not 0.
    assert rows[2]["cost_picodollars"] == "" and rows[2]["cost_usd"] == ""
    # Cells a spreadsheet would run as formulas are text; quotes and commas survive.
    assert rows[2]["model"] == '\'=HYPERLINK("http://evil")'
    assert rows[2]["requested_model"] == "'@SUM(A1)"
    assert rows[2]["finish_reason"] == 'say "hi", then stop'
    assert '"say ""hi"", then stop"' in response.text
    assert "theirs-only" not in response.text and "old-model" not in response.text
    # Same sign-in as the page: no session, no rows.
    anonymous = httpx.get(f"{gateway.url}/dashboard/usage.csv")
    assert anonymous.status_code == 401 and "req-fallback" not in anonymous.text
    # The other tenant's export holds only its own row.
    them = get(
        gateway, "/dashboard/usage.csv", theirs, **{"from": "2026-03-01", "to": "2026-03-31"}
    )
    assert [row["model"] for row in csv.DictReader(io.StringIO(them.text))] == ["theirs-only"]


def test_other_tenants_rows_never_appear(
    gateway: GatewayServer, new_tenant: Callable[[], str]
) -> None:
    mine, theirs = seed(gateway, new_tenant)
    march = {"from": "2026-03-01", "to": "2026-03-31"}
    their_page = get(gateway, "/dashboard/usage", theirs, **march).text
    assert "theirs-only" in their_page
    for hidden in ("req-fallback", "claude-y", "gpt-x", "HYPERLINK", "abcd"):
        assert hidden not in their_page
    assert 'id="total-requests">1<' in their_page
    mine_page = get(gateway, "/dashboard/usage", mine, **march).text
    assert "theirs-only" not in mine_page and "req-theirs" not in mine_page


def test_delete_asks_for_confirmation(gateway: GatewayServer, token: str) -> None:
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway.url, headers=auth) as client:
        added = client.post(
            "/api/provider-keys", json={"name": "ACME_API_KEY", "value": "sk-acme-0123456789wxyz"}
        )
        assert added.is_success
        listing = client.get("/dashboard/api-keys").text
        assert 'id="delete-ACME_API_KEY"' in listing
        # The Delete button is a GET: it only opens the confirmation, naming the key.
        confirm = client.get("/dashboard/api-keys", params={"delete": "ACME_API_KEY"})
        assert confirm.status_code == 200
        assert "Delete ACME_API_KEY?" in confirm.text and "••••wxyz" in confirm.text
        assert 'id="confirm-delete"' in confirm.text and 'id="cancel-delete"' in confirm.text
        assert 'name="confirm" value="yes"' in confirm.text
        # A delete post without the confirmation deletes nothing.
        unconfirmed = client.post(
            "/dashboard/api-keys", data={"action": "delete", "name": "ACME_API_KEY"}
        )
        assert unconfirmed.status_code == 200 and 'id="confirm-delete"' in unconfirmed.text
        assert [k["name"] for k in client.get("/api/provider-keys").json()["data"]] == [
            "ACME_API_KEY"
        ]
        unknown = client.get("/dashboard/api-keys", params={"delete": "<NOPE>"})
        assert unknown.status_code == 404 and "&lt;NOPE&gt;" in unknown.text
        confirmed = client.post(
            "/dashboard/api-keys",
            data={"action": "delete", "name": "ACME_API_KEY", "confirm": "yes"},
            follow_redirects=False,
        )
        assert confirmed.status_code == 303
        assert client.get("/api/provider-keys").json()["data"] == []


def test_a_real_retried_and_fallen_back_request_is_one_log_line(tmp_path: Path) -> None:
    server, _ = start_gateway(tmp_path, retries=1)
    try:
        token = server.tenant("fallen-back")
        answer = post(server, token, fault="status=503; model=echo")
        assert answer.status_code == 200
        request_id = answer.headers["x-request-id"]
        html = get(server, "/dashboard/usage", token).text
        line = re.search(rf'<tr id="request-{re.escape(request_id)}">.*?</tr>', html)
        assert line is not None
        assert "<code>local/echo</code> → <code>local/echo-anthropic</code>" in line[0]
        path = re.sub(r"<[^>]+>", "", line[0].split('class="path">')[1])
        assert path == "local/echo 503 → local/echo 503 → local/echo-anthropic 200"
        assert len(re.findall(r'<tr id="request-', html)) == 1
        assert 'id="total-requests">1<' in html and 'id="total-attempts">3 ' in html
        rows = list(csv.DictReader(io.StringIO(get(server, "/dashboard/usage.csv", token).text)))
        assert [(r["attempt"], r["status"], r["error"]) for r in rows] == [
            ("0", "503", "upstream_error"),
            ("1", "503", "upstream_error"),
            ("2", "200", ""),
        ]
        assert {r["request_id"] for r in rows} == {request_id}
    finally:
        server.stop()


def test_date_ranges_parse_strictly() -> None:
    assert parse_range({}, TODAY) == DateRange(date(2026, 3, 2), TODAY)
    assert parse_range({"last": "7"}, TODAY) == DateRange(date(2026, 3, 25), TODAY)
    assert parse_range({"from": "2026-03-30"}, TODAY) == DateRange(date(2026, 3, 30), TODAY)
    assert parse_range({"to": "2026-01-31"}, TODAY).first == date(2026, 1, 2)
    arabic_indic = "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661"
    for bad in ("2026-W05-1", "20260131", "2026-02-30", arabic_indic):
        with pytest.raises(InvalidRange):
            parse_range({"from": bad}, TODAY)
    with pytest.raises(InvalidRange):
        parse_range({"last": "²"}, TODAY)


def test_chart_ticks_are_round_and_flags_are_drawn() -> None:
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(87) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(1_234_567) == [0, 500_000, 1_000_000, 1_500_000]
    svg = bar_chart(
        "c",
        "Spend <per> day",
        [Point("2026-01-01", "01-01", 0), Point("2026-01-02", "01-02", 5, flag="unpriced")],
        fmt=str,
        flag_legend="unpriced usage",
    )
    assert "Spend &lt;per&gt; day" in svg and "<per>" not in svg
    assert svg.count("<path") == 1 and "2026-01-02: 5 (unpriced)</title>" in svg
    assert '<desc id="c-desc">2026-01-01 to 2026-01-02: total 5; highest 5 (2026-01-02)' in svg


def test_safe_cell_neutralises_formulas() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "ok", None, 3)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "ok",
        "",
        "3",
    ]
