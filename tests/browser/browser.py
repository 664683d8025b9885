"""A headless Chromium driven through the dashboard: open, click, wait, screenshot, console.

Every wait is bounded (:data:`WAIT_SECONDS`); a page load after a click is awaited by the
old document going stale, never by sleeping.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver import Chrome, ChromeOptions
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.chromium import ChromiumBinaries

__all__ = ["WAIT_SECONDS", "Browser", "start_chrome"]

WAIT_SECONDS = 15.0
DESKTOP = (1280, 900)

# Offline and quiet: the network is closed to everything but 127.0.0.1.
_CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--password-store=basic",
    "--lang=en-US",
)

# A CSP report in the console: "Refused to execute inline script because it violates the
# following Content Security Policy directive ..." and its siblings.
_CSP = re.compile(r"Content Security Policy|Refused to", re.IGNORECASE)


def start_chrome(binaries: ChromiumBinaries, profile: Path, downloads: Path) -> Chrome:
    """A headless Chromium on a fresh profile, its console log kept for :meth:`console`.

    The driver path is given, so Selenium Manager never runs (and ``SE_OFFLINE`` would
    keep it from downloading anything if it did).
    """
    options = ChromeOptions()
    options.binary_location = str(binaries.browser)
    for arg in _CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        # Typed dates follow the browser's locale, which Chromium on Linux takes from the
        # environment: month, day, year in en-US.
        environ = {**os.environ, "LANGUAGE": "en_US"}
        driver = Chrome(service=Service(str(binaries.driver), env=environ), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    driver.set_script_timeout(WAIT_SECONDS)
    return driver


def _detached(element: WebElement) -> bool:
    """Whether ``element`` has left the document (its page was replaced)."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        # Asked while the old document is being torn down, Chromium says this instead.
        if "does not belong to the document" in str(exc.msg):
            return True
        raise
    return False


class Browser:
    """One test's view of the shared driver, on a gateway at ``base_url``."""

    def __init__(self, driver: Chrome, base_url: str, screenshots: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.screenshots = screenshots
        self._allowed: list[re.Pattern[str]] = []

    # -- navigation -------------------------------------------------------------------

    def open(self, path: str) -> None:
        """Load ``path`` of the gateway (the driver waits for the load event)."""
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        """The current URL less the gateway's base."""
        url: str = self.driver.current_url
        return url.removeprefix(self.base_url)

    def wait(self) -> WebDriverWait[Chrome]:
        return WebDriverWait(self.driver, WAIT_SECONDS)

    @contextmanager
    def loads_new_page(self) -> Iterator[None]:
        """Around an action that navigates: waits until the old document is gone and the
        new one has loaded."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        yield
        self.wait().until(lambda _: _detached(old))
        self.wait().until(lambda d: d.execute_script("return document.readyState") == "complete")

    def click(self, element: WebElement) -> None:
        """Click something that navigates (a link, a form's button) and wait for the page."""
        with self.loads_new_page():
            element.click()

    def find(self, css: str, within: WebElement | None = None) -> WebElement:
        """The first element matching ``css``, waited for until visible."""
        if within is not None:
            return within.find_element(By.CSS_SELECTOR, css)
        found: WebElement = self.wait().until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, css))
        )
        return found

    def all(self, css: str, within: WebElement | None = None) -> list[WebElement]:
        """Every element matching ``css`` now (no wait)."""
        root: Any = within if within is not None else self.driver
        found: list[WebElement] = root.find_elements(By.CSS_SELECTOR, css)
        return found

    def text(self, css: str = "main") -> str:
        return self.find(css).text

    def title(self) -> str:
        """The page's ``<h1>``."""
        return self.text("h1")

    def fill(self, element: WebElement, value: str) -> None:
        element.clear()
        element.send_keys(value)

    def login(self, token: str) -> None:
        """Sign in through the form; ends on the page the form lands on."""
        self.open("/dashboard/login")
        self.fill(self.find("input[name=token]"), token)
        self.click(self.find("main form button[type=submit]"))

    def logout(self) -> None:
        self.click(self.find("header form[action='/dashboard/logout'] button"))

    def nav(self) -> dict[str, WebElement]:
        """The navigation links by their text."""
        return {link.text: link for link in self.all("nav a")}

    # -- artifacts --------------------------------------------------------------------

    def shot(self, name: str, target: Path | None = None) -> Path:
        """A screenshot of the whole page (beyond the window) as ``NAME.png``, or into
        ``target``."""
        path = target if target is not None else self.screenshots / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    # -- console ----------------------------------------------------------------------

    def allow_console(self, pattern: str) -> None:
        """Let console errors matching ``pattern`` pass (say, the 401 of a refused sign-in);
        a CSP report never passes."""
        self._allowed.append(re.compile(pattern))

    def console(self) -> list[dict[str, Any]]:
        """The console entries since the last call (the driver hands each out once)."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return entries

    def console_problems(self) -> list[str]:
        """Console errors and CSP reports since the last call, less the allowed ones."""
        problems = []
        for entry in self.console():
            message = str(entry.get("message", ""))
            allowed = any(pattern.search(message) for pattern in self._allowed)
            error = entry.get("level") == "SEVERE" and not allowed
            if error or _CSP.search(message):
                problems.append(message)
        return problems
