"""The README's nox and cookiecutter lines, run as printed (read from README.md), with this
checkout's noxfile under a real nox in a fresh uv virtualenv.

Path A: ``PROVARA_PROVIDER_MODULES=my_providers nox -s conformance -- acme`` from the
user's directory; an unknown target and a module that cannot be imported are one clear
error. Path B: ``cookiecutter cookiecutter-provider -o ..`` from a checkout generates beside
it; ``nox -s conformance -- ../provara-provider-acme`` with pytest options in every form;
a later plain run uninstalls it again. The generated package installs provara-kit from
the recorded checkout and survives pytest-asyncio's deprecation warnings.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

import pytest

from provara_kit.registry import default_registry
from tests.cookiecutter.project import KIT, TEMPLATE, Result, Venv, generate
from tests.test_readme_newcomer import bash_lines, blocks


@dataclass
class Nox:
    """nox (uv as its virtualenv backend) from a fresh virtualenv, sessions in ``envdir``."""

    venv: Venv
    envdir: Path

    def run(self, line: str, *, cwd: Path, extra: tuple[str, ...] = ()) -> Result:
        """Run a README ``line`` (``[VAR=value ...] nox ARGS``) with this checkout's noxfile;
        ``extra`` goes after the line's own arguments."""
        words = shlex.split(line)
        assignments = list(takewhile(lambda word: "=" in word and word[0] != "-", words))
        env = dict(word.split("=", 1) for word in assignments)
        assert words[len(env)] == "nox", line
        args = words[len(env) + 1 :]
        from uv import find_uv_bin

        path = os.pathsep.join([str(Path(find_uv_bin()).parent), os.environ.get("PATH", "")])
        return self.venv.run(
            str(self.venv.bin / "nox"),
            *("--noxfile", str(KIT / "noxfile.py"), "--envdir", str(self.envdir)),
            *("--default-venv-backend", "uv", *args, *extra),
            cwd=cwd,
            env={"PATH": path, **env},
        )


@pytest.fixture(scope="module")
def nox_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    venv = Venv.create(tmp_path_factory.mktemp("nox") / "venv")
    venv.install("nox", "cookiecutter")
    return venv


def _targets(report_dir: Path) -> dict[str, dict[str, str]]:
    data = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    return {t["target"]: {r["id"]: r["status"] for r in t["checks"]} for t in data["targets"]}


def _skip_without_interpreter(result: Result) -> None:
    if "interpreter" in result.stderr and "not found" in result.stderr:
        pytest.skip(f"nox found no interpreter for the conformance session:\n{result.stderr}")


def test_path_a_conformance_runs_as_printed(nox_venv: Venv, tmp_path: Path) -> None:
    user = tmp_path / "work"  # the user's directory, not the checkout
    user.mkdir()
    (user / "my_providers.py").write_text(blocks("Path A", "python")[0], encoding="utf-8")
    nox = Nox(nox_venv, tmp_path / "envs")
    (line,) = bash_lines("Path A", "PROVARA_PROVIDER_MODULES=")
    done = nox.run(line, cwd=user)
    _skip_without_interpreter(done)
    assert done.returncode == 0, done.output
    assert set(_targets(user / "conformance-report")) == {"acme"}  # reports where the user is
    statuses = _targets(user / "conformance-report")["acme"]
    assert statuses["status-200"] == "passed" and "failed" not in statuses.values()

    unknown = nox.run("nox -s conformance -- acmee", cwd=user)
    assert unknown.returncode != 0
    assert "no registered provider named 'acmee'" in unknown.stdout + unknown.stderr
    assert "openai" in unknown.stdout and "PROVARA_PROVIDER_MODULES" in unknown.stdout

    missing = nox.run("PROVARA_PROVIDER_MODULES=my_provider nox -s conformance -- acme", cwd=user)
    assert missing.returncode != 0
    assert "'my_provider', which is not importable" in missing.stdout, missing.output
    assert "Traceback" not in missing.stdout + missing.stderr


def test_path_b_generates_beside_the_checkout_and_plain_runs_drop_it(
    nox_venv: Venv, tmp_path: Path
) -> None:
    checkout = tmp_path / "provara-kit"
    shutil.copytree(TEMPLATE, checkout / "cookiecutter-provider", ignore=_no_cache)
    (generate_line,) = bash_lines("Path B", "cookiecutter cookiecutter-provider")
    (check_line,) = bash_lines("Path B", "nox -s conformance --")
    command = shlex.split(generate_line.split("&&")[1])
    config = ("--config-file", str(_replay_config(tmp_path)))
    made = nox_venv.run(
        str(nox_venv.bin / command[0]), *command[1:], "--no-input", *config, cwd=checkout
    )
    assert made.returncode == 0, made.output
    package = tmp_path / "provara-provider-acme"
    assert package.is_dir() and not list(checkout.glob("provara-provider-*"))

    nox = Nox(nox_venv, tmp_path / "envs")
    report = tmp_path / "report-b"
    # pytest options in every form: a value after a space (-p, --maxfail, --report-dir),
    # glued (-pNAME), after "=" (--tb=short), and a flag cluster (-rA).
    options = ("-p", "no:randomly", "-pno:doctest", "--maxfail", "50", "--tb=short", "-rA")
    done = nox.run(check_line, cwd=checkout, extra=(*options, "--report-dir", str(report)))
    _skip_without_interpreter(done)
    assert done.returncode == 0, done.output
    assert _targets(report) == {"acme": dict.fromkeys(_targets(report)["acme"], "passed")}

    plain = tmp_path / "report-plain"
    partial = ("-k", "status_200", "--conformance-partial", f"--report-dir={plain}")
    again = nox.run("nox -s conformance", cwd=checkout, extra=("--", *partial))
    assert again.returncode == 0, again.output
    assert "uninstalling adapter packages of earlier runs: provara-provider-acme" in again.stderr
    builtins = default_registry(plugins=False).names()
    assert sorted(_targets(plain)) == builtins


