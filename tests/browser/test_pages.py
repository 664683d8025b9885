"""The providers and router pages in a real browser, reached through the navigation, and
every tenant page at a phone's width."""

from __future__ import annotations

import pytest

from reference_gateway.dashboard.page import PAGES
from tests.browser.browser import Browser
from tests.browser.pages import PHONE, assert_fits, goto


def provider_rows(browser: Browser) -> dict[str, str]:
    """Each provider's first table row (its cells), by provider name."""
    rows = {}
    for row in browser.all("main table tbody tr"):
        names = browser.all("td strong", within=row)
        if names:
            rows[names[0].text] = row.text
    return rows


def test_providers_page(signed_in: Browser) -> None:
    goto(signed_in, "Providers")
    assert signed_in.path == "/dashboard/providers"
    rows = provider_rows(signed_in)
    assert set(rows) >= {"acme", "boom", "local"}
    assert "not set" in rows["acme"]  # the operator has no ACME_API_KEY; the tenant does
    assert "set" in rows["boom"]
    assert "acme-large" in rows["acme"] and "unpriced" in rows["acme"]
    assert "zenith-pro" in rows["zenith"] and "priced $3 in / $15 out per 1M" in rows["zenith"]
    models = signed_in.text("main table")
    assert "echo" in models and "priced" in models
    assert "unpriced model(s)" in signed_in.text()
    signed_in.shot("providers")


def test_router_page_shows_the_tenants_own_samples(signed_in: Browser) -> None:
    goto(signed_in, "Router")
    assert signed_in.path == "/dashboard/router"
    assert signed_in.all("main h2[id='cell-chat/simple']"), "no cell with the tenant's samples"
    rows = [row.text for row in signed_in.all("main table tbody tr")]
    # Three graded completions, scored 1, 1 and 0.
    assert "local/echo 3 0.667" in [" ".join(row.split()[:3]) for row in rows], rows
    signed_in.shot("router")


@pytest.mark.parametrize("path", [path for path, _ in PAGES])
def test_every_page_fits_a_phone(signed_in: Browser, path: str) -> None:
    signed_in.driver.set_window_size(*PHONE)
    signed_in.open(path)
    assert_fits(signed_in)
    signed_in.shot(path.rsplit("/", 1)[-1] + "-phone")
