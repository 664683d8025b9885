"""Development sessions. ``nox -l`` lists them; ``nox -s NAME -- ARGS`` passes ARGS on."""

from __future__ import annotations

import json
import os
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    session.install("-e", ".[test,gateway,bedrock,otel]")
    _pytest(session, "-p", "no:cacheprovider")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint and format-check with ruff, type-check with mypy."""
    session.install("-e", ".[lint,test,bedrock,otel]")
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


# Options the conformance session handles itself, never passed to pytest (flags, no value).
_SESSION_FLAGS: frozenset[str] = frozenset({"--mutate"})

# Options ``python -m conformance.mutation`` takes from the session's arguments (each with a
# value); the plugin declares the ``--mutate-*`` ones, so the plain run accepts them too.
_MUTATION_OPTIONS = (
    "--report-dir",
    "--conformance-fixtures",
    "--mutate-module",
    "--mutate-max",
    "--mutate-children",
    "--mutate-timeout",
    "--mutate-workspace",
)

# Prints the option strings of pytest and its installed plugins that take a value.
_VALUE_OPTIONS_PROBE = """
import json
from _pytest.config import get_config
config = get_config()
config.pluginmanager.load_setuptools_entrypoints("pytest11")
actions = config._parser.optparser._actions
print(json.dumps({s: a.nargs == "?" for a in actions if a.nargs != 0 for s in a.option_strings}))
"""

# Prints {distribution: [provider names]} of the installed adapter packages.
_ADAPTERS_PROBE = """
import json
from importlib.metadata import distributions
found = {}
for dist in distributions():
    names = [ep.name for ep in dist.entry_points if ep.group == "provara.providers"]
    if names and dist.metadata["Name"] != "provara-kit":
        found[dist.metadata["Name"]] = names
print(json.dumps(found))
"""


@dataclass
class _ConformanceArgs:
    """``nox -s conformance -- ARGS`` split up: targets, pytest's options, session flags."""

    targets: list[str] = field(default_factory=list)
    pytest_args: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)


def _probe(session: nox.Session, script: str) -> Any:
    """Run ``script`` in the session's interpreter and parse the JSON it prints."""
    output = session.run("python", "-c", script, silent=True, log=False)
    return json.loads(str(output).strip().splitlines()[-1])


def _needs_option_table(args: list[str]) -> bool:
    """Whether some option might take the next argument as its value."""
    return any(
        arg.startswith("-") and "=" not in arg and arg not in _SESSION_FLAGS for arg in args[:-1]
    )


def _split_args(args: list[str], value_options: dict[str, bool]) -> _ConformanceArgs:
    """Split ``args`` as pytest's parser would: an option that takes a value keeps it
    (``--opt value``, ``--opt=value``, ``-p value``, ``-pvalue``, ``-xk expr``); every other
    word is a target. ``value_options`` maps an option to whether its value is optional."""
    parsed = _ConformanceArgs()
    rest = deque(args)
    while rest:
        arg = rest.popleft()
        if arg in _SESSION_FLAGS:
            parsed.flags.add(arg)
        elif arg == "--":
            parsed.pytest_args += [arg, *rest]
            rest.clear()
        elif not arg.startswith("-") or arg == "-":
            parsed.targets.append(arg)
        else:
            parsed.pytest_args.append(arg)
            option = _value_option(arg, value_options)
            optional = option is not None and value_options[option]
            if option is not None and rest and not (optional and rest[0].startswith("-")):
                parsed.pytest_args.append(rest.popleft())
    return parsed


def _value_option(arg: str, value_options: dict[str, bool]) -> str | None:
    """The option in ``arg`` whose value is the next argument, if there is one."""
    if arg.startswith("--"):
        return arg if arg in value_options and "=" not in arg else None
    for index in range(1, len(arg)):  # a cluster of short options: -xvs, -xk, -pNAME
        short = "-" + arg[index]
        if short in value_options:
            return short if index == len(arg) - 1 else None
    return None


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


