"""Conformance tests for registered providers: ``pytest --pyargs conformance.registered``.

Targets come from ``--conformance-target NAME`` (repeatable); none means every provider
in the registry: built-in, installed adapter packages, and those registered by the modules
in ``PROVARA_PROVIDER_MODULES``. A target whose streaming is off (``<NAME>_STREAMING=0``,
or ``--conformance-streaming-off`` for all) is checked the way it is deployed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conformance.suite import ProviderConformance
from conformance.target import ConformanceTarget, registered_targets
from provara_kit.errors import ConfigurationError


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_target" not in metafunc.fixturenames:
        return
    names = registered_targets(metafunc.config.getoption("provara_targets"))
    fixtures = _fixture_folders(metafunc.config.getoption("provara_fixtures"))
    try:
        targets = [ConformanceTarget.from_registry(n, fixtures_dir=fixtures.get(n)) for n in names]
    except ConfigurationError as exc:
        raise pytest.UsageError(str(exc)) from None
    if metafunc.config.getoption("provara_streaming_off"):
        targets = [dataclasses.replace(t, streaming=False) for t in targets]
    metafunc.parametrize("conformance_target", targets, ids=[t.name for t in targets])


def _fixture_folders(pairs: list[str]) -> dict[str, Path]:
    folders = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise pytest.UsageError(f"--conformance-fixtures takes NAME=DIR, got {pair!r}")
        folders[name] = Path(folder)
    return folders


class TestRegisteredProvider(ProviderConformance):
    """Every check against each registered provider, scripted in its own wire dialect."""
