"""Signing in and out of the dashboard in a real browser."""

from __future__ import annotations

from tests.browser.browser import Browser
from tests.browser.site import Site


def test_a_wrong_token_shows_an_error_and_no_dashboard(browser: Browser) -> None:
    browser.open("/dashboard/login")
    assert browser.title() == "Provara gateway · Sign in"
    assert not browser.all("nav a")
    browser.shot("login")
    browser.allow_console(r"status of 401")
    browser.fill(browser.find("input[name=token]"), "pvk_not-a-real-token")
    browser.click(browser.find("main form button[type=submit]"))
    assert "That token is not valid here." in browser.text("main .error")
    assert not browser.all("nav a")
    assert browser.driver.get_cookies() == []
    browser.shot("login-wrong-token")


def test_an_operator_token_is_sent_to_the_operator_sign_in(browser: Browser, site: Site) -> None:
    browser.allow_console(r"status of 401")
    browser.login(site.operator_token)
    assert "/dashboard/operator/login" in browser.text("main .error")
    assert not browser.all("nav a")
    assert browser.driver.get_cookies() == []


def test_the_right_token_lands_on_the_dashboard_and_logout_ends_it(
    browser: Browser, site: Site
) -> None:
    browser.login(site.token)
    assert browser.path == "/dashboard/api-keys"
    assert browser.title() == "Provara gateway · API keys"
    assert site.tenant in browser.text("header")
    assert set(browser.nav()) >= {"API keys", "Providers", "Usage", "Router"}
    cookie = browser.driver.get_cookie("provara_token")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    browser.logout()
    assert browser.title() == "Provara gateway · Sign in"
    assert browser.driver.get_cookie("provara_token") is None
    browser.open("/dashboard/usage")  # the session is gone: any page asks to sign in again
    assert browser.title() == "Provara gateway · Sign in"
    assert not browser.all("nav a")
