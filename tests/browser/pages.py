"""Steps through the dashboard that several browser tests share."""

from __future__ import annotations

import datetime as dt

from selenium.webdriver.remote.webelement import WebElement

from tests.browser.browser import Browser

__all__ = ["PHONE", "assert_fits", "goto", "type_date"]

PHONE = (390, 844)
"""A phone's window, in CSS pixels."""


def goto(browser: Browser, link: str) -> None:
    """Follow a navigation link; the page it opens marks it as the current one."""
    browser.click(browser.nav()[link])
    assert browser.title() == f"Provara gateway · {link}"
    assert browser.find("nav a.here").text == link


def assert_fits(browser: Browser) -> None:
    """The page is no wider than the window: nothing to scroll sideways."""
    # clientWidth: the window less its vertical scrollbar.
    wide, window = browser.driver.execute_script(
        "const root = document.documentElement; return [root.scrollWidth, root.clientWidth]"
    )
    assert wide <= window, f"{browser.path} is {wide} px wide in a {window} px window"


def type_date(browser: Browser, field: WebElement, day: dt.date) -> None:
    """Type a day into an ``<input type=date>`` as a person does (en-US: month, day, year)."""
    field.send_keys(day.strftime("%m%d%Y"))  # focus lands on the month
    assert field.get_attribute("value") == day.isoformat()
