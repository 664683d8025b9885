"""Sessions for the {{ cookiecutter.provider_name }} adapter: ``nox -l`` lists them.

provara-kit is installed from ``$PROVARA_KIT`` when it is set (a path to a checkout, a git
URL, any requirement pip understands), else from the package index.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "conformance", "lint"]

PROVIDER = "{{ cookiecutter.__slug }}"
KIT = os.environ.get("PROVARA_KIT", "provara-kit")


def _install(session: nox.Session, extras: str = "") -> None:
    session.install(KIT)
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
