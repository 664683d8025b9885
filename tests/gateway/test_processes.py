"""Gateway processes on one database behave as one gateway, and a killed gateway loses no
acknowledged usage: the real ``provara-gateway`` CLI in subprocesses, on SQLite and on
PostgreSQL.

* Two ``serve`` processes, and one ``serve --workers 2``: a tenant created with the CLI is
  served by all of them; a provider key stored through one process is used by the other
  within a bound, and so is its deletion; ``tenants revoke`` shuts the tenant out of all of
  them. The bound is :data:`PROPAGATION_BOUND` (the contract is one second) and the
  observed delays are printed.
* ``SIGKILL`` under load: every completion acknowledged to a client (a 200 with its whole
  body, or a stream that ended with ``data: [DONE]``) has its usage row after the restart.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from provara_kit.vault import generate_master_key
from tests.gateway.test_path_a import UPSTREAM_KEY, Upstream

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="tells worker processes apart through /proc"
)

# How long a change may take to reach another process before the test fails; the contract
# is one second, the rest is slack for a loaded machine.
PROPAGATION_BOUND = 3.0
START_TIMEOUT = 60.0
PROVIDER = "procacme"
MODEL = f"{PROVIDER}/{PROVIDER}-large"
KEY_NAME = "PROCACME_API_KEY"
UPSTREAM_TEXT = "Verified through the gateway"  # what Upstream answers

PROVIDER_MODULE = f"""
from provara_kit.registry import register_openai_compatible

register_openai_compatible(
    name={PROVIDER!r},
    api_key_env={KEY_NAME!r},
    base_url_env="PROCACME_BASE_URL",
    default_base_url="http://127.0.0.1:9/v1",
    default_models=({PROVIDER + "-large"!r},),
)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    """What every gateway process of a test shares: database, master key, environment."""

    workdir: Path
    database_url: str
    master_key: str = field(default_factory=generate_master_key, repr=False)
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVARA_")}
        env.update(
            PROVARA_MASTER_KEY=self.master_key,
            PROVARA_DATABASE_URL=self.database_url,
            PROVARA_DISCOVER_MODELS="0",
            **self.extra_env,
        )
        return env

    def cli(self, *args: str) -> str:
        """``provara-gateway ARGS --database URL``; its standard output."""
        done = subprocess.run(
            [sys.executable, "-m", "reference_gateway.cli", *args, "--database", self.database_url],
            cwd=self.workdir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"provara-gateway {' '.join(args)}: {done.stderr}"
        return done.stdout

    def create_tenant(self, name: str) -> str:
        return self.cli("tenants", "create", name).strip()


class GatewayProcess:
    """``provara-gateway serve`` on a free loopback port, in its own process group."""

    _numbers = itertools.count()

    def __init__(self, cluster: Cluster, *serve_args: str) -> None:
        self.cluster = cluster
        self.serve_args = serve_args
        self.log = cluster.workdir / f"gateway-{next(self._numbers)}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> GatewayProcess:
        for _ in range(3):  # another program may take the free port before the gateway does
            if self._start_on(_free_port()):
                return self
        raise RuntimeError(f"no free port for the gateway:\n{_tail(self.log)}")

    def _start_on(self, port: int) -> bool:
        self.port = port
        with self.log.open("ab") as log:
            offset = log.tell()
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "reference_gateway.cli", "serve"),
                    *("--port", str(port), "--no-access-log", *self.serve_args),
                ],
                cwd=self.cluster.workdir,
                env=self.cluster.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=5) as client:
            while True:
                if self.process.poll() is not None:
                    output = self.log.read_bytes()[offset:].decode("utf-8", "replace")
                    if "address already in use" in output.lower():
                        return False
                    raise RuntimeError(
                        f"the gateway exited with code {self.process.returncode}:\n"
                        f"{_tail(self.log)}"
                    )
                try:
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"the gateway did not answer /healthz:\n{_tail(self.log)}")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, to the whole process group (workers included)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGINT (a clean shutdown), then SIGKILL to whatever is left of the group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        self.kill()
        self.process = None

    def children(self) -> set[int]:
        """The processes started by this one, from ``/proc``."""
        children: set[int] = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                children.add(int(stat.parent.name))
        return children

    def worker_pids(self) -> set[int]:
        """The ``--workers`` processes (multiprocessing's resource tracker is a child too)."""
        workers = set()
        for pid in self.children():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                workers.add(pid)
        return workers


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def cluster(tmp_path: Path, database_url: str, upstream: Upstream) -> Cluster:
    """A keyed provider (``procacme``) whose upstream wants :data:`UPSTREAM_KEY`; no
    operator key for it, so only a tenant's stored key serves it."""
    (tmp_path / "procacme_provider.py").write_text(PROVIDER_MODULE, encoding="utf-8")
    return Cluster(
        tmp_path,
        database_url,
        extra_env={
            "PROVARA_PROVIDER_MODULES": "procacme_provider",
            "PROCACME_BASE_URL": upstream.url,
        },
    )


