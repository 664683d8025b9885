"""Headless Chromium and its driver for the browser tests, installed when missing.

The same policy as the tests' PostgreSQL (:mod:`reference_gateway.store.local_postgres`):
the binaries come from ``PROVARA_CHROMIUM`` / ``PROVARA_CHROMEDRIVER`` or ``PATH``
(``chromium``, ``chromedriver``); when they are missing and the process is root, Debian's
``chromium`` and ``chromium-driver`` packages are installed with ``apt-get`` first. When
neither works the tests that need a browser error with the reason and the command to run:
they are never skipped.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChromiumBinaries", "ChromiumUnavailableError", "locate_chromium"]

INSTALL_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("apt-get", "update", "-q"),
    (
        *("apt-get", "install", "-y", "-q", "--no-install-recommends"),
        *("-o", "DPkg::Lock::Timeout=300", "chromium", "chromium-driver"),
    ),
)
INSTALL_HINT = (
    "install Chromium and its WebDriver (Debian/Ubuntu, as root: apt-get update && "
    "apt-get install -y --no-install-recommends chromium chromium-driver), or point "
    "PROVARA_CHROMIUM and PROVARA_CHROMEDRIVER at a browser and its matching chromedriver"
)
_TAIL_LINES = 30

logger = logging.getLogger(__name__)

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class ChromiumUnavailableError(RuntimeError):
    """Chromium or chromedriver cannot be found or installed; the message says why."""


@dataclass(frozen=True, slots=True)
class ChromiumBinaries:
    """Where the browser and its driver are."""

    browser: Path
    driver: Path


def _find(env: str, names: tuple[str, ...]) -> Path | None:
    explicit = os.environ.get(env, "").strip()
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ChromiumUnavailableError(f"{env}={explicit} is not an executable file")
        return path
    for name in names:
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    return None


def find_chromium() -> ChromiumBinaries | None:
    """The browser and driver from the environment variables or ``PATH``; ``None`` when
    either is missing."""
    browser = _find("PROVARA_CHROMIUM", ("chromium", "chromium-browser"))
    driver = _find("PROVARA_CHROMEDRIVER", ("chromedriver",))
    if browser is None or driver is None:
        return None
    return ChromiumBinaries(browser=browser, driver=driver)


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_TAIL_LINES:])


def install_chromium(run: Runner = subprocess.run) -> None:
    """``apt-get update``, then install Debian's ``chromium`` and ``chromium-driver``."""
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailableError(
            f"Chromium is not installed and there is no apt-get: {INSTALL_HINT}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    logger.warning(
        "Chromium not found; installing Debian's chromium and chromium-driver: %s",
        " && ".join(" ".join(command) for command in INSTALL_COMMANDS),
    )
    for command in INSTALL_COMMANDS:
        done = run(list(command), env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stdout or "") + (done.stderr or "")
            raise ChromiumUnavailableError(
                f"{' '.join(command)} failed (exit {done.returncode}):\n{_tail(output)}\n"
                f"{INSTALL_HINT}"
            )


def locate_chromium(run: Runner = subprocess.run) -> ChromiumBinaries:
    """The binaries; installs them first when missing and we are root."""
    found = find_chromium()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise ChromiumUnavailableError(
            f"Chromium is not installed, and installing it needs root: {INSTALL_HINT}"
        )
    install_chromium(run)
    found = find_chromium()
    if found is None:
        raise ChromiumUnavailableError(
            "installed Debian's chromium and chromium-driver packages but found no "
            f"chromium and chromedriver on PATH: {INSTALL_HINT}"
        )
    return found
