"""The pytest plugin (entry point ``pytest11``): options, completeness guard, reports.

Options: ``--live`` (real API, keys from the environment), ``--record`` (with ``--live``:
save the real exchanges as fixtures), ``--report-dir DIR`` (default
``conformance-report/``), ``--conformance-target NAME`` (registered providers for the
built-in target module), ``--conformance-partial`` (allow running a subset of checks),
``--conformance-streaming-off`` (check every target with its streaming turned off).

Like the gateway, the plugin imports the modules named in ``PROVARA_PROVIDER_MODULES`` at
start-up, so providers registered there (path A) can be checked; an unknown target or a
module that cannot be imported is a usage error naming what is registered.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest

from conformance.checks import CHECKS
from conformance.report import CheckRow, ConformanceReport, Status
from conformance.suite import MARKER, TARGETS_KEY
from conformance.target import registered_targets


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("provara-conformance", "Provara conformance suite")
    group.addoption(
        "--live",
        action="store_true",
        dest="provara_live",
        help="run the live checks against the real provider APIs (keys from the environment)",
    )
    group.addoption(
        "--record",
        action="store_true",
        dest="provara_record",
        help="with --live: record the real exchanges as replay fixtures (auth headers stripped)",
    )
    group.addoption(
        "--report-dir",
        dest="provara_report_dir",
        default="conformance-report",
        help="where report.json, report.md and junit.xml go (default: conformance-report/)",
    )
    group.addoption(
        "--conformance-target",
        dest="provara_targets",
        action="append",
        default=[],
        help="a registered provider to check (repeatable; default: every registered one)",
    )
    group.addoption(
        "--conformance-fixtures",
        dest="provara_fixtures",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="recorded replay fixtures for a registered provider (repeatable)",
    )
    group.addoption(
        "--conformance-streaming-off",
        action="store_true",
        dest="provara_streaming_off",
        help="check every target with streaming turned off, as <NAME>_STREAMING=0 deploys it",
    )
    group.addoption(
        "--conformance-partial",
        action="store_true",
        dest="provara_partial",
        help="allow a run that collects only some checks (the report is marked partial)",
    )
    mutation = parser.getgroup(
        "provara-mutation", "Mutation run (nox -s conformance -- TARGET --mutate); pytest ignores"
    )
    for option, help_text in MUTATION_OPTIONS.items():
        mutation.addoption(option, dest="provara_" + option[2:].replace("-", "_"), help=help_text)


MUTATION_OPTIONS = {
    "--mutate-module": "a dotted module or .py file to mutate instead of the adapter's",
    "--mutate-max": "test an evenly spread sample of N mutants",
    "--mutate-children": "mutmut's parallel workers (default 2)",
    "--mutate-timeout": "stop each target's mutation run after this many seconds",
    "--mutate-workspace": "keep the mutation workspaces in this directory",
}
"""Options of ``python -m conformance.mutation`` that pytest accepts (and ignores), so
``nox -s conformance`` can hand the same arguments to both runs."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(check_id): a Provara conformance check")
    config.stash[TARGETS_KEY] = {}
    try:
        registered_targets(config.getoption("provara_targets"))
    except LookupError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(ConformanceSession(config), "provara-conformance-session")


class ConformanceSession:
    """Collects one row per (target, check) as the tests run, and writes the report."""

    def __init__(self, config: pytest.Config) -> None:
        from conformance import SUITE_VERSION

        self.config = config
        self.report = ConformanceReport(
            suite_version=SUITE_VERSION,
            live=bool(config.getoption("provara_live")),
            partial=bool(config.getoption("provara_partial")),
        )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        groups: dict[str, set[str]] = defaultdict(set)
        for item in session.items:
            marker = item.get_closest_marker(MARKER)
            if marker is None:
                continue
            group = item.nodeid.rsplit("::", 1)[0]
            callspec = getattr(item, "callspec", None)
            if callspec is not None:
                group += f"[{callspec.id}]"
            groups[group].add(str(marker.args[0]))
        if self.report.partial:
            return
        for group, found in groups.items():
            missing = sorted(set(CHECKS) - found)
            if missing:
                raise pytest.UsageError(
                    f"{group} collected {len(found)} of the {len(CHECKS)} conformance checks "
                    f"(missing: {', '.join(missing)}). Every check must run; opt out of one "
                    "with expected_failures and a reason, or pass --conformance-partial."
                )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        check_id = props.get("conformance_check")
        target = props.get("conformance_target")
        status = _status(report)
        if check_id is None or target is None or status is None:
            return
        self._learn_live_keys()
        self.report.record(
            CheckRow(
                target=str(target),
                id=str(check_id),
                status=status,
                reason="" if status == "passed" else self.report.scrub(_reason(report)),
                duration_s=round(report.duration, 3),
            )
        )

    def _learn_live_keys(self) -> None:
        """Add the targets' keys from the environment to what the report scrubs: a
        failing check's reason may quote what an adapter leaked."""
        for target in self.config.stash[TARGETS_KEY].values():
            key = os.environ.get(target.api_key_env) if target.api_key_env else None
            if key and len(key) >= 8:  # a placeholder like 'x' is no secret to scrub
                self.report.secrets.add(key)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.report.rows:
            return
        targets = self.config.stash[TARGETS_KEY]
        self.report.targets.update(targets)
        self.report.write(Path(str(self.config.getoption("provara_report_dir"))))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        report = self.report
        if not report.rows:
            return
        folder = self.config.getoption("provara_report_dir")
        terminalreporter.section("Provara conformance")
        for target in report.target_names():
            rows = [r for (t, _), r in report.rows.items() if t == target]
            counts = {
                s: sum(1 for r in rows if r.status == s)
                for s in ("passed", "failed", "skipped", "xfailed")
            }
            summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            terminalreporter.write_line(f"{target}: {summary}")
            for row in rows:
                if row.status == "failed":
                    terminalreporter.write_line(
                        f"    FAILED {row.id}: {row.reason[:300]}", red=True
                    )
        terminalreporter.write_line(
            f"report: {folder}/report.json, {folder}/report.md, {folder}/junit.xml"
        )


def _status(report: pytest.TestReport) -> Status | None:
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "passed"
        if report.skipped:
            return "xfailed" if xfail else "skipped"
        return "failed"
    if report.failed:
        return "failed"
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    return None


def _reason(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(longrepr or "")
