"""Timings of the generated-package tests, shown at the end of the run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.cookiecutter.test_generated import TIMINGS

    if not TIMINGS:
        return
    terminalreporter.section("cookiecutter-provider timings")
    for shape, steps in TIMINGS.items():
        detail = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in steps.items())
        terminalreporter.write_line(f"{shape}: {detail}")
