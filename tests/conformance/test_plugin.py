"""The pytest plugin end to end: an adapter package's suite, its exit code and its reports.

Each test writes a throwaway adapter package test file (a ``ProviderConformance``
subclass) into a pytester directory and runs pytest on it in-process; the plugin loads
through its ``pytest11`` entry point, as it does for adapter authors.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conformance import CHECKS, SUITE_VERSION
from tests.conformance.bad_adapters import write_recording

# ``pytest_plugins`` here, not in tests/conformance/conftest.py: pytest refuses it in a
# conftest below the rootdir when the whole suite runs (``nox -s tests``).
pytest_plugins = ["pytester"]

ADAPTER_TESTS = '''
"""An adapter package's conformance tests (written by test_plugin.py)."""

from __future__ import annotations

from provara_kit.errors import StreamAbortedError, StreamTimeoutError
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.streaming import ChatStream

from conformance import ProviderConformance


class GoodAcme(OpenAICompatibleProvider):
    """The real OpenAI-compatible adapter, unchanged."""


class LeakyAcme(OpenAICompatibleProvider):
    """Known bad: shows its API key in repr()."""

    def __repr__(self):
        return f"LeakyAcme(api_key={{self._api_key!r}})"


class StallIsAbortAcme(OpenAICompatibleProvider):
    """Known bad at stream-timeout: reports a stall as an abort."""

    def complete_stream(self, request):
        inner = super().complete_stream(request)

        async def events():
            async with inner:
                try:
                    async for event in inner:
                        yield event
                except StreamTimeoutError as exc:
                    raise StreamAbortedError(str(exc), provider=self.name) from None

        return ChatStream(events())


class TestAcmeConformance(ProviderConformance):
    provider_name = "acme"
    wire = "openai-chat"
    models = ("acme-large",)
    api_key_env = "ACME_API_KEY"
    pricing = {{"acme/acme-large": ("3", "15")}}
    adapter_version = "1.2.3"
    fixtures_dir = "recordings"
    expected_failures = {expected_failures!r}

    def make_provider(self, *, api_key, base_url, transport):
        return {adapter}(
            name="acme",
            api_key=api_key,
            base_url={base_url},
            transport=transport,
            default_models=self.models,
            pricing=self.pricing,
        )
