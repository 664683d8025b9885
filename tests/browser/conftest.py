"""Fixtures for the browser tests: one headless Chromium for the session and one real
gateway on 127.0.0.1 with a tenant, its provider key and usage made by real requests.

Chromium and chromedriver are installed when missing (see :mod:`tests.browser.chromium`);
when they cannot be, the tests error with the reason. Screenshots of every page go to
``test-artifacts/screenshots/`` (``$PROVARA_TEST_ARTIFACTS/screenshots/``), and a test that
fails leaves ``FAILED-<test>.png`` of the page it failed on.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from selenium.webdriver import Chrome

from reference_gateway.operators import create_operator
from reference_gateway.store import connect
from tests.browser.browser import DESKTOP, Browser, start_chrome
from tests.browser.chromium import ChromiumBinaries, locate_chromium
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.db import tenant_id

ROOT = Path(__file__).resolve().parents[2]
ACME_KEY = "sk-acme-tenant-key-4f2a"
BACKDATED_DAYS = 10
"""The tenant's ``acme`` usage is moved this many days back, for the date filters."""


def artifacts() -> Path:
    """Where test artifacts go: ``$PROVARA_TEST_ARTIFACTS``, else ``test-artifacts/``."""
    configured = os.environ.get("PROVARA_TEST_ARTIFACTS", "").strip()
    return Path(configured) if configured else ROOT / "test-artifacts"


@dataclass(frozen=True)
class Site:
    """The seeded gateway: ``token`` is tenant ``acme-corp``'s; ``other_token`` belongs to a
    second tenant whose usage (``local/echo-anthropic`` only) must never show to the first;
    ``operator_token`` is operator ``ops``'s, made as ``provara-gateway operators create``
    makes it."""

    server: GatewayServer
    tenant: str
    token: str
    other_token: str
    operator_token: str
    today: dt.date
    backdated: dt.date

    @property
    def url(self) -> str:
        return self.server.url


def _chat(client: httpx.Client, token: str, model: str, text: str, **extra: object) -> str:
    """Send one completion; its id ('' when it failed)."""
    response = client.post(
        "/v1/chat/completions",
        headers={"authorization": f"Bearer {token}"},
        json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
    )
    if response.status_code != 200 or extra.get("stream"):
        return ""
    return str(response.json()["id"])


def _seed(server: GatewayServer) -> Site:
    token = server.tenant("acme-corp")
    other = server.tenant("globex")
    bearer = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        added = client.post(
            "/api/provider-keys", headers=bearer, json={"name": "ACME_API_KEY", "value": ACME_KEY}
        )
        assert added.status_code in (200, 201), added.text
        graded = [_chat(client, token, "local/echo", f"hello {index} " * 20) for index in range(3)]
        for completion, score in zip(graded, (1, 1, 0), strict=True):
            feedback = {"completion_id": completion, "score": score}
            assert client.post("/v1/feedback", headers=bearer, json=feedback).status_code == 201
        _chat(client, token, "local/echo", "a streamed hello", stream=True)
        _chat(client, token, "auto", "which model am I routed to?")
        for index in range(2):
            _chat(client, token, "acme/acme-large", f"question {index}")
        _chat(client, token, "boom/boom-1", "this provider is broken")
        _chat(client, other, "local/echo-anthropic", "another tenant's request")
        # The usage page flushes the usage buffer before it reads.
        assert client.get("/dashboard/usage", headers=bearer).status_code == 200
    today = dt.datetime.now(dt.UTC).date()
    backdated = today - dt.timedelta(days=BACKDATED_DAYS)
    tenant = tenant_id(server.database, token)
    with connect(server.database) as conn:
        moved = conn.execute(
            sa.text(
                "UPDATE usage SET day = :day, created_at = :created "
                "WHERE tenant_id = :tenant AND provider = 'acme'"
            ),
            {
                "day": backdated.isoformat(),
                "created": f"{backdated.isoformat()}T09:30:00.000+00:00",
                "tenant": tenant,
            },
        )
        assert moved.rowcount >= 2, "the acme requests left no usage rows"
        _, operator_token = create_operator(conn, "ops")
    return Site(
        server=server,
        tenant="acme-corp",
        token=token,
        other_token=other,
        operator_token=operator_token,
        today=today,
        backdated=backdated,
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The gateway the browser drives, seeded once for the session."""
    settings = make_settings(tmp_path_factory.mktemp("browser-gateway"))
    with GatewayServer(settings) as server:
        yield _seed(server)


@pytest.fixture(scope="session")
def chromium() -> ChromiumBinaries:
    """Chromium and chromedriver, installed first when missing (as root with apt-get)."""
    return locate_chromium()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = artifacts() / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
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
