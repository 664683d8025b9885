"""Development sessions. ``nox -l`` lists them; ``nox -s NAME -- ARGS`` passes ARGS on."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = "3.11"


def _pytest(session: nox.Session, *args: str) -> None:
    session.run("pytest", *args, *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (what CI runs)."""
    session.install("-e", ".[test,gateway]")
    _pytest(session, "-p", "no:cacheprovider")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint and format-check with ruff, type-check with mypy."""
    session.install("-e", ".[lint,test]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def gateway(session: nox.Session) -> None:
    """Start the reference gateway: ``nox -s gateway -- [--port 8000] [--database URL]``.

    Embedded SQLite (``./provara-gateway.db``) and the keyless ``local`` provider, so it
    answers at once. Without ``PROVARA_MASTER_KEY`` a development key is made in
    ``./provara-gateway.dev-key``; on an empty database a ``dev`` tenant is created and its
    token printed.
    """
    session.install("-e", ".[gateway]")
    session.run("provara-gateway", "serve", "--dev", *session.posargs)


# Options of the conformance plugin that take a value (the value follows the option).
_VALUE_OPTIONS = {"--report-dir", "--conformance-target", "--conformance-fixtures", "-k", "-m"}


def _adapter_names(package: Path) -> list[str]:
    """Provider names an adapter package registers under ``provara.providers``."""
    pyproject = package / "pyproject.toml"
    if not pyproject.is_file():
        raise ValueError(f"{package} has no pyproject.toml: is it an adapter package?")
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    names = list(data.get("project", {}).get("entry-points", {}).get("provara.providers", {}))
    if not names:
        raise ValueError(f"{pyproject} registers no entry point in the provara.providers group")
    return names


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Run the conformance suite: ``nox -s conformance -- [TARGET ...] [--live] [--record]``.

    TARGET is a registered provider name or a path to an adapter package (installed first);
    no TARGET checks every registered provider. Reports go to ``--report-dir``
    (default ``conformance-report/``).
    """
    session.install("-e", ".")
    targets: list[str] = []
    options: list[str] = []
    args = iter(session.posargs)
    for arg in args:
        if arg.startswith("-"):
            options.append(arg)
            if arg in _VALUE_OPTIONS:
                options.append(next(args, ""))
        elif Path(arg).is_dir():
            package = Path(arg).resolve()
            try:
                names = _adapter_names(package)
            except ValueError as exc:
                session.error(str(exc))
            session.install(str(package))
            targets.extend(names)
            recorded = package / "tests" / "fixtures"
            if recorded.is_dir():
                options += [f"--conformance-fixtures={name}={recorded}" for name in names]
        else:
            targets.append(arg)
    # The suite's own settings, not this project's test configuration.
    ini = Path(session.create_tmp()) / "conformance.ini"
    ini.write_text("[pytest]\nxfail_strict = true\n", encoding="utf-8")
    selected = [f"--conformance-target={name}" for name in targets]
    session.run(
        *("pytest", "-c", str(ini), "--rootdir", ".", "-p", "no:cacheprovider"),
        *("--pyargs", "conformance.registered", *selected, *options),
    )


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Gateway overhead beside LiteLLM's proxy on one nginx mock upstream: ``nox -s bench``.

    Needs ``nginx`` and ``wrk`` (installed with apt-get when missing and running as root).
    Installs ``litellm[proxy]`` into this session; if that fails the bench still runs and
    reports LiteLLM as missing, with the reason. Options (``python -m bench --help``):
    ``-- --duration 10 --rounds 3 --workers 1``. Writes ``bench-results/bench.json``.
    """
    import shutil
    import subprocess

    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "nginx", "wrk", external=True)
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        session.skip(f"needs {' and '.join(missing)} (apt-get install -y nginx wrk)")
    session.install("-e", ".[gateway]", "openai", "httpx-sse", "httpx-aiohttp")
    results = Path("bench-results")
    results.mkdir(exist_ok=True)
    log = results / "litellm-install.log"
    python = str(Path(session.bin) / "python")
    if subprocess.run([python, "-c", "import litellm"], capture_output=True).returncode:
        installed = subprocess.run(
            [python, "-m", "bench.install_litellm"], capture_output=True, text=True
        )
        log.write_text(installed.stdout + installed.stderr, encoding="utf-8")
    env = {"BENCH_LITELLM_INSTALL_LOG": str(log.resolve())}
    session.run("python", "-m", "bench", *session.posargs, env=env)
