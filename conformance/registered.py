"""Conformance tests for registered providers: ``pytest --pyargs conformance.registered``.

Targets come from ``--conformance-target NAME`` (repeatable); none means every provider
in the registry, built-in and installed adapter packages alike.
"""

from __future__ import annotations

import pytest

from conformance.suite import ProviderConformance
from conformance.target import ConformanceTarget
from provara_kit.registry import REGISTRY


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_target" not in metafunc.fixturenames:
        return
    names = metafunc.config.getoption("provara_targets") or REGISTRY.names()
    targets = [ConformanceTarget.from_registry(name) for name in names]
    metafunc.parametrize("conformance_target", targets, ids=[t.name for t in targets])


class TestRegisteredProvider(ProviderConformance):
    """Every check against each registered provider, scripted in its own wire dialect."""