def _replay_config(folder: Path) -> Path:
    """A cookiecutter config keeping its replay files out of the home directory."""
    config = folder / "cookiecutter-config.yaml"
    config.write_text(f"replay_dir: {json.dumps(str(folder / 'replay'))}\n", encoding="utf-8")
    return config


def _no_cache(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield generate(tmp_path_factory.mktemp("recorded"))


def test_the_package_records_the_checkout_it_came_from(package: Path, tmp_path: Path) -> None:
    assert f'kit-source = "{KIT}"' in (package / "pyproject.toml").read_text(encoding="utf-8")
    copy = tmp_path / "elsewhere" / "cookiecutter-provider"
    shutil.copytree(TEMPLATE, copy, ignore=_no_cache)
    # A fresh process: this one has the checkout's provara_names imported already.
    command = [sys.executable, "-m", "cookiecutter", "--no-input", str(copy), "-o", "out"]
    command += ["--config-file", str(_replay_config(tmp_path))]
    subprocess.run(command, cwd=tmp_path, capture_output=True, check=True)
    elsewhere = tmp_path / "out" / "provara-provider-acme" / "pyproject.toml"
    assert 'kit-source = ""' in elsewhere.read_text(encoding="utf-8")


def test_its_nox_installs_the_recorded_checkout_never_the_bare_name(
    nox_venv: Venv, package: Path, tmp_path: Path
) -> None:
    noxfile = (package / "noxfile.py").read_text(encoding="utf-8")
    assert '"provara-kit"' not in noxfile
    env = {k: v for k, v in os.environ.items() if k != "PROVARA_KIT"}
    from uv import find_uv_bin

    env["PATH"] = os.pathsep.join([str(Path(find_uv_bin()).parent), env.get("PATH", "")])
    args = ("--envdir", str(tmp_path / "envs"), "--default-venv-backend", "uv")
    done = nox_venv.run(str(nox_venv.bin / "nox"), *args, "-s", "conformance", cwd=package, env=env)
    _skip_without_interpreter(done)
    assert done.returncode == 0, done.output
    assert f"install {KIT}" in done.stderr, done.stderr

    pyproject = package / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace(f'"{KIT}"', '"/nowhere/provara-kit"'), encoding="utf-8")
    try:
        gone = nox_venv.run(str(nox_venv.bin / "nox"), *args, "-s", "tests", cwd=package, env=env)
    finally:
        pyproject.write_text(text, encoding="utf-8")
    assert gone.returncode != 0
    assert "set PROVARA_KIT" in gone.stderr and "/nowhere/provara-kit is gone" in gone.stderr


def test_its_tests_survive_plugin_deprecations_but_not_its_own(
    package: Path, tmp_path: Path
) -> None:
    """pytest-asyncio warns at start-up that its loop scope is unset; the package's own
    deprecation warnings stay errors."""
    venv = Venv.create(tmp_path / "venv")
    venv.install("-e", str(KIT), "-e", f"{package}[test]", "pytest-asyncio>=0.24")
    run = ("python", "-m", "pytest", "-p", "no:cacheprovider", "-q")
    report = ("--report-dir", str(tmp_path / "report"))
    passed = venv.run(*run, *report, cwd=package)
    assert passed.returncode == 0, passed.output
    assert "asyncio_default_fixture_loop_scope" in passed.stderr  # shown, not fatal

    module = next((package / "src").iterdir())
    pricing = module / "pricing.py"
    original = pricing.read_text(encoding="utf-8")
    own = package / "tests" / "test_own_warning.py"
    own.write_text(
        f"from {module.name} import pricing\n\n\ndef test_it() -> None:\n    pricing.old()\n",
        encoding="utf-8",
    )
    pricing.write_text(
        original + "\n\ndef old() -> None:\n    import warnings\n\n"
        '    warnings.warn("old", DeprecationWarning, stacklevel=1)\n',
        encoding="utf-8",
    )
    try:
        failed = venv.run(*run, "--conformance-partial", *report, str(own), cwd=package)
    finally:
        pricing.write_text(original, encoding="utf-8")
        own.unlink()
    assert failed.returncode == 1, failed.output
    assert "DeprecationWarning: old" in failed.stdout
