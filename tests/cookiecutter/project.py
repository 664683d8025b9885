"""Generate adapter packages from ``cookiecutter-provider`` and give them a virtualenv.

Paths come from this file and ``sys.executable``, never from where the checkout happens to
live, so the tests run the same from a fresh clone under ``nox -s tests``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

from provara_kit.testing import ScriptedUpstream
from provara_kit.testing.upstream import RecordedRequest, ScriptedResponse

KIT = Path(__file__).resolve().parents[2]
TEMPLATE = KIT / "cookiecutter-provider"
SHAPES = ("anthropic-messages", "openai-chat", "ollama-chat")
WIRE_SUFFIXES = {"anthropic-messages": "messages", "openai-chat": "chat", "ollama-chat": "ndjson"}
"""Each shape's suffix of the generated adapter's wire name (``<slug>-<suffix>``)."""


def generate(folder: Path, template: Path = TEMPLATE, /, **answers: str) -> Path:
    """Generate a package from ``template`` into ``folder`` with ``answers`` (defaults for
    the rest)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "cookiecutter-config.yaml"
    config.write_text(
        f"cookiecutters_dir: {json.dumps(str(folder / '.cookiecutters'))}\n"
        f"replay_dir: {json.dumps(str(folder / '.cookiecutter-replay'))}\n",
        encoding="utf-8",
    )
    return Path(
        cookiecutter(
            str(template),
            no_input=True,
            extra_context=answers,
            output_dir=str(folder),
            config_file=str(config),
        )
    )


def uv_binary() -> str:
    """The ``uv`` executable of the test environment (``uv`` is in the ``test`` extra)."""
    try:
        from uv import find_uv_bin
    except ImportError:
        pytest.skip("uv is not installed: install provara-kit's test extra")
    return str(find_uv_bin())


@dataclass
class Venv:
    """A fresh virtualenv made by uv, with provara-kit from this checkout installed."""

    path: Path
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, path: Path) -> Venv:
        venv = cls(path)
        with venv.timed("venv"):
            venv.uv("venv", "--quiet", "--python", sys.executable, str(path))
        return venv

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def uv(self, *args: str) -> None:
        env = {**os.environ, "VIRTUAL_ENV": str(self.path)}
        env.pop("PYTHONPATH", None)
        _run([uv_binary(), *args], env=env)

    def install(self, *requirements: str) -> None:
        self.uv("pip", "install", "--quiet", "--python", self.python, *requirements)

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        """Run ``args`` (``python`` is this venv's) in ``cwd``; never raises on failure."""
        command = [self.python if args[0] == "python" else args[0], *args[1:]]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        environment.pop("PYTHONPATH", None)
        environment.pop("VIRTUAL_ENV", None)
        environment.update(env or {})
        started = time.perf_counter()
        done = subprocess.run(
            command, cwd=cwd, env=environment, capture_output=True, text=True, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)

    def timed(self, label: str) -> _Timer:
        return _Timer(self.timings, label)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def report_statuses(report_json: Path) -> dict[str, str]:
    """check id -> status, from a conformance report with one target."""
    data: dict[str, Any] = json.loads(report_json.read_text(encoding="utf-8"))
    (target,) = data["targets"]
    return {row["id"]: row["status"] for row in target["checks"]}


class _Timer:
    def __init__(self, timings: dict[str, float], label: str) -> None:
        self.timings, self.label = timings, label

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.label] = time.perf_counter() - self.started


class _ModelCheckingUpstream(ScriptedUpstream):
    """A scripted upstream that answers 404 for a model it does not serve, as real APIs do."""

    def _completion(self, recorded: RecordedRequest) -> ScriptedResponse:
        view = recorded.view
        model = view.get("model") if isinstance(view, dict) else None
        if self.models is not None and model not in self.models:
            return self._error(404, f"model {model!r} not found")
        return super()._completion(recorded)


BASE_PATHS = {"ollama-chat": "/ollama"}
"""Where the loopback API of each wire lives on its host: under ``/v1``, or an Ollama-shaped
one behind a proxy's ``/ollama`` prefix. The generated Ollama-shaped package defaults to a
server at the root, so its walkthrough records under a base URL of its own, as with
``<NAME>_BASE_URL`` set, and replays at the default."""


@contextmanager
def serve_api(wire: str, *, api_key: str, models: Sequence[str]) -> Iterator[str]:
    """An API speaking ``wire`` over real HTTP on loopback (it echoes the last user message);
    yields its base URL."""
    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn comes with the gateway extra")
    upstream = _ModelCheckingUpstream(wire, reply=None, models=models, expected_api_key=api_key)
    config = uvicorn.Config(upstream, http="h11", ws="none", lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{BASE_PATHS.get(wire, '/v1')}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def _run(command: list[str], *, env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


# --- processes run from a generated package's virtualenv (the gateway test) ---------------

UPSTREAM_SCRIPT = """\
import os, socket, sys

import uvicorn

from conformance.target import resolve_dialect
from provara_kit.testing import ScriptedUpstream

wire, port_file, *models = sys.argv[1:]
upstream = ScriptedUpstream(
    resolve_dialect(wire), reply=None, models=models, expected_api_key=os.environ["UPSTREAM_KEY"]
)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
with open(port_file + ".tmp", "w") as file:
    file.write(str(listener.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
config = uvicorn.Config(upstream, http="h11", ws="none", lifespan="on", log_level="warning")
uvicorn.Server(config).run(sockets=[listener])
"""
"""Serves ``ScriptedUpstream`` (echoing the last user message) in the dialect named
``argv[1]`` on a free loopback port, which it writes to the file ``argv[2]``."""


def free_port() -> int:
    """A loopback port free right now (the caller retries if another process takes it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without test, virtualenv and provider settings (no
    ``*_API_KEY``, ``*_BASE_URL`` or ``PROVARA_*``), plus ``extra``."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "PROVARA_"))
        and not k.endswith(("_API_KEY", "_BASE_URL"))
        and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    environment.update(extra)
    return environment


class Service:
    """A long-running subprocess with its output in a log file; stopped on exit."""

    def __init__(self, command: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path):
        self.log = log
        self._file = log.open("wb")
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self._file.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_until(self, ready: Any, *, what: str, timeout: float = 30.0) -> Any:
        """Poll ``ready()`` until it returns something truthy (raises or returns falsy
        meanwhile); fail with the log if the process exits or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = ready()
            except Exception:  # not up yet
                result = None
            if result:
                return result
            if not self.alive():
                raise RuntimeError(f"{what} exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._file.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