def _uninstall_stale_adapters(session: nox.Session, targets: list[str]) -> None:
    """Remove adapter packages earlier runs installed that register none of ``targets``, so
    a run checks the built-ins plus exactly what it names."""
    installed: dict[str, list[str]] = _probe(session, _ADAPTERS_PROBE)
    stale = sorted(dist for dist, names in installed.items() if not set(names) & set(targets))
    if not stale:
        return
    session.log(f"uninstalling adapter packages of earlier runs: {', '.join(stale)}")
    if session.venv_backend == "uv":
        python = str(Path(session.bin) / "python")
        session.run("uv", "pip", "uninstall", "--python", python, *stale, external=True)
    else:
        session.run("python", "-m", "pip", "uninstall", "--yes", "--quiet", *stale)


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Run the conformance suite: ``nox -s conformance -- [TARGET ...] [--live] [--record]``.

    ``--mutate`` then measures the suite's power on each TARGET: mutation score and surviving
    mutants of its adapter module, in the same report (``--mutate-max N`` samples).

    TARGET is a registered provider name or a path to an adapter package (installed first);
    no TARGET checks every registered provider. Providers registered by the modules in
    ``PROVARA_PROVIDER_MODULES`` are registered too, and paths and modules are found from
    the directory nox was run in. Reports go to ``--report-dir`` (default
    ``conformance-report/`` there). Any other pytest option passes through.
    """
    session.install("-e", ".[bedrock]")
    posargs = list(session.posargs)
    table = _probe(session, _VALUE_OPTIONS_PROBE) if _needs_option_table(posargs) else {}
    args = _split_args(posargs, table)
    here = Path(session.invoked_from)
    packages: list[Path] = []
    names: list[str] = []
    for target in args.targets:
        folder = here / target
        if not folder.is_dir():
            names.append(target)
            continue
        try:
            package_names = _adapter_names(folder.resolve())
        except ValueError as exc:
            session.error(str(exc))
        packages.append(folder.resolve())
        names += package_names
        recorded = folder.resolve() / "tests" / "fixtures"
        if recorded.is_dir():
            args.pytest_args += [f"--conformance-fixtures={n}={recorded}" for n in package_names]
    _uninstall_stale_adapters(session, names)
    for package in packages:
        session.install(str(package))
    # The suite's own settings, not this project's test configuration.
    ini = Path(session.create_tmp()) / "conformance.ini"
    ini.write_text("[pytest]\nxfail_strict = true\n", encoding="utf-8")
    selected = [f"--conformance-target={name}" for name in names]
    session.chdir(here)  # PROVARA_PROVIDER_MODULES and the reports: where the user is
    session.run(
        *("pytest", "-c", str(ini), "--rootdir", ".", "-p", "no:cacheprovider"),
        *("--pyargs", "conformance.registered", *selected, *args.pytest_args),
    )
    if "--mutate" in args.flags:
        _mutate(session, args.targets, args.pytest_args)


def _mutate(session: nox.Session, targets: list[str], pytest_args: list[str]) -> None:
    """``--mutate``: the suite's power on each target (mutmut over its adapter module),
    written into the same report."""
    session.install("mutmut>=3.8,<4")
    options: list[str] = []
    rest = iter(pytest_args)
    for arg in rest:
        if arg.split("=", 1)[0] in _MUTATION_OPTIONS:
            options += [arg] if "=" in arg else [arg, next(rest, "")]
    session.run("python", "-m", "conformance.mutation", *targets, *options)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Gateway overhead beside LiteLLM and Portkey on an nginx mock upstream: ``nox -s bench``.

    Needs ``nginx`` and ``wrk``; Portkey's gateway needs ``node`` and ``npm`` (each
    installed with apt-get when missing and running as root). Installs ``litellm[proxy]``
    into this session, and the bench installs Portkey's gateway with npm into a cache
    directory; a peer that cannot be installed or started is reported as missing, with
    the reason. Options (``python -m bench --help``):
    ``-- --duration 10 --rounds 3 --workers 1``. Writes ``bench-results/bench.json``.
    """
    import shutil
    import subprocess

    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    no_node = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if (missing or no_node) and shutil.which("apt-get") and os.geteuid() == 0:
        session.run("apt-get", "update", "-qq", external=True)
        if missing:
            session.run("apt-get", "install", "-y", "-qq", "nginx", "wrk", external=True)
        if no_node:  # without them only Portkey is missing: apt's failure is not fatal
            session.run(
                *("apt-get", "install", "-y", "-qq", "nodejs", "npm"),
                external=True,
                success_codes=[0, 100],
            )
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        session.skip(f"needs {' and '.join(missing)} (apt-get install -y nginx wrk)")
    session.install("-e", ".[gateway,bedrock]", "openai", "httpx-sse", "httpx-aiohttp", "ijson")
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
