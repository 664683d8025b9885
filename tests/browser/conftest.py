"""Fixtures for the browser tests: one headless Chromium for the session and one real
gateway on 127.0.0.1 with tenants, a stored provider key and usage made by real requests.

Chromium and chromedriver are installed when missing (see :mod:`tests.browser.chromium`);
when they cannot be, the tests error with the reason. Screenshots of every page go to
``test-artifacts/screenshots/`` (``$PROVARA_TEST_ARTIFACTS/screenshots/``), and a test that
fails leaves ``FAILED-<test>.png`` of the page it failed on.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from selenium.webdriver import Chrome

from tests.browser.browser import DESKTOP, Browser, start_chrome
from tests.browser.chromium import ChromiumBinaries, locate_chromium
from tests.browser.site import Site, serve_site

ROOT = Path(__file__).resolve().parents[2]


def artifacts() -> Path:
    """Where test artifacts go: ``$PROVARA_TEST_ARTIFACTS``, else ``test-artifacts/``."""
    configured = os.environ.get("PROVARA_TEST_ARTIFACTS", "").strip()
    return Path(configured) if configured else ROOT / "test-artifacts"


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The gateway the browser drives (see :mod:`tests.browser.site`), seeded once; it
    stops, and the price it adds is removed, after the last browser test."""
    with serve_site(tmp_path_factory.mktemp("browser-gateway")) as served:
        yield served


@pytest.fixture(scope="session")
def chromium() -> ChromiumBinaries:
    """Chromium and chromedriver, installed first when missing (as root with apt-get)."""
    return locate_chromium()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The screenshots folder, emptied of an earlier run's pictures."""
    folder = artifacts() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def chrome(
    chromium: ChromiumBinaries, tmp_path_factory: pytest.TempPathFactory, downloads: Path
) -> Iterator[Chrome]:
    """One headless Chromium for the session, on a fresh profile."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = start_chrome(chromium, profile, downloads)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chrome: Chrome, site: Site, screenshots: Path) -> Iterator[Browser]:
    """The shared Chromium, signed out, at desktop size, its console read after the test:
    a CSP report or any console error the test did not allow fails it."""
    chrome.delete_all_cookies()
    chrome.set_window_size(*DESKTOP)
    view = Browser(chrome, site.url, screenshots)
    view.console()  # drop what earlier tests left
    yield view
    problems = view.console_problems()
    assert not problems, "the browser console reported:\n" + "\n".join(problems)


@pytest.fixture
def signed_in(browser: Browser, site: Site) -> Browser:
    """The browser signed in as ``acme-corp``."""
    browser.login(site.token)
    return browser


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:  # in the test, or in the console check after it
        view = getattr(item, "funcargs", {}).get("browser")
        if isinstance(view, Browser):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)
            try:
                saved = view.shot(f"FAILED-{name}")
            except Exception as exc:  # the browser itself may be what broke
                report.sections.append(("screenshot", f"no screenshot: {exc!r}"))
            else:
                report.sections.append(("screenshot", f"{saved} ({view.driver.current_url})"))
    return report
