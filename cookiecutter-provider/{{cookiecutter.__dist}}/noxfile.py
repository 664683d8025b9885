"""Sessions for the {{ cookiecutter.provider_name }} adapter: ``nox -l`` lists them.

provara-kit is installed from ``$PROVARA_KIT`` when it is set (a path to a checkout, a git
URL as ``provara-kit @ git+https://...``, any requirement pip understands), else from the
checkout this package was generated from (``kit-source`` under ``[tool.provara]`` in
pyproject.toml) -- never by its bare name from a package index, which may not be ours.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nox

nox.options.sessions = ["tests", "conformance", "lint"]

PROVIDER = "{{ cookiecutter.__slug }}"


def _kit(session: nox.Session) -> str:
    """Where provara-kit comes from: ``$PROVARA_KIT``, else the recorded checkout."""
    chosen = os.environ.get("PROVARA_KIT", "").strip()
    if chosen:
        return chosen
    pyproject = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))
    recorded = str(pyproject.get("tool", {}).get("provara", {}).get("kit-source", ""))
    if recorded and Path(recorded).is_dir():
        return recorded
    where = f"the recorded checkout {recorded} is gone" if recorded else "none is recorded"
    session.error(
        f"set PROVARA_KIT to provara-kit's source ({where}): a checkout path, or "
        "'provara-kit @ git+https://...'"
    )


def _install(session: nox.Session, extras: str = "") -> None:
    session.install(_kit(session))
    session.install("-e", f".[{extras}]" if extras else ".")


@nox.session
def tests(session: nox.Session) -> None:
    """The package's tests, every conformance check included (``-- --live --record`` too)."""
    _install(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """The kit's suite against the installed provider, as the gateway registers it."""
    _install(session)
    session.run(
        *("pytest", "-p", "no:cacheprovider", "--pyargs", "conformance.registered"),
        f"--conformance-target={PROVIDER}",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format-check with ruff, type-check with mypy --strict."""
    _install(session, "test,lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