'''

# A plugin (``-p no_network``), so it covers tests outside the pytester directory too: any
# real network request records itself and fails. The suite must stay offline.
NO_NETWORK = """
from pathlib import Path

import httpx
import pytest


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    async def refuse(self, request):
        Path("network-touched").write_text(str(request.url))
        raise httpx.ConnectError("the conformance suite touched the network")

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", refuse)
"""

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""

KEYED_LIVE_CHECKS = ("status-200", "status-4xx", "pricing-presence")


def project(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(no_network=NO_NETWORK)
    pytester.syspathinsert()


def adapter_package(
    pytester: pytest.Pytester,
    adapter: str = "GoodAcme",
    expected_failures: dict[str, str] | None = None,
    base_url: str = 'base_url or "https://api.acme.test/v1"',
) -> None:
    project(pytester)
    source = ADAPTER_TESTS.format(
        adapter=adapter, expected_failures=expected_failures or {}, base_url=base_url
    )
    pytester.makepyfile(test_acme=source)
    write_recording(pytester.path / "recordings")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no_network", *args)
    assert not (pytester.path / "network-touched").exists(), "a check used the real network"
    return result


def read_report(folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return report


def rows(report: dict[str, Any], target: str = "acme") -> dict[str, dict[str, Any]]:
    [entry] = [t for t in report["targets"] if t["target"] == target]
    found = {row["id"]: row for row in entry["checks"]}
    assert len(found) == len(entry["checks"]), "one row per check"
    return found


def test_good_adapter_passes_and_writes_every_report(pytester: pytest.Pytester) -> None:
    adapter_package(pytester)
    result = run(pytester)

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=len(CHECKS))
    result.stdout.fnmatch_lines([f"acme: {len(CHECKS)} passed"])

    folder = pytester.path / "conformance-report"
    report = read_report(folder)
    assert report["suite_version"] == SUITE_VERSION
    assert report["mode"] == "hermetic" and report["partial"] is False
    [target] = report["targets"]
    assert target["target"] == "acme"
    assert target["adapter"] == "test_acme.GoodAcme"
    assert target["adapter_version"] == "1.2.3"
    assert target["wire"] == "openai-chat" and target["models"] == ["acme-large"]
    found = rows(report)
    assert sorted(found) == sorted(CHECKS)
    assert {check_id: row["status"] for check_id, row in found.items()} == dict.fromkeys(
        CHECKS, "passed"
    )

    markdown = (folder / "report.md").read_text(encoding="utf-8")
    header = "| provider | adapter | " + " | ".join(f"`{c}`" for c in found) + " |"
    assert header in markdown.splitlines()
    assert f"| acme | test_acme.GoodAcme 1.2.3 | {' | '.join(['✅'] * len(CHECKS))} |" in markdown

    junit = ET.parse(folder / "junit.xml").getroot()
    cases = junit.findall("./testsuite/testcase")
    assert sorted(case.get("name") or "" for case in cases) == sorted(CHECKS)
    [suite] = junit.findall("./testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == (
        "acme",
        str(len(CHECKS)),
        "0",
    )


def test_make_provider_as_the_docstring_shows_it(pytester: pytest.Pytester) -> None:
    adapter_package(pytester, base_url="base_url")
    result = run(pytester)

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=len(CHECKS))


def test_report_dir_moves_the_reports(pytester: pytest.Pytester) -> None:
    adapter_package(pytester)
    result = run(pytester, "--report-dir", "out/conformance", "--conformance-partial", "-k", "200")

    assert result.ret == pytest.ExitCode.OK
    folder = pytester.path / "out" / "conformance"
    assert sorted(p.name for p in folder.iterdir()) == ["junit.xml", "report.json", "report.md"]
    assert not (pytester.path / "conformance-report").exists()
    result.stdout.fnmatch_lines(["report: out/conformance/report.json, *"])


def test_bad_adapter_fails_with_the_reason_in_its_row(pytester: pytest.Pytester) -> None:
    adapter_package(pytester, adapter="LeakyAcme")
    result = run(pytester)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=len(CHECKS) - 3, failed=3)
    found = rows(read_report(pytester.path / "conformance-report"))
    failed = {check_id for check_id, row in found.items() if row["status"] == "failed"}
    assert failed == {"status-4xx", "status-5xx", "secret-scrub"}
    for check_id in failed:
        assert "the API key leaks into repr(provider)" in found[check_id]["reason"]
    result.stdout.fnmatch_lines(["*FAILED status-4xx: *the API key leaks into repr(provider)*"])


def test_expected_failure_is_reported_xfailed_with_its_reason(pytester: pytest.Pytester) -> None:
    reason = "reports a stall as an abort; fixed in 2.0"
    adapter_package(pytester, "StallIsAbortAcme", expected_failures={"stream-timeout": reason})
    result = run(pytester)

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=len(CHECKS) - 1, xfailed=1)
    row = rows(read_report(pytester.path / "conformance-report"))["stream-timeout"]
    assert (row["status"], row["reason"]) == ("xfailed", reason)


def test_expected_failure_that_passes_fails_the_run(pytester: pytest.Pytester) -> None:
    reason = "reports a stall as an abort; fixed in 2.0"
    adapter_package(pytester, "GoodAcme", expected_failures={"stream-timeout": reason})
    result = run(pytester)

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=len(CHECKS) - 1, failed=1)
    row = rows(read_report(pytester.path / "conformance-report"))["stream-timeout"]
    assert row["status"] == "failed"
    assert "XPASS(strict)" in row["reason"] and reason in row["reason"]


def test_deselecting_checks_is_a_usage_error(pytester: pytest.Pytester) -> None:
    adapter_package(pytester)
    result = run(pytester, "-k", "status_200")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    missing = ", ".join(sorted(set(CHECKS) - {"status-200"}))
    result.stderr.fnmatch_lines(
        [f"*collected 1 of the {len(CHECKS)} conformance checks (missing: {missing})*"]
    )
    assert not (pytester.path / "conformance-report").exists()


def test_partial_run_is_allowed_and_marked_partial(pytester: pytest.Pytester) -> None:
    adapter_package(pytester)
    result = run(pytester, "-k", "status_200", "--conformance-partial")

    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    report = read_report(pytester.path / "conformance-report")
    assert report["partial"] is True
    assert {k: r["status"] for k, r in rows(report).items()} == {"status-200": "passed"}


def test_live_without_a_key_skips_before_any_request(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    adapter_package(pytester)
    result = run(pytester, "--live")

    assert result.ret == pytest.ExitCode.OK
    report = read_report(pytester.path / "conformance-report")
    assert report["mode"] == "live"
    found = rows(report)
    assert sorted(found) == sorted(CHECKS)
    for check_id, row in found.items():
        assert row["status"] != "failed", (check_id, row["reason"])
        if check_id in KEYED_LIVE_CHECKS:
            assert row["status"] == "skipped"
            assert "set ACME_API_KEY" in row["reason"], row["reason"]
        elif CHECKS[check_id].live is None:
            assert row["status"] == "skipped"
            assert "needs a scripted upstream: it runs without --live" in row["reason"]
    assert set(KEYED_LIVE_CHECKS) <= {c for c, check in CHECKS.items() if check.live}


def test_registered_target_module_passes(pytester: pytest.Pytester) -> None:
    project(pytester)
    result = run(pytester, "--pyargs", "conformance.registered", "--conformance-target", "groq")

    assert result.ret == pytest.ExitCode.OK
    report = read_report(pytester.path / "conformance-report")
    assert [t["target"] for t in report["targets"]] == ["groq"]
    statuses = {row["status"] for row in rows(report, "groq").values()}
    assert statuses <= {"passed", "skipped"} and "passed" in statuses
    assert report["summary"]["failed"] == 0
