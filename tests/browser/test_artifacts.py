"""Where the browser tests leave their screenshots, and the one a failing test leaves."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.browser import conftest
from tests.browser.browser import Browser

_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class _Driver:
    """What a screenshot needs from the driver."""

    current_url = "http://127.0.0.1:1/dashboard/usage"

    def execute_cdp_cmd(self, command: str, params: dict[str, Any]) -> dict[str, str]:
        assert command == "Page.captureScreenshot" and params["captureBeyondViewport"]
        return {"data": base64.b64encode(_PNG).decode()}


def _report(item: Any, when: str, outcome: str) -> pytest.TestReport:
    """Run the report hook around a report of ``outcome`` at ``when``."""
    report = pytest.TestReport(
        nodeid=item.nodeid,
        location=("x.py", 1, "x"),
        keywords={},
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=None,
        when=when,  # type: ignore[arg-type]
    )
    hook = conftest.pytest_runtest_makereport(item, SimpleNamespace(when=when))  # type: ignore[arg-type]
    next(hook)
    with pytest.raises(StopIteration) as done:
        hook.send(report)
    result: pytest.TestReport = done.value.value
    return result


def test_artifacts_go_where_the_variable_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PROVARA_TEST_ARTIFACTS", raising=False)
    assert conftest.artifacts() == conftest.ROOT / "test-artifacts"
    monkeypatch.setenv("PROVARA_TEST_ARTIFACTS", str(tmp_path))
    assert conftest.artifacts() == tmp_path


def test_a_failing_test_leaves_a_screenshot_of_its_page(tmp_path: Path) -> None:
    view = Browser(_Driver(), "http://127.0.0.1:1", tmp_path)  # type: ignore[arg-type]
    item = SimpleNamespace(name="test_x[usage page]", nodeid="t.py::x", funcargs={"browser": view})
    failed = _report(item, "call", "failed")
    saved = tmp_path / "FAILED-test_x_usage_page_.png"
    assert saved.read_bytes() == _PNG
    assert ("screenshot", f"{saved} ({_Driver.current_url})") in failed.sections

    saved.unlink()
    _report(item, "call", "passed")
    assert list(tmp_path.iterdir()) == []
    _report(item, "teardown", "failed")  # the console check after the test
    assert saved.read_bytes() == _PNG
