"""Steps through the dashboard that several browser tests share."""

from __future__ import annotations

from tests.browser.browser import Browser

__all__ = ["goto"]


def goto(browser: Browser, link: str) -> None:
    """Follow a navigation link; the page it opens marks it as the current one."""
    browser.click(browser.nav()[link])
    assert browser.title() == f"Provara gateway · {link}"
    assert browser.find("nav a.here").text == link
