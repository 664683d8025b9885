"""The usage page in a real browser: the signed-in tenant's usage over a date range chosen
with the form and the quick ranges, its CSV export, and the page at phone width."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.browser.browser import Browser
from tests.browser.conftest import ROOT
from tests.browser.pages import PHONE, assert_fits, goto, type_date
from tests.browser.site import ZENITH_PRICE, ZENITH_TOKENS, Site

DOCS_SCREENSHOT = ROOT / "docs" / "images" / "usage-page.png"
ZENITH_COST = (ZENITH_TOKENS[0] * ZENITH_PRICE[0] + ZENITH_TOKENS[1] * ZENITH_PRICE[1]) / 1_000_000
"""USD of one zenith/zenith-pro answer."""


def models_listed(browser: Browser) -> set[str]:
    """The served models in the request log (``provider/model``)."""
    return {
        cell.text.rsplit("→", 1)[-1].strip()
        for cell in browser.all("#request-log tbody tr td:nth-child(2)")
    }


def downloaded(browser: Browser, folder: Path) -> Path:
    """The CSV file a download put in ``folder``, waited for (Chromium writes a
    ``.crdownload`` file first and renames it when the download is complete)."""

    def complete(_: object) -> Path | Literal[False]:
        return next((path for path in folder.glob("*.csv") if path.stat().st_size), False)

    return browser.wait().until(complete)


def query(browser: Browser) -> dict[str, list[str]]:
    return parse_qs(urlsplit(browser.driver.current_url).query)


def test_usage_page_shows_the_tenants_usage(signed_in: Browser, site: Site) -> None:
    goto(signed_in, "Usage")
    assert signed_in.path == "/dashboard/usage"
    assert (
        signed_in.find("#range-from").get_attribute("value")
        == (site.today - dt.timedelta(days=29)).isoformat()
    )
    assert signed_in.find("#range-to").get_attribute("value") == site.today.isoformat()
    # Four attempts served by zenith/zenith-pro (one as local/echo's fallback) are the
    # priced cost; local/echo is free, acme/acme-large unpriced.
    assert signed_in.find("#priced-total").text == f"${4 * ZENITH_COST}"
    # acme/acme-large twice; boom/boom-1, whose adapter broke, with its input estimated.
    assert signed_in.find("#unpriced-attempts").text == "3"
    assert models_listed(signed_in) == {
        "local/echo",
        "acme/acme-large",
        "zenith/zenith-pro",
        "none",  # boom/boom-1 served nothing
    }
    assert "echo-anthropic" not in signed_in.text()  # the other tenant's only model
    for chart in signed_in.all("svg.chart"):
        assert chart.size["width"] > 0
    signed_in.shot("usage")
    if os.environ.get("PROVARA_UPDATE_DOCS_SCREENSHOTS") == "1":
        signed_in.shot("usage-page", target=DOCS_SCREENSHOT)


def test_date_filters_narrow_the_range(signed_in: Browser, site: Site) -> None:
    signed_in.open("/dashboard/usage")
    type_date(signed_in, signed_in.find("#range-from"), site.backdated)
    type_date(signed_in, signed_in.find("#range-to"), site.backdated)
    signed_in.click(signed_in.find("#range-apply"))
    assert query(signed_in) == {
        "from": [site.backdated.isoformat()],
        "to": [site.backdated.isoformat()],
    }
    assert models_listed(signed_in) == {"acme/acme-large"}
    assert signed_in.find("#total-requests").text == "2"
    signed_in.shot("usage-one-day")

    signed_in.click(signed_in.find("#range-last-7"))
    assert query(signed_in) == {"last": ["7"]}
    # acme: 10 days back; "none": the failed boom/boom-1 request.
    assert models_listed(signed_in) == {"local/echo", "zenith/zenith-pro", "none"}
    signed_in.click(signed_in.find("#range-last-30"))
    assert models_listed(signed_in) == {
        "local/echo",
        "acme/acme-large",
        "zenith/zenith-pro",
        "none",
    }

    before = site.backdated - dt.timedelta(days=5)
    type_date(signed_in, signed_in.find("#range-from"), before - dt.timedelta(days=3))
    type_date(signed_in, signed_in.find("#range-to"), before)
    signed_in.click(signed_in.find("#range-apply"))
    assert signed_in.find("#usage-empty").text == "No usage in this range."
    assert models_listed(signed_in) == set()


def test_the_request_log_shows_retries_and_fallbacks(signed_in: Browser, site: Site) -> None:
    signed_in.open("/dashboard/usage?last=1")
    retried = signed_in.find(f"#request-log tr[id='request-{site.retried}']")
    assert signed_in.find("td.path", within=retried).text == "local/echo 503 → local/echo 200"
    assert "local/echo" in retried.text

    fell_back = signed_in.find(f"#request-log tr[id='request-{site.fell_back}']")
    assert "local/echo → zenith/zenith-pro" in fell_back.text
    steps = [step.text for step in signed_in.all("td.path .step", within=fell_back)]
    failed = [step.text for step in signed_in.all("td.path .step.failed", within=fell_back)]
    assert steps[-1] == "zenith/zenith-pro 200"
    assert steps == ["local/echo 503", "local/echo 503", "zenith/zenith-pro 200"]
    assert failed == steps[:-1]
    # At desktop width a long path wraps between its steps instead of running past the
    # log's box (each step stays on one line).
    box = signed_in.find("#request-log .scroll")
    hidden = signed_in.driver.execute_script(
        "return arguments[0].scrollWidth - arguments[0].clientWidth", box
    )
    assert hidden <= 1
    assert signed_in.find("#total-attempts").text.split()[0] != signed_in.text("#total-requests")
    signed_in.shot("usage-today")


def test_a_reversed_range_says_what_to_fix(signed_in: Browser, site: Site) -> None:
    signed_in.open("/dashboard/usage")
    type_date(signed_in, signed_in.find("#range-from"), site.today)
    type_date(signed_in, signed_in.find("#range-to"), site.backdated)
    signed_in.allow_console(r"usage\?from=.* status of 400")
    signed_in.click(signed_in.find("#range-apply"))
    assert signed_in.find("#range-error").is_displayed()
    assert signed_in.find("#range-form")  # the form is still there to correct it
    signed_in.shot("usage-range-error")


def test_csv_export_downloads_the_ranges_attempts(
    signed_in: Browser, site: Site, downloads: Path
) -> None:
    signed_in.open(f"/dashboard/usage?from={site.backdated}&to={site.today}")
    link = signed_in.find("#export-csv")
    href = str(link.get_attribute("href"))
    assert urlsplit(href).path == "/dashboard/usage.csv"
    assert parse_qs(urlsplit(href).query) == {
        "from": [site.backdated.isoformat()],
        "to": [site.today.isoformat()],
    }
    for old in downloads.iterdir():
        old.unlink()
    link.click()
    saved = downloaded(signed_in, downloads)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    models = {row["model"] for row in rows}
    assert models >= {"echo", "acme-large", "zenith-pro"} and "echo-anthropic" not in models
    assert len(rows) == int(signed_in.find("#total-attempts").text.split()[0])

    # The same export fetched with the browser's session cookie answers as a CSV file.
    cookie = signed_in.driver.get_cookie("provara_token")
    assert cookie is not None
    response = httpx.get(href, cookies={cookie["name"]: cookie["value"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.replace("\r\n", "\n") == saved.read_text(encoding="utf-8").replace(
        "\r\n", "\n"
    )
    refused = httpx.get(href)  # no cookie, no export
    assert refused.status_code == 401 and "text/csv" not in refused.headers["content-type"]


def test_the_usage_page_fits_a_phone(signed_in: Browser, site: Site) -> None:
    signed_in.driver.set_window_size(*PHONE)
    signed_in.open(f"/dashboard/usage?from={site.backdated}&to={site.today}")
    assert_fits(signed_in)
    width = signed_in.driver.execute_script("return document.documentElement.clientWidth")
    links = signed_in.nav()
    assert set(links) >= {"API keys", "Providers", "Usage", "Router"}
    for name, link in links.items():
        box = signed_in.driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right];", link
        )
        assert link.is_displayed() and box[0] >= 0 and box[1] <= width, (name, box)
    signed_in.shot("usage-phone")
    goto(signed_in, "Router")  # the navigation works at this width
    goto(signed_in, "Usage")
