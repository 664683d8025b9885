"""Provara conformance suite: checks every provider adapter must pass, as a pytest plugin.

An adapter package subclasses :class:`ProviderConformance`; operators run
``nox -s conformance -- TARGET``. Every check has a stable id (``status-200``,
``stream-aborted`` ...) that the JSON, Markdown and JUnit reports carry.
"""

from __future__ import annotations

from conformance.checks import CHECKS, Check
from conformance.context import FAKE_KEY, CheckContext, CheckSkipped, Findings
from conformance.suite import ProviderConformance
from conformance.target import ConformanceTarget, resolve_dialect

SUITE_VERSION = "0.1.0"

__all__ = [
    "CHECKS",
    "FAKE_KEY",
    "SUITE_VERSION",
    "Check",
    "CheckContext",
    "CheckSkipped",
    "ConformanceTarget",
    "Findings",
    "ProviderConformance",
    "resolve_dialect",
]