@pytest.fixture
def gateways(cluster: Cluster) -> Iterator[Callable[..., GatewayProcess]]:
    """Starts ``serve`` processes; all are stopped after the test, whatever happened."""
    started: list[GatewayProcess] = []

    def start(*serve_args: str) -> GatewayProcess:
        gateway = GatewayProcess(cluster, *serve_args)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


# Requests that always reach one given process.


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server side of the loopback connection between the two ports."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    return None


def _holder(pids: set[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if target in links:
            return pid
    return None


@dataclass
class Reply:
    status: int
    body: dict[str, Any]

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error")
        return error.get("code") if isinstance(error, dict) else None


class ProcessClient:
    """HTTP/1.1 keep-alive requests to a gateway's port that always reach ``pid``: a
    connection is kept only once ``/proc`` shows that process accepted it."""

    def __init__(self, gateway: GatewayProcess, pid: int, token: str) -> None:
        self.gateway = gateway
        self.pid = pid
        self.token = token
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is not None and self._conn.sock is not None:
            return self._conn
        pids = {self.gateway.pid, *self.gateway.children()}
        for _ in range(200):
            conn = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=10)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            assert conn.sock is not None
            inode = _server_socket_inode(self.gateway.port, conn.sock.getsockname()[1])
            if inode is not None and _holder(pids, inode) == self.pid:
                self._conn = conn
                return conn
            conn.close()
        raise AssertionError(f"process {self.pid} never accepted one of 200 connections")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Reply:
        headers = {"authorization": f"Bearer {self.token}"}
        payload = None if body is None else json.dumps(body).encode()
        if payload is not None:
            headers["content-type"] = "application/json"
        reused = self._conn is not None
        conn = self._connection()
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            # The server closed the idle keep-alive connection before this request.
            self.close()
            conn = self._connection()
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
        data = response.read()
        if response.will_close:
            self.close()
        return Reply(response.status, json.loads(data) if data else {})

    def chat(self, model: str = MODEL) -> Reply:
        message = {"role": "user", "content": "hi"}
        return self.request("POST", "/v1/chat/completions", {"model": model, "messages": [message]})


def _uses_key(reply: Reply) -> bool:
    if reply.status == 200:
        assert reply.body["choices"][0]["message"]["content"] == UPSTREAM_TEXT
        return True
    assert reply.error_code == "provider_key_missing", reply
    return False


def _wait_for(what: str, check: Callable[[], bool]) -> float:
    """Seconds until ``check()`` holds, polled; fails after :data:`PROPAGATION_BOUND`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > PROPAGATION_BOUND:
            raise AssertionError(f"{what}: not seen within {PROPAGATION_BOUND} s")
        time.sleep(0.02)
    delay = time.monotonic() - started
    print(f"{what}: {delay * 1000:.0f} ms")
    return delay


def _check_changes_reach(first: ProcessClient, second: ProcessClient, cluster: Cluster) -> None:
    """The key and tenant checks, between two processes of one gateway."""
    assert first.chat("local/echo").status == 200
    assert second.chat("local/echo").status == 200
    # Both have looked for the tenant's key, and found none.
    assert not _uses_key(first.chat())
    assert not _uses_key(second.chat())

    stored = first.request("POST", "/api/provider-keys", {"name": KEY_NAME, "value": UPSTREAM_KEY})
    assert stored.status == 201, stored
    assert _uses_key(first.chat())
    _wait_for("key stored through one process, used by the other", lambda: _uses_key(second.chat()))

    deleted = second.request("DELETE", f"/api/provider-keys/{KEY_NAME}")
    assert deleted.status == 200, deleted
    assert not _uses_key(second.chat())
    _wait_for(
        "key deleted through one process, gone from the other", lambda: not _uses_key(first.chat())
    )

    cluster.cli("tenants", "revoke", "ops")
    for client in (first, second):
        _wait_for(f"tenant revoked, refused by process {client.pid}", _refused(client))


def _refused(client: ProcessClient) -> Callable[[], bool]:
    return lambda: client.chat("local/echo").status == 401


def test_two_processes_on_one_database_behave_as_one_gateway(
    cluster: Cluster, gateways: Callable[..., GatewayProcess]
) -> None:
    one, two = gateways(), gateways()
    token = cluster.create_tenant("ops")
    first = ProcessClient(one, one.pid, token)
    second = ProcessClient(two, two.pid, token)
    try:
        _check_changes_reach(first, second, cluster)
    finally:
        first.close()
        second.close()


def test_workers_of_one_process_behave_as_one_gateway(
    cluster: Cluster, gateways: Callable[..., GatewayProcess]
) -> None:
    gateway = gateways("--workers", "2")
    token = cluster.create_tenant("ops")
    deadline = time.monotonic() + START_TIMEOUT
    while len(gateway.worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = sorted(gateway.worker_pids())
    assert len(workers) == 2, f"expected 2 worker processes, found {workers}"
    first = ProcessClient(gateway, workers[0], token)
    second = ProcessClient(gateway, workers[1], token)
    try:
        _check_changes_reach(first, second, cluster)
    finally:
        first.close()
        second.close()


# SIGKILL under load.

LOAD_THREADS = 8
LOAD_BUDGET = 400  # requests at most, over all threads
KILL_AFTER = 100  # acknowledged completions before the SIGKILL


@dataclass
class Load:
    """Mixed streamed and plain ``local/echo`` completions from a few threads, each
    acknowledged completion's id kept."""

    url: str
    token: str
    acknowledged: set[str] = field(default_factory=set)
    streamed: int = 0  # of the acknowledged
    failed: int = 0
    sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self) -> int | None:
        with self.lock:
            if self.stop.is_set() or self.sent >= LOAD_BUDGET:
                return None
            self.sent += 1
            return self.sent

    def _one(self, client: httpx.Client, number: int) -> str | None:
        """The completion id if the gateway acknowledged the completion, else ``None``."""
        body = {
            "model": "local/echo",
            "messages": [{"role": "user", "content": f"request {number}"}],
            "stream": number % 2 == 0,
        }
        if not body["stream"]:
            reply = client.post("/v1/chat/completions", json=body)
            if reply.status_code != 200:
                return None
            completion = reply.json()
            assert completion["choices"][0]["message"]["content"] == f"request {number}"
            return str(completion["id"])
        ids: set[str] = set()
        with client.stream("POST", "/v1/chat/completions", json=body) as reply:
            if reply.status_code != 200:
                return None
            for line in reply.iter_lines():
                if line == "data: [DONE]":
                    assert len(ids) == 1, ids
                    return ids.pop()
                if line.startswith("data: "):
                    chunk = json.loads(line.removeprefix("data: "))
                    if "error" in chunk:
                        return None
                    ids.add(chunk["id"])
        return None

    def run(self) -> None:
        headers = {"authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while (number := self._next()) is not None:
                try:
                    completion_id = self._one(client, number)
                except (httpx.TransportError, json.JSONDecodeError):
                    completion_id = None
                with self.lock:
                    if completion_id is None:
                        self.failed += 1
                    else:
                        self.acknowledged.add(completion_id)
                        self.streamed += number % 2 == 0


def _usage_request_ids(database_url: str) -> set[str]:
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT request_id FROM usage")).scalars().all()
    finally:
        engine.dispose()
    return set(rows)


def _kill_under_load(
    cluster: Cluster, gateways: Callable[..., GatewayProcess]
) -> tuple[Load, set[str]]:
    """Load on a gateway, SIGKILL once :data:`KILL_AFTER` completions are acknowledged,
    restart it on the same database; returns the load and the usage rows' request ids."""
    gateway = gateways()
    load = Load(gateway.url, cluster.create_tenant("load"))
    threads = [threading.Thread(target=load.run, daemon=True) for _ in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(load.acknowledged) < KILL_AFTER and time.monotonic() < deadline:
        if not any(thread.is_alive() for thread in threads):
            break
        time.sleep(0.005)
    gateway.kill()
    load.stop.set()
    with load.lock:
        acknowledged, sent = len(load.acknowledged), load.sent
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert acknowledged >= KILL_AFTER, f"only {acknowledged} completions before the kill"
    assert sent < LOAD_BUDGET, "the load was over before the kill"
    assert 0 < load.streamed < len(load.acknowledged), "streamed and plain completions both"
    gateways()  # the restart: recovery runs before it answers
    rows = _usage_request_ids(cluster.database_url)
    lost = load.acknowledged - rows
    print(
        f"sent {load.sent}, acknowledged {len(load.acknowledged)} ({load.streamed} "
        f"streamed), failed or cut "
        f"{load.failed}, usage rows {len(rows)}, acknowledged without a row {len(lost)}"
    )
    return load, lost


def test_sigkill_loses_no_acknowledged_usage(
    cluster: Cluster, gateways: Callable[..., GatewayProcess]
) -> None:
    cluster.extra_env["PROVARA_USAGE_DURABLE"] = "1"
    _, lost = _kill_under_load(cluster, gateways)
    assert not lost, f"{len(lost)} acknowledged completions have no usage row"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigkill_check_catches_batched_usage(
    cluster: Cluster, gateways: Callable[..., GatewayProcess]
) -> None:
    """The check above can fail: with usage written in batches (a minute apart) the
    completions acknowledged since the last batch are lost."""
    cluster.extra_env.update(
        PROVARA_USAGE_DURABLE="0", PROVARA_USAGE_FLUSH_MS="60000", PROVARA_USAGE_FLUSH_ROWS="100000"
    )
    load, lost = _kill_under_load(cluster, gateways)
    assert lost and len(lost) <= len(load.acknowledged)
