"""How ``nox -s conformance -- ARGS`` splits its arguments: targets, pytest's options with
their values in every form, and the session's own flags.

The noxfile is imported with a minimal stand-in for ``nox`` (its decorators only), since
the test environment does not install nox; tests/cookiecutter/test_newcomer_nox.py runs
the real session.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

NOXFILE = Path(__file__).resolve().parents[1] / "noxfile.py"


@pytest.fixture
def noxfile(monkeypatch: pytest.MonkeyPatch) -> Any:
    stand_in = types.ModuleType("nox")
    stand_in.options = types.SimpleNamespace()  # type: ignore[attr-defined]
    stand_in.session = lambda *a, **k: lambda function: function  # type: ignore[attr-defined]
    stand_in.Session = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nox", stand_in)
    spec = importlib.util.spec_from_file_location("kit_noxfile", NOXFILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def value_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bool]:
    """What the session's probe finds in this environment: pytest's and its plugins'."""
    source = NOXFILE.read_text(encoding="utf-8")
    script = source.split('_VALUE_OPTIONS_PROBE = """', 1)[1].split('"""', 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path_factory.mktemp("probe"),
        capture_output=True,
        text=True,
        check=True,
    )
    table: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return table


def test_the_probe_knows_pytests_and_the_plugins_value_options(
    value_options: dict[str, bool],
) -> None:
    for option in ("-p", "-k", "-m", "--maxfail", "--tb", "--report-dir", "--hypothesis-seed"):
        assert value_options[option] is False, option
    assert "--live" not in value_options and "-x" not in value_options
    assert "--conformance-target" in value_options


@pytest.mark.parametrize(
    ("args", "targets", "pytest_args"),
    [
        (["acme", "-p", "no:randomly", "openai"], ["acme", "openai"], ["-p", "no:randomly"]),
        (["-pno:randomly", "acme"], ["acme"], ["-pno:randomly"]),
        (["--maxfail", "3", "acme"], ["acme"], ["--maxfail", "3"]),
        (["--maxfail=3", "acme"], ["acme"], ["--maxfail=3"]),
        (["-xk", "status_200", "acme"], ["acme"], ["-xk", "status_200"]),
        (["-k", "not live", "--tb", "short"], [], ["-k", "not live", "--tb", "short"]),
        (["--report-dir", "out", "./pkg"], ["./pkg"], ["--report-dir", "out"]),
        (["--live", "--record", "openai"], ["openai"], ["--live", "--record"]),
        (["--hypothesis-seed", "7", "acme"], ["acme"], ["--hypothesis-seed", "7"]),
        (["acme", "--", "more"], ["acme"], ["--", "more"]),
    ],
)
def test_every_value_form_passes_through_intact(
    noxfile: Any,
    value_options: dict[str, bool],
    args: list[str],
    targets: list[str],
    pytest_args: list[str],
) -> None:
    parsed = noxfile._split_args(args, value_options)
    assert (parsed.targets, parsed.pytest_args, parsed.flags) == (targets, pytest_args, set())


def test_an_optional_value_is_not_taken_from_the_next_option(noxfile: Any) -> None:
    table = {"--debug": True}
    parsed = noxfile._split_args(["--debug", "--live", "acme"], table)
    assert (parsed.targets, parsed.pytest_args) == (["acme"], ["--debug", "--live"])
    parsed = noxfile._split_args(["--debug", "trace.log", "acme"], table)
    assert (parsed.targets, parsed.pytest_args) == (["acme"], ["--debug", "trace.log"])


def test_a_session_flag_is_kept_from_pytest(noxfile: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(noxfile, "_SESSION_FLAGS", frozenset({"--mutate"}))
    parsed = noxfile._split_args(["./pkg", "--mutate", "-k", "x"], {"-k": False})
    assert (parsed.targets, parsed.pytest_args, parsed.flags) == (
        ["./pkg"],
        ["-k", "x"],
        {"--mutate"},
    )


def test_the_option_table_is_only_probed_when_an_option_may_take_a_value(noxfile: Any) -> None:
    assert not noxfile._needs_option_table(["acme", "openai", "--live"])
    assert not noxfile._needs_option_table(["acme", "--report-dir=out", "openai"])
    assert noxfile._needs_option_table(["-p", "no:randomly", "acme"])
