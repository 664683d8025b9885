"""The operator pages in a real browser: sign-in with an operator token, the tenants list,
creating a tenant (its token shown once), revoking one after a confirmation, and the
providers' health."""

from __future__ import annotations

import itertools

import httpx
import pytest

from tests.browser.browser import DESKTOP, Browser
from tests.browser.pages import PHONE, assert_fits, type_date
from tests.browser.site import Site

_names = itertools.count()
_TITLE = "Provara gateway · Operator · "


def operator_login(browser: Browser, token: str) -> None:
    browser.open("/dashboard/operator/login")
    browser.fill(browser.find("#operator-login input[name=token]"), token)
    browser.click(browser.find("#operator-login button[type=submit]"))


def goto(browser: Browser, link: str) -> None:
    """Follow an operator navigation link."""
    links = {a.text: a for a in browser.all("#operator-nav a")}
    browser.click(links[link])
    assert browser.title() == _TITLE + link


def tenant_row(browser: Browser, name: str) -> str:
    rows = browser.all(f"#tenants tr[data-tenant='{name}']")
    assert len(rows) == 1, f"{len(rows)} rows for tenant {name}"
    return str(rows[0].text)


def api_status(site: Site, token: str) -> int:
    """What the API answers a request with ``token``."""
    response = httpx.get(f"{site.url}/v1/models", headers={"authorization": f"Bearer {token}"})
    return response.status_code


def test_operator_sign_in_refuses_a_tenant_token_and_a_wrong_one(
    browser: Browser, site: Site
) -> None:
    browser.allow_console(r"/dashboard/operator/login - .*status of (401|403)")
    operator_login(browser, site.token)
    assert "for the gateway's operators" in browser.text("#operator-only")
    assert not browser.all("#operator-nav")
    browser.shot("operator-only")
    operator_login(browser, "pvo_not-a-real-token")
    assert "That token is not valid here." in browser.text("main .error")
    assert not browser.all("#operator-nav")
    browser.shot("operator-login-refused")

    operator_login(browser, site.operator_token)
    assert browser.path == "/dashboard/operator/tenants"
    assert browser.title() == _TITLE + "Tenants"
    assert "ops" in browser.text("#operator")
    cookie = browser.driver.get_cookie("provara_operator")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    browser.click(browser.find("#operator form[action='/dashboard/operator/logout'] button"))
    assert browser.driver.get_cookie("provara_operator") is None
    browser.open("/dashboard/operator/tenants")
    assert browser.find("#operator-login")
    assert not browser.all("#operator-nav")


def test_tenants_list_and_create_a_tenant(browser: Browser, site: Site) -> None:
    operator_login(browser, site.operator_token)
    assert "active" in tenant_row(browser, "acme-corp")
    assert "active" in tenant_row(browser, "globex")
    assert site.token not in browser.driver.page_source  # only a prefix is ever shown
    browser.shot("operator-tenants")

    name = f"initech-{next(_names)}"
    form = browser.find("#create-tenant")
    browser.fill(browser.find("input[name=name]", within=form), name)
    browser.click(browser.find("#create-tenant-button"))
    token = browser.text("#new-tenant-token")
    assert token.startswith("pvk_")
    assert token not in browser.driver.current_url
    assert "active" in tenant_row(browser, name)
    browser.shot("operator-tenant-created")
    assert api_status(site, token) == 200
    browser.open("/dashboard/operator/tenants")  # shown once: not on the next visit
    assert token not in browser.driver.page_source


def test_revoke_asks_for_confirmation_first(browser: Browser, site: Site) -> None:
    name = f"doomed-{next(_names)}"
    token = site.server.tenant(name)
    operator_login(browser, site.operator_token)

    browser.click(browser.find(f"#tenants tr[data-tenant='{name}'] a.revoke"))
    assert browser.title() == _TITLE + "Revoke a tenant"
    assert name in browser.text("#revoke-tenant")
    assert api_status(site, token) == 200  # asking revoked nothing
    browser.shot("operator-revoke-confirm")
    browser.click(browser.find("#cancel-revoke"))
    assert "active" in tenant_row(browser, name)
    assert api_status(site, token) == 200

    browser.click(browser.find(f"#tenants tr[data-tenant='{name}'] a.revoke"))
    browser.click(browser.find("#confirm-revoke-button"))
    assert browser.text("#notice").startswith(f"Revoked {name}")
    assert "revoked" in tenant_row(browser, name)
    assert not browser.all(f"#tenants tr[data-tenant='{name}'] a.revoke")
    assert api_status(site, token) == 401
    browser.shot("operator-tenant-revoked")


def test_provider_health(browser: Browser, site: Site) -> None:
    operator_login(browser, site.operator_token)
    goto(browser, "Provider health")
    assert browser.path == "/dashboard/operator/health"
    for window in ("1h", "24h"):
        local = browser.find(f"#health-{window} tr[data-provider='local']")
        # The seeded requests of both tenants to local/ models, all in the last hour.
        assert int(browser.text(f"#health-{window} tr[data-provider='local'] .attempts")) >= 6
        assert "ms" in local.text
    assert not browser.all("#health-1h tr[data-provider='acme']")  # backdated 10 days
    browser.shot("operator-health")


def spend_cell(browser: Browser, tenant: str, cell: str) -> str:
    return browser.text(f"#spend-table tr[data-tenant='{tenant}'] td.{cell}")


def test_spend_of_every_tenant_over_a_range(browser: Browser, site: Site) -> None:
    operator_login(browser, site.operator_token)
    goto(browser, "Spend")
    assert browser.path == "/dashboard/operator/spend"
    assert browser.find("#spend-total").text.startswith("$")
    assert browser.all("#spend-charts svg")
    month = int(spend_cell(browser, "acme-corp", "requests"))
    assert int(spend_cell(browser, "globex", "requests")) == 1
    # Its two acme-large attempts, 10 days back, are at an unpriced model, and so is the
    # one at the broken boom/boom-1 (its input estimated: the upstream may have read it).
    assert spend_cell(browser, "acme-corp", "unpriced").startswith("3 attempts")
    browser.shot("operator-spend")

    browser.click(browser.find("#range-last-7"))
    assert browser.path == "/dashboard/operator/spend?last=7"
    assert int(spend_cell(browser, "acme-corp", "requests")) == month - 2
    assert spend_cell(browser, "acme-corp", "unpriced") == "1 attempt 6 tokens, cost unknown"

    day = site.backdated.isoformat()
    type_date(browser, browser.find("#range-from"), site.backdated)
    type_date(browser, browser.find("#range-to"), site.backdated)
    browser.click(browser.find("#range-apply"))
    assert browser.path == f"/dashboard/operator/spend?from={day}&to={day}"
    assert int(spend_cell(browser, "acme-corp", "requests")) == 2
    assert browser.text("#spend-unpriced") == "2"


@pytest.mark.parametrize("page", ["tenants", "spend", "health"])
def test_every_operator_page_fits_a_phone(browser: Browser, site: Site, page: str) -> None:
    operator_login(browser, site.operator_token)
    browser.driver.set_window_size(*PHONE)
    try:
        browser.open(f"/dashboard/operator/{page}")
        assert_fits(browser)
        browser.shot(f"operator-{page}-phone")
    finally:
        browser.driver.set_window_size(*DESKTOP)
