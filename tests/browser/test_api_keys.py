"""The API keys page in a real browser: add and rotate a key through its forms."""

from __future__ import annotations

import itertools

import httpx
from selenium.webdriver.support.select import Select

from tests.browser.browser import Browser
from tests.browser.site import Site

_tenants = itertools.count()


def stored_keys(site: Site, token: str) -> dict[str, str]:
    """The tenant's stored keys as the JSON API lists them: name -> masked value."""
    response = httpx.get(
        f"{site.url}/api/provider-keys", headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return {key["name"]: key["masked"] for key in response.json()["data"]}


def key_row(browser: Browser, name: str) -> str:
    rows = [row.text for row in browser.all("main table tbody tr") if name in row.text]
    assert len(rows) == 1, rows
    return rows[0]


def test_add_and_rotate_a_key(browser: Browser, site: Site) -> None:
    token = site.server.tenant(f"keys-{next(_tenants)}")
    browser.login(token)
    assert "No keys stored yet." in browser.text()
    browser.shot("api-keys-empty")

    add = browser.find("main form:has(input[name=action][value=add])")
    Select(browser.find("select[name=name]", within=add)).select_by_value("BOOM_API_KEY")
    browser.fill(browser.find("input[name=value]", within=add), "sk-boom-first-value-1111")
    browser.click(browser.find("button[type=submit]", within=add))
    assert browser.text("main .notice") == "Added BOOM_API_KEY."
    assert "1111" in key_row(browser, "BOOM_API_KEY")
    assert "sk-boom-first-value" not in browser.driver.page_source
    assert stored_keys(site, token)["BOOM_API_KEY"].endswith("1111")
    browser.shot("api-keys")

    rotate = browser.find("main table form:has(input[name=action][value=rotate])")
    browser.fill(browser.find("input[name=value]", within=rotate), "sk-boom-second-value-2222")
    browser.click(browser.find("button[type=submit]", within=rotate))
    assert browser.text("main .notice") == "Rotated BOOM_API_KEY."
    assert "2222" in key_row(browser, "BOOM_API_KEY")
    assert "sk-boom-second-value" not in browser.driver.page_source
    assert stored_keys(site, token)["BOOM_API_KEY"].endswith("2222")
    browser.shot("api-keys-rotated")


def test_delete_asks_for_confirmation_first(browser: Browser, site: Site) -> None:
    token = site.server.tenant(f"keys-{next(_tenants)}")
    added = httpx.post(
        f"{site.url}/api/provider-keys",
        headers={"authorization": f"Bearer {token}"},
        json={"name": "BOOM_API_KEY", "value": "sk-boom-doomed-value-3333"},
    )
    assert added.status_code == 201
    browser.login(token)

    browser.click(browser.find("#delete-BOOM_API_KEY"))
    confirm = browser.text("#confirm-delete-section")
    assert "Delete BOOM_API_KEY?" in confirm and "3333" in confirm
    assert "BOOM_API_KEY" in stored_keys(site, token)  # asking deleted nothing
    browser.shot("api-keys-delete-confirm")
    browser.click(browser.find("#cancel-delete"))
    assert browser.path == "/dashboard/api-keys"
    assert "3333" in key_row(browser, "BOOM_API_KEY")
    assert "BOOM_API_KEY" in stored_keys(site, token)

    browser.click(browser.find("#delete-BOOM_API_KEY"))
    browser.click(browser.find("#confirm-delete"))
    assert browser.text("main .notice") == "Deleted BOOM_API_KEY."
    assert "No keys stored yet." in browser.text()
    assert stored_keys(site, token) == {}
    browser.shot("api-keys-deleted")
