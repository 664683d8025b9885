"""The servers under test, as real subprocesses: the reference gateway and LiteLLM's proxy.

Each :class:`Server` knows its URL, the request body and headers a client sends it, and
its process (for peak RSS). :func:`start_gateway` and :func:`start_litellm` return one
that answers, or raise :class:`Unavailable` with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.upstream import MODEL, Upstream

__all__ = ["Server", "Unavailable", "peak_rss_mb", "start_gateway", "start_litellm"]

_BIN = Path(sys.executable).parent
_ROOT = Path(__file__).resolve().parent.parent
_MESSAGES = '[{"role":"user","content":"Say hello."}]'


class Unavailable(Exception):
    """A server could not be installed or started; the message says why."""


@dataclass
class Server:
    """A target: ``url`` of its chat completions endpoint and what each request sends."""

    name: str
    url: str
    stream_url: str
    headers: dict[str, str]
    models: tuple[str, str]  # (completion model, stream model)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def body(self, stream: bool) -> str:
        model = self.models[stream]
        flag = "true" if stream else "false"
        return f'{{"model":"{model}","messages":{_MESSAGES},"stream":{flag}}}'

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise Unavailable(f"exited with status {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    process.terminate()
    raise Unavailable(f"not ready at {url} after {seconds:.0f} s; see {log}")


def _pids(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn workers)."""
    pids = [pid]
    for child in Path("/proc").glob(f"{pid}/task/*/children"):
        try:
            pids += [p for c in child.read_text().split() for p in _pids(int(c))]
        except OSError:
            continue
    return pids


def peak_rss_mb(process: subprocess.Popen[bytes] | None) -> float | None:
    """Peak resident memory (VmHWM) of the process and its children, in MB."""
    if process is None or process.poll() is not None:
        return None
    total = 0
    for pid in _pids(process.pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def start_gateway(upstream: Upstream, workdir: Path, port: int, workers: int = 1) -> Server:
    """``provara-gateway serve`` with the bench's mock providers and one tenant."""
    from provara_kit.vault import generate_master_key

    workdir.mkdir(parents=True, exist_ok=True)
    database = str(workdir / "gateway.db")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
        "PROVARA_MASTER_KEY": generate_master_key(),
        "PROVARA_PROVIDER_MODULES": "bench.provider",
        "PROVARA_DISCOVER_MODELS": "0",
        "PROVARA_LOCAL_UPSTREAM": "0",
        "MOCK_API_KEY": "sk-bench-operator",
        "MOCK_BASE_URL": upstream.base_url(stream=False),
        "MOCKSTREAM_API_KEY": "sk-bench-operator",
        "MOCKSTREAM_BASE_URL": upstream.base_url(stream=True),
    }
    command = str(_BIN / "provara-gateway")
    created = subprocess.run(
        [command, "tenants", "create", "bench", "--database", database],
        env=env,
        capture_output=True,
        text=True,
    )
    if created.returncode != 0:
        raise Unavailable(f"tenants create failed: {created.stderr.strip()}")
    token = created.stdout.strip().splitlines()[-1]
    log = workdir / "gateway.log"
    args = [command, "serve", "--port", str(port), "--database", database, "--no-access-log"]
    if workers != 1:
        args += ["--workers", str(workers)]
    process = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115
    )
    _wait_ready(f"http://127.0.0.1:{port}/healthz", process, log, 30)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Server(
        name="gateway",
        url=url,
        stream_url=url,
        headers={"Authorization": f"Bearer {token}"},
        models=(f"mock/{MODEL}", f"mockstream/{MODEL}"),
        process=process,
        log=log,
        extra={"workers": str(workers)},
    )


_LITELLM_CONFIG = """\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/{model}
      api_base: {base}
      api_key: sk-bench-operator
  - model_name: bench-stream
    litellm_params:
      model: openai/{model}
      api_base: {stream_base}
      api_key: sk-bench-operator
litellm_settings:
  drop_params: true
  telemetry: false
general_settings:
  master_key: sk-litellm-bench
"""


def litellm_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("litellm")
    except Exception:
        return None


def start_litellm(upstream: Upstream, workdir: Path, port: int) -> Server:
    """``litellm --config ... --port ...`` routing both models to the mock upstream."""
    command = _BIN / "litellm"
    if not command.exists():
        found = shutil.which("litellm")
        if found is None:
            install_log = os.environ.get("BENCH_LITELLM_INSTALL_LOG")
            reason = "litellm is not installed in this environment"
            if install_log and Path(install_log).is_file():
                errors = [
                    line for line in Path(install_log).read_text().splitlines() if "ERROR" in line
                ]
                if errors:
                    reason += ": " + errors[-1][:300]
            raise Unavailable(reason)
        command = Path(found)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "litellm.yaml"
    config.write_text(
        _LITELLM_CONFIG.format(
            model=MODEL,
            base=upstream.base_url(stream=False),
            stream_base=upstream.base_url(stream=True),
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    log = workdir / "litellm.log"
    process = subprocess.Popen(
        [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    _wait_ready(f"http://127.0.0.1:{port}/health/liveliness", process, log, 120)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Server(
        name="litellm",
        url=url,
        stream_url=url,
        headers={"Authorization": "Bearer sk-litellm-bench"},
        models=("bench-model", "bench-stream"),
        process=process,
        log=log,
        extra={"version": litellm_version() or "?"},
    )


def direct(upstream: Upstream) -> Server:
    """The upstream itself: the floor every proxy's latency is measured against."""
    return Server(
        name="direct",
        url=upstream.base_url(stream=False) + "/chat/completions",
        stream_url=upstream.base_url(stream=True) + "/chat/completions",
        headers={},
        models=(MODEL, MODEL),
    )
