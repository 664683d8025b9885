"""The README's newcomer path, run as printed: its code blocks are read from README.md here,
so the README and these tests cannot drift apart.

Path A: the registering module and the verify snippet against an API on loopback; the
gateway's console script importing that module from the working directory, and refusing
one that cannot be imported before it makes a key, a tenant or a token.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cookiecutter.project import clean_environment, free_port, serve_api

README = Path(__file__).resolve().parents[1] / "README.md"
KEY = "sk-acme-newcomer-5c1d8e2f"
GATEWAY = Path(sys.executable).parent / "provara-gateway"


def section(title: str) -> str:
    """The text of the README section whose ``## `` heading starts with ``title``."""
    text = README.read_text(encoding="utf-8")
    (body,) = re.findall(rf"^## {re.escape(title)}.*?\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return str(body)


def blocks(title: str, language: str) -> list[str]:
    """The ``language`` code blocks of a README section, in order."""
    return re.findall(rf"```{language}\n(.*?)```", section(title), flags=re.S)


def bash_lines(title: str, containing: str) -> list[str]:
    """The commands (comments dropped) of a section's bash blocks that contain a string."""
    lines = [line.split("  #")[0].strip() for b in blocks(title, "bash") for line in b.splitlines()]
    return [line for line in lines if containing in line]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A user's directory holding Path A's module, ``my_providers.py``, as printed."""
    registering, _verify = blocks("Path A", "python")
    (tmp_path / "my_providers.py").write_text(registering, encoding="utf-8")
    return tmp_path


@pytest.fixture
def acme_api() -> Iterator[str]:
    with serve_api("openai-chat", api_key=KEY, models=["acme-large"]) as base_url:
        yield base_url


def test_the_path_a_module_is_the_one_the_readme_names() -> None:
    text = section("Path A")
    assert "`my_providers.py`" in text and "PROVARA_PROVIDER_MODULES=my_providers" in text
    _registering, verify = blocks("Path A", "python")
    assert "import my_providers" in verify and 'registry.create("acme")' in verify


def test_the_verify_snippet_runs_as_printed(workdir: Path, acme_api: str) -> None:
    _registering, verify = blocks("Path A", "python")
    (workdir / "verify.py").write_text(verify, encoding="utf-8")
    env = clean_environment(ACME_API_KEY=KEY, ACME_BASE_URL=acme_api)
    done = subprocess.run(
        [sys.executable, "verify.py"], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "'provider': 'acme'" in done.stdout and "'priced': True" in done.stdout
    assert "TextDelta(text='Hi')" in done.stdout  # the loopback API echoes the prompt
    assert "ProvaraMeta(provider='acme'" in done.stdout.splitlines()[-1]  # the stream's, last


def _serve(workdir: Path, port: int, **env: str) -> subprocess.Popen[str]:
    command = [str(GATEWAY), "serve", "--dev", "--port", str(port), "--no-access-log"]
    return subprocess.Popen(
        command,
        cwd=workdir,
        env=clean_environment(PROVARA_DISCOVER_MODELS="0", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_gateway_imports_the_module_from_the_working_directory(
    workdir: Path, acme_api: str
) -> None:
    """``PROVARA_PROVIDER_MODULES=my_providers provara-gateway serve``: no PYTHONPATH."""
    port = free_port()
    process = _serve(
        workdir,
        port,
        PROVARA_PROVIDER_MODULES="my_providers",
        ACME_API_KEY=KEY,
        ACME_BASE_URL=acme_api,
    )
    try:
        assert process.stderr is not None
        token, deadline = None, time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            if "export TOKEN=" in line:
                token = line.split("export TOKEN=")[1].strip()
        assert token is not None, process.stderr.read() if process.poll() is not None else ""
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            while True:
                try:
                    models = http.get("/v1/models")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the gateway did not answer"
                    time.sleep(0.05)
        assert "acme/acme-large" in {model["id"] for model in models.json()["data"]}
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=15)
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("my_provider", None, "'my_provider', which is not importable from"),
        ("my_providers", "register(\n", "failed to import: SyntaxError"),
        ("my_providers", "x = 1\nundefined_name\n", "NameError: name 'undefined_name'"),
    ],
    ids=["misspelt", "syntax-error", "raises"],
)
def test_a_module_that_cannot_be_imported_stops_the_gateway_before_anything_is_made(
    workdir: Path, module: str, source: str | None, expected: str
) -> None:
    if source is not None:
        (workdir / "my_providers.py").write_text(source, encoding="utf-8")
    process = _serve(workdir, free_port(), PROVARA_PROVIDER_MODULES=module)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2, err
    assert expected in err and "PROVARA_PROVIDER_MODULES" in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "TOKEN" not in err + out
    assert sorted(p.name for p in workdir.iterdir()) == ["my_providers.py"]  # no key, no db


def test_the_conformance_command_is_printed_for_a_path_a_provider() -> None:
    """The command itself runs in tests/cookiecutter/test_newcomer_nox.py."""
    (line,) = bash_lines("Path A", "PROVARA_PROVIDER_MODULES=")
    assert shlex.split(line) == [
        "PROVARA_PROVIDER_MODULES=my_providers",
        *("nox", "-s", "conformance", "--", "acme"),
    ]


def test_the_quick_start_says_how_to_install_the_kit() -> None:
    """From a checkout, as printed (the install itself is what tests/cookiecutter do)."""
    (install,) = bash_lines("Quick start", "pip install -e")
    assert shlex.split(install) == ["pip", "install", "-e", ".[gateway]"]
