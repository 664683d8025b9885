"""The servers under test, as real subprocesses: the reference gateway and LiteLLM's proxy.

Each :class:`Server` knows its URL, the request body and headers a client sends it, its
process (for peak RSS) and, in one line, what it does for each request. :func:`start_gateway`
and :func:`start_litellm` return one that answers, or raise :class:`Unavailable` with the
reason (Portkey's gateway is in :mod:`bench.portkey`).
"""

from __future__ import annotations

import json
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

__all__ = [
    "Server",
    "Unavailable",
    "peak_rss_mb",
    "start_gateway",
    "start_litellm",
    "wait_ready",
]

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
    stream_headers: dict[str, str] | None = None  # when streams need other headers
    features: str = ""

    def request_headers(self, stream: bool) -> dict[str, str]:
        if stream and self.stream_headers is not None:
            return self.stream_headers
        return self.headers

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


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    """Return once ``url`` answers 200; :class:`Unavailable` (with the log's tail) if the
    process exits or ``seconds`` pass first."""
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


def cpu_seconds(process: subprocess.Popen[bytes] | None) -> float | None:
    """CPU time (user and system) the process and its children have used, in seconds."""
    if process is None or process.poll() is not None:
        return None
    ticks = 0
    for pid in _pids(process.pid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _store_key(port: int, token: str, name: str, value: str) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/provider-keys",
        data=json.dumps({"name": name, "value": value}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise Unavailable(f"storing {name} failed: HTTP {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unavailable(f"storing {name} failed: {exc}") from None


def start_gateway(
    upstream: Upstream,
    workdir: Path,
    port: int,
    *,
    name: str = "gateway",
    workers: int = 1,
    database_url: str | None = None,
    durable: bool = True,
    telemetry: bool = True,
) -> Server:
    """``provara-gateway serve`` with the bench's mock providers and one tenant.

    Default settings unless asked otherwise: a SQLite file in ``workdir`` (or
    ``database_url``, set as ``PROVARA_DATABASE_URL``), durable usage (``durable=False``
    sets ``PROVARA_USAGE_DURABLE=0``), metrics and the request log on (``telemetry=False``
    sets ``PROVARA_METRICS=0`` and ``PROVARA_REQUEST_LOG=off``). The tenant stores its
    own provider keys through the API, so every request authenticates its token and goes
    through the stored-key path; the operator sets no provider key.
    """
    from provara_kit.vault import generate_master_key

    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PROVARA_") and not key.startswith("MOCK")
    }
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])),
        "PROVARA_MASTER_KEY": generate_master_key(),
        "PROVARA_PROVIDER_MODULES": "bench.provider",
        "PROVARA_DISCOVER_MODELS": "0",
        "PROVARA_LOCAL_UPSTREAM": "0",
        "MOCK_BASE_URL": upstream.base_url(stream=False),
        "MOCKSTREAM_BASE_URL": upstream.base_url(stream=True),
    }
    if not durable:
        env["PROVARA_USAGE_DURABLE"] = "0"
    if not telemetry:
        env |= {"PROVARA_METRICS": "0", "PROVARA_REQUEST_LOG": "off"}
    command = str(_BIN / "provara-gateway")
    store: list[str] = []
    if database_url is None:
        store = ["--database", str(workdir / "gateway.db")]
    else:
        env["PROVARA_DATABASE_URL"] = database_url
        upgraded = subprocess.run(
            [command, "db", "upgrade"], env=env, capture_output=True, text=True
        )
        if upgraded.returncode != 0:
            raise Unavailable(f"db upgrade failed: {upgraded.stderr.strip()[-500:]}")
    created = subprocess.run(
        [command, "tenants", "create", "bench", *store],
        env=env,
        capture_output=True,
        text=True,
    )
    if created.returncode != 0:
        raise Unavailable(f"tenants create failed: {created.stderr.strip()[-500:]}")
    token = created.stdout.strip().splitlines()[-1]
    log = workdir / "gateway.log"
    args = [command, "serve", "--port", str(port), *store, "--no-access-log"]
    if workers != 1:
        args += ["--workers", str(workers)]
    process = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115
    )
    server = Server(
        name=name,
        url=f"http://127.0.0.1:{port}/v1/chat/completions",
        stream_url=f"http://127.0.0.1:{port}/v1/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        models=(f"mock/{MODEL}", f"mockstream/{MODEL}"),
        process=process,
        log=log,
        extra={
            "workers": str(workers),
            "store": "sqlite" if database_url is None else "postgresql",
        },
        features=(
            f"provara-gateway serve, {workers} worker{'s' if workers != 1 else ''}, "
            f"{'SQLite' if database_url is None else 'PostgreSQL'}, "
            f"usage {'durable' if durable else 'batched (PROVARA_USAGE_DURABLE=0)'}, "
            f"{'metrics and request log on' if telemetry else 'no metrics, no request log'}; "
            "token auth, the tenant's stored (encrypted) provider keys, usage recorded"
        ),
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", process, log, 30)
        for key in ("MOCK_API_KEY", "MOCKSTREAM_API_KEY"):
            _store_key(port, token, key, "sk-bench-operator")
    except Unavailable:
        server.stop()
        raise
    return server


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
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness", process, log, 120)
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
        features=(
            f"LiteLLM proxy {litellm_version() or '?'}: master-key auth, provider keys in its "
            "config file, no database (no usage rows)"
        ),
    )


def direct(upstream: Upstream) -> Server:
    """The upstream itself: the floor every proxy's latency is measured against."""
    return Server(
        name="direct",
        url=upstream.base_url(stream=False) + "/chat/completions",
        stream_url=upstream.base_url(stream=True) + "/chat/completions",
        headers={},
        models=(MODEL, MODEL),
        features="nginx itself, the floor every +p50 is measured from",
    )
