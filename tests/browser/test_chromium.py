"""Chromium for the browser tests: found on PATH, installed with apt as root, else an
error that says how to install it (never a skip)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import (
    INSTALL_COMMANDS,
    ChromiumBinaries,
    ChromiumUnavailableError,
    locate_chromium,
)


def executable(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


class _Apt:
    """A stand-in for apt-get: records the commands; a successful install puts the two
    binaries in ``target``."""

    def __init__(self, target: Path, *, returncode: int = 0, output: str = "") -> None:
        self.target = target
        self.returncode = returncode
        self.output = output
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((command, kwargs["env"]))
        if self.returncode == 0 and "install" in command:
            executable(self.target, "chromium")
            executable(self.target, "chromedriver")
        return subprocess.CompletedProcess(command, self.returncode, self.output, "")


@pytest.fixture
def bare_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH is one empty folder, the variables are unset, we are root and apt-get exists."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    monkeypatch.delenv("PROVARA_CHROMIUM", raising=False)
    monkeypatch.delenv("PROVARA_CHROMEDRIVER", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    which = shutil.which
    monkeypatch.setattr(
        shutil,
        "which",
        lambda name, *a, **k: "/usr/bin/apt-get" if name == "apt-get" else which(name, *a, **k),
    )
    return folder


def test_binaries_on_path_are_used_without_installing(bare_path: Path) -> None:
    browser, driver = executable(bare_path, "chromium"), executable(bare_path, "chromedriver")
    apt = _Apt(bare_path)
    assert locate_chromium(run=apt) == ChromiumBinaries(browser=browser, driver=driver)
    assert apt.calls == []


def test_the_variables_name_the_binaries(
    bare_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = executable(tmp_path, "my-chrome")
    driver = executable(tmp_path, "my-driver")
    monkeypatch.setenv("PROVARA_CHROMIUM", str(browser))
    monkeypatch.setenv("PROVARA_CHROMEDRIVER", str(driver))
    assert locate_chromium(run=_Apt(bare_path)) == ChromiumBinaries(browser, driver)
    monkeypatch.setenv("PROVARA_CHROMEDRIVER", str(tmp_path / "absent"))
    with pytest.raises(ChromiumUnavailableError, match="is not an executable file"):
        locate_chromium(run=_Apt(bare_path))


def test_missing_chromium_is_installed_with_apt_as_root(
    bare_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    executable(bare_path, "chromium")  # a browser without its driver is not enough
    apt = _Apt(bare_path)
    with caplog.at_level(logging.WARNING):
        found = locate_chromium(run=apt)
    assert found == ChromiumBinaries(bare_path / "chromium", bare_path / "chromedriver")
    assert [command for command, _ in apt.calls] == [list(c) for c in INSTALL_COMMANDS]
    assert apt.calls[1][0][-2:] == ["chromium", "chromium-driver"]
    assert all(env["DEBIAN_FRONTEND"] == "noninteractive" for _, env in apt.calls)
    assert "installing Debian's chromium and chromium-driver" in caplog.text


def test_a_failed_install_says_why(bare_path: Path) -> None:
    apt = _Apt(bare_path, returncode=100, output="E: Unable to locate package chromium")
    with pytest.raises(ChromiumUnavailableError) as raised:
        locate_chromium(run=apt)
    message = str(raised.value)
    assert "apt-get update -q failed (exit 100)" in message
    assert "Unable to locate package chromium" in message
    assert "apt-get install -y --no-install-recommends chromium chromium-driver" in message


def test_an_install_that_finds_nothing_says_so(bare_path: Path) -> None:
    def apt(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 0, "", "")

    with pytest.raises(ChromiumUnavailableError, match="found no chromium and chromedriver"):
        locate_chromium(run=apt)


def test_without_root_or_apt_it_says_how_to_install(
    bare_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apt = _Apt(bare_path)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ChromiumUnavailableError, match="needs root"):
        locate_chromium(run=apt)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(ChromiumUnavailableError, match="there is no apt-get"):
        locate_chromium(run=apt)
    assert apt.calls == []
