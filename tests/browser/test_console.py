"""The console check every browser test ends with can fail: it sees a blocked inline script.

Every other test's ``browser`` fixture fails it on a CSP report or a console error; this one
serves a page that breaks the dashboard's policy, under the dashboard's own headers, and
checks the browser refuses the script and the check reports it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reference_gateway.dashboard.page import render
from tests.browser.browser import Browser

_PROBE = render(
    "Probe",
    '<p id="probe">probe</p><script>document.title = "the script ran";</script>',
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(_PROBE.status_code)
        for name, value in _PROBE.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(bytes(_PROBE.body))

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def probe_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/probe"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_an_inline_script_is_blocked_and_reported(browser: Browser, probe_url: str) -> None:
    browser.driver.get(probe_url)
    assert browser.find("#probe").text == "probe"
    assert browser.driver.title == "Probe · Provara gateway"  # the script did not run
    problems = browser.console_problems()
    assert any("Content Security Policy" in problem for problem in problems), problems
