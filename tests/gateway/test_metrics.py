"""Prometheus metrics: what each outcome counts (fed directly), labels that a client cannot
multiply, ``GET /metrics`` behind an operator token, the unauthenticated bind, and the
values of several processes added up (dead ones' gauges dropped)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from provara_kit.errors import ConfigurationError
from reference_gateway.config import Settings, parse_bind
from reference_gateway.operators import create_operator
from reference_gateway.outcome import Attempt, Outcome
from reference_gateway.store import connect
from reference_gateway.telemetry import Fanout
from reference_gateway.telemetry.bind import MetricsServer
from reference_gateway.telemetry.labels import UNKNOWN, ModelLabels, error_label
from reference_gateway.telemetry.metrics import Metrics, workers_registry
from reference_gateway.telemetry.workers import prepare_workers
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.test_processes import START_TIMEOUT, Cluster, GatewayProcess, ProcessClient

T0 = 1_750_000_000.0


class _Catalog:
    catalog_version = 1

    def provider_models(self) -> Mapping[str, tuple[str, ...]]:
        return {"local": ("echo",), "acme": ("acme-1", "acme-2")}


def attempt(model: str = "local/echo", **fields: object) -> Attempt:
    provider, _, name = model.partition("/")
    base = Attempt(
        index=0,
        provider=provider,
        model=name,
        stream=False,
        status=200,
        error=None,
        started=T0,
        latency_ms=20.0,
        ttft_ms=None,
        input_tokens=10,
        output_tokens=5,
        cost_usd=Decimal("0.0015"),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def outcome(*attempts: Attempt, **fields: object) -> Outcome:
    served = next((a.public_model for a in reversed(attempts) if a.ok), None)
    base = Outcome(
        request_id="chatcmpl-1",
        started=T0,
        latency_ms=25.0,
        status=200,
        error=None,
        stream=False,
        tenant_id="t_1",
        tenant="acme-corp",
        requested_model=served,
        served_model=served,
        attempts=tuple(replace(a, index=i) for i, a in enumerate(attempts)),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(ModelLabels(_Catalog(), ["acme/acme-3"]), usage_pending=lambda: 7)


SERVED_ECHO = {
    "tenant": "acme-corp",
    "provider": "local",
    "model": "echo",
    "status": "200",
    "stream": "false",
}
"""The request labels of :func:`outcome` around one served ``local/echo`` attempt."""


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_served_request_counts_once_with_its_tokens_cost_and_latency(metrics: Metrics) -> None:
    metrics.request_done(outcome(attempt(ttft_ms=8.0), ttft_ms=8.0))
    metrics.request_done(outcome(attempt(ttft_ms=8.0), ttft_ms=8.0, stream=True))

    common = {"tenant": "acme-corp", "provider": "local", "model": "echo", "status": "200"}
    assert value(metrics, "provara_requests_total", **common, stream="false") == 1
    assert value(metrics, "provara_requests_total", **common, stream="true") == 1
    model = {"tenant": "acme-corp", "provider": "local", "model": "echo"}
    assert value(metrics, "provara_tokens_total", **model, direction="input") == 20
    assert value(metrics, "provara_tokens_total", **model, direction="output") == 10
    assert value(metrics, "provara_cost_usd_total", **model) == pytest.approx(0.003)
    timing = {"provider": "local", "model": "echo", "stream": "false"}
    assert value(metrics, "provara_request_duration_seconds_count", **timing) == 1
    assert value(metrics, "provara_request_duration_seconds_sum", **timing) == 0.025
    assert value(metrics, "provara_request_duration_seconds_bucket", **timing, le="0.025") == 1
    assert value(metrics, "provara_request_duration_seconds_bucket", **timing, le="0.01") == 0
    assert value(metrics, "provara_time_to_first_token_seconds_sum", **timing) == 0.008
    attempts = {"provider": "local", "model": "echo", "status": "200", "error": ""}
    assert value(metrics, "provara_upstream_attempts_total", **attempts) == 2
    assert value(metrics, "provara_request_errors_total", error="", status="200") is None


def test_retries_fallbacks_and_every_attempts_tokens(metrics: Metrics) -> None:
    metrics.request_done(
        outcome(
            attempt(
                "acme/acme-1",
                status=429,
                error="rate_limited",
                input_tokens=0,
                output_tokens=0,
                cost_usd=None,
            ),
            attempt(
                "acme/acme-1",
                status=503,
                error="upstream_error",
                input_tokens=0,
                output_tokens=0,
                cost_usd=None,
            ),
            attempt(
                "acme/acme-2",
                status=529,
                error="overloaded",
                input_tokens=0,
                output_tokens=0,
                cost_usd=None,
            ),
            attempt("local/echo"),
            requested_model="acme/acme-1",
        )
    )
    assert (
        value(
            metrics, "provara_retries_total", provider="acme", model="acme-1", error="rate_limited"
        )
        == 1
    )
    assert (
        value(
            metrics,
            "provara_fallbacks_total",
            from_model="acme/acme-1",
            to_model="acme/acme-2",
            error="upstream_error",
        )
        == 1
    )
    assert (
        value(
            metrics,
            "provara_fallbacks_total",
            from_model="acme/acme-2",
            to_model="local/echo",
            error="overloaded",
        )
        == 1
    )
    for status, error, model in (
        ("429", "rate_limited", "acme-1"),
        ("503", "upstream_error", "acme-1"),
        ("529", "overloaded", "acme-2"),
    ):
        assert (
            value(
                metrics,
                "provara_upstream_attempts_total",
                provider="acme",
                model=model,
                status=status,
                error=error,
            )
            == 1
        )
    # The request is the served model's, and no error: it was answered.
    assert value(metrics, "provara_requests_total", **SERVED_ECHO) == 1
    assert (
        value(
            metrics,
            "provara_tokens_total",
            tenant="acme-corp",
            provider="acme",
            model="acme-1",
            direction="input",
        )
        is None
    )


def test_errors_by_code_and_status_before_any_attempt(metrics: Metrics) -> None:
    metrics.request_done(
        outcome(
            status=401, error="invalid_api_key", tenant=None, tenant_id=None, requested_model=None
        )
    )
    metrics.request_done(
        outcome(status=404, error="model_not_found", requested_model="gpt-client-typed-this")
    )
    assert (
        value(
            metrics,
            "provara_requests_total",
            tenant="-",
            provider=UNKNOWN,
            model=UNKNOWN,
            status="401",
            stream="false",
        )
        == 1
    )
    assert (
        value(metrics, "provara_request_errors_total", error="invalid_api_key", status="401") == 1
    )
    assert (
        value(metrics, "provara_request_errors_total", error="model_not_found", status="404") == 1
    )


def test_aborts_and_timeouts_count_once(metrics: Metrics) -> None:
    aborted = attempt(stream=True, error="stream_aborted", estimated=True)
    metrics.request_done(outcome(aborted, stream=True, error="stream_aborted"))
    timed_out = attempt(
        "acme/acme-1",
        stream=True,
        status=504,
        error="first_token_timeout",
        input_tokens=0,
        output_tokens=0,
        cost_usd=None,
    )
    metrics.request_done(outcome(timed_out, attempt(stream=True), stream=True))
    # The client went away: the attempt the gateway stopped says so, or only the outcome.
    metrics.request_done(outcome(attempt(stream=True), stream=True, error="client_disconnected"))

    def aborts(provider: str, model: str, reason: str) -> float | None:
        return value(
            metrics, "provara_stream_aborts_total", provider=provider, model=model, reason=reason
        )

    assert aborts("local", "echo", "stream_aborted") == 1
    assert aborts("acme", "acme-1", "first_token_timeout") == 1
    assert aborts("local", "echo", "client_disconnected") == 1
    assert value(metrics, "provara_request_errors_total", error="stream_aborted", status="200") == 1
    # Tokens of an aborted stream are (estimated) usage: counted.
    assert (
        value(
            metrics,
            "provara_tokens_total",
            tenant="acme-corp",
            provider="local",
            model="echo",
            direction="output",
        )
        == 15
    )


def test_a_client_cannot_mint_labels(metrics: Metrics) -> None:
    for n in range(5):
        typed = f"acme/made-up-{n}"
        metrics.request_done(
            outcome(
                attempt(
                    typed,
                    status=404,
                    error="upstream_rejected",
                    input_tokens=0,
                    output_tokens=0,
                    cost_usd=None,
                ),
                status=404,
                error="upstream_rejected",
                requested_model=typed,
            )
        )
    metrics.request_done(outcome(status=400, error="Weird Code {x}", requested_model="x" * 300))
    body = metrics.render()[0].decode()
    assert "made-up" not in body and "xxx" not in body and "Weird" not in body
    assert (
        value(
            metrics,
            "provara_upstream_attempts_total",
            provider=UNKNOWN,
            model=UNKNOWN,
            status="404",
            error="upstream_rejected",
        )
        == 5
    )
    assert value(metrics, "provara_request_errors_total", error="other", status="400") == 1
    # A model the operator configured is known though its provider does not list it.
    assert ModelLabels(_Catalog(), ["acme/acme-3"]).pair("acme", "acme-3") == ("acme", "acme-3")


def test_unpriced_attempts_are_not_zero_cost(metrics: Metrics) -> None:
    metrics.request_done(outcome(attempt("acme/acme-2", cost_usd=None, priced=False)))
    assert value(metrics, "provara_unpriced_attempts_total", provider="acme", model="acme-2") == 1
    assert (
        value(
            metrics, "provara_cost_usd_total", tenant="acme-corp", provider="acme", model="acme-2"
        )
        is None
    )


def test_labels_follow_the_catalog() -> None:
    catalog = _Catalog()
    labels = ModelLabels(catalog)
    assert labels.pair("acme", "acme-9") == (UNKNOWN, UNKNOWN)
    catalog.catalog_version = 2
    catalog.provider_models = lambda: {"acme": ("acme-9",)}  # type: ignore[method-assign]
    assert labels.pair("acme", "acme-9") == ("acme", "acme-9")
    assert labels.known("acme-9") and not labels.known("acme-1")
    assert error_label(None) == "" and error_label("rate_limited") == "rate_limited"
    assert error_label("x" * 100) == "other" and error_label("Bad") == "other"


def test_render_text_and_openmetrics(metrics: Metrics) -> None:
    metrics.request_done(outcome(attempt()))
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["provara_usage_pending_rows"].samples[0].value == 7
    assert families["provara_requests"].samples[0].value == 1
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


# -- the endpoint, on a gateway --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def operator_token(database: str, name: str = "ops") -> str:
    with connect(database) as conn:
        _, token = create_operator(conn, name)
    return token


@pytest.fixture
def bound(tmp_path: Path) -> Iterator[tuple[GatewayServer, int]]:
    port = _free_port()
    settings = make_settings(tmp_path, metrics_bind=f"127.0.0.1:{port}")
    with GatewayServer(settings) as server:
        yield server, port


def test_metrics_need_an_operator_token(bound: tuple[GatewayServer, int]) -> None:
    server, _ = bound
    tenant = server.tenant("acme-corp")
    operator = operator_token(server.database)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        missing = http.get("/metrics")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_operator_token"
        refused = http.get("/metrics", headers={"authorization": f"Bearer {tenant}"})
        assert refused.status_code == 403
        assert http.get("/metrics", headers={"authorization": "Bearer pvo_x"}).status_code == 401
        answer = http.get("/metrics", headers={"authorization": f"Bearer {operator}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(answer.text)}
    assert {"provara_requests", "provara_usage_pending_rows", "provara_tokens"} <= names


def test_the_bind_serves_without_a_token_and_closes(bound: tuple[GatewayServer, int]) -> None:
    server, port = bound
    outcome_ = outcome(attempt(), tenant="acme-corp")
    server.gateway.observer.request_done(outcome_)
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert families["provara_requests"].samples[0].labels["tenant"] == "acme-corp"
    server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_metrics_off(tmp_path: Path) -> None:
    with GatewayServer(make_settings(tmp_path, metrics=False, request_log="off")) as server:
        assert type(server.gateway.observer).__name__ == "NullObserver"
        operator = operator_token(server.database)
        answer = httpx.get(
            f"{server.url}/metrics", timeout=10, headers={"authorization": f"Bearer {operator}"}
        )
    assert answer.status_code == 404


# -- several processes --------------------------------------------------------------------

_WRITER = """
import os, sys
from prometheus_client import Counter, Gauge
Counter("provara_t", "t").inc()
Gauge("provara_g", "g", multiprocess_mode="livesum").set(float(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
"""


def _writer(directory: Path, gauge: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_WRITER), str(gauge)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_processes_add_up_and_a_dead_ones_gauge_goes(tmp_path: Path) -> None:
    first, second = _writer(tmp_path, 5), _writer(tmp_path, 3)
    try:
        registry = workers_registry(str(tmp_path))
        assert registry.get_sample_value("provara_t_total") == 2
        assert registry.get_sample_value("provara_g") == 8
        first.kill()  # no goodbye: the next scrape finds it gone
        first.communicate(timeout=30)
        assert registry.get_sample_value("provara_t_total") == 2
        assert registry.get_sample_value("provara_g") == 3
    finally:
        for process in (first, second):
            process.kill()
            process.communicate(timeout=30)


# -- requests through a gateway -------------------------------------------------------------


def scrape(
    url: str, token: str | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of a ``/metrics`` page."""
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    answer = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def until(what: str, check: Callable[[], bool], bound: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail after ``bound`` seconds (a process may report a
    request a moment after its client has the answer)."""
    deadline = time.monotonic() + bound
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {bound} s"
        time.sleep(0.02)


CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def drive(http: httpx.Client, token: str) -> int:
    """One of each kind of request; returns how many were made."""
    auth = {"authorization": f"Bearer {token}"}
    fault = "x-provara-local-fault"
    body = {"model": "local/echo", "messages": HI}
    replies = [
        http.post(CHAT, json=body, headers=auth),
        http.post(CHAT, json=body, headers=auth),
        http.post(CHAT, json={**body, "stream": True}, headers=auth),
        http.post(CHAT, json=body, headers={"authorization": "Bearer pvk_wrong"}),
        http.post(CHAT, json={**body, "model": "nope/made-up"}, headers=auth),
        http.post(CHAT, json=body, headers={**auth, fault: "status=429;retry-after=0;times=1"}),
        http.post(CHAT, json=body, headers={**auth, fault: "status=500;model=echo"}),
        http.post(CHAT, json={**body, "stream": True}, headers={**auth, fault: "error-event"}),
    ]
    statuses = [reply.status_code for reply in replies]
    assert statuses == [200, 200, 200, 401, 404, 200, 200, 200], [r.text for r in replies]
    assert replies[6].headers["x-provara-served-model"] == "local/echo-anthropic"
    return len(replies)


def test_requests_through_the_gateway_are_counted_exactly(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        retries=1,
        retry_backoff_ms=1,
        fallbacks={"local/echo": ("local/echo-anthropic",)},
    )
    with GatewayServer(settings) as server:
        token = server.tenant("acme-corp")
        operator = operator_token(server.database)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            made = drive(http, token)
        until(
            "every request counted",
            lambda: total(scrape(server.url, operator), "provara_requests_total") == made,
        )
        samples = scrape(server.url, operator)

    def count(name: str, **labels: str) -> float:
        return total(samples, name, **labels)

    assert count("provara_requests_total") == 8
    assert (
        count(
            "provara_requests_total",
            tenant="acme-corp",
            provider="local",
            model="echo",
            status="200",
        )
        == 5
    )
    assert count("provara_requests_total", tenant="acme-corp", model="echo-anthropic") == 1
    assert count("provara_requests_total", tenant="-", status="401") == 1
    assert count("provara_requests_total", model="unknown", status="404") == 1
    assert count("provara_request_errors_total", error="invalid_api_key", status="401") == 1
    assert count("provara_request_errors_total", error="model_not_found", status="404") == 1
    assert count("provara_request_errors_total", error="stream_aborted", status="200") == 1
    assert (
        count(
            "provara_stream_aborts_total", provider="local", model="echo", reason="stream_aborted"
        )
        == 1
    )
    assert count("provara_retries_total", model="echo", error="rate_limited") == 1
    assert count("provara_retries_total", model="echo", error="upstream_error") == 1
    assert (
        count(
            "provara_fallbacks_total",
            from_model="local/echo",
            to_model="local/echo-anthropic",
            error="upstream_error",
        )
        == 1
    )
    assert count("provara_upstream_attempts_total") == 9  # 5 served, 1 aborted, 3 failed
    assert count("provara_upstream_attempts_total", status="429", error="rate_limited") == 1
    assert count("provara_upstream_attempts_total", status="500", error="upstream_error") == 2
    assert count("provara_request_duration_seconds_count") == 8
    assert count("provara_time_to_first_token_seconds_count", stream="true") >= 1
    assert count("provara_tokens_total", tenant="acme-corp", direction="input") > 0
    assert ("provara_usage_pending_rows", ()) in samples
    assert not any("made-up" in str(key) for key in samples)


# -- serve --workers 2 ------------------------------------------------------------------------

_STALE = """
from prometheus_client import Counter
labels = ("acme-corp", "local", "echo", "200", "false")
Counter("provara_requests", "x", ["tenant", "provider", "model", "status", "stream"]).labels(
    *labels
).inc(100)
"""


def _pinned_scrape(gateway: GatewayProcess, pid: int, token: str) -> str:
    client = ProcessClient(gateway, pid, token)
    try:
        conn = client._connection()
        conn.request("GET", "/metrics", headers={"authorization": f"Bearer {token}"})
        response = conn.getresponse()
        text = response.read().decode()
        assert response.status == 200, text
        return text
    finally:
        client.close()


def _requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "provara_requests"
        for sample in family.samples
        if sample.name == "provara_requests_total"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="tells worker processes apart through /proc")
def test_workers_add_up_on_every_scrape(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_STALE)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(shared), "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=120,
    )
    assert list(shared.glob("counter_*.db"))  # a previous run's values
    bind = _free_port()
    cluster = Cluster(
        tmp_path,
        f"sqlite:///{tmp_path / 'gateway.db'}",
        extra_env={
            "PROMETHEUS_MULTIPROC_DIR": str(shared),
            "PROVARA_METRICS_BIND": f"127.0.0.1:{bind}",
        },
    )
    token = cluster.create_tenant("acme-corp")
    operator = cluster.cli("operators", "create", "ops").strip()
    gateway = GatewayProcess(cluster, "--workers", "2").start()
    try:
        until("two workers", lambda: len(gateway.worker_pids()) == 2, bound=START_TIMEOUT)
        workers = sorted(gateway.worker_pids())
        for pid in workers:  # three requests answered by each worker
            client = ProcessClient(gateway, pid, token)
            try:
                for _ in range(3):
                    assert client.chat("local/echo").status == 200
            finally:
                client.close()
        for pid in workers:
            until(
                f"worker {pid} sees all six requests",
                lambda pid=pid: _requests(_pinned_scrape(gateway, pid, operator)) == 6,
            )
        for pid in workers:  # and not one more
            assert _requests(_pinned_scrape(gateway, pid, operator)) == 6
        unauthenticated = httpx.get(f"http://127.0.0.1:{bind}/metrics", timeout=10)
        assert _requests(unauthenticated.text) == 6
        assert "provara_usage_pending_rows" in unauthenticated.text
        assert httpx.get(f"{gateway.url}/metrics", timeout=10).status_code == 401
    finally:
        gateway.stop()
    # Each worker wrote its requests' lines, one each, to the serve process's output.
    logged = [
        json.loads(line)
        for line in gateway.log.read_text(encoding="utf-8").splitlines()
        if line.startswith('{"time"')
    ]
    assert len(logged) == 6 and {line["model_served"] for line in logged} == {"local/echo"}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{bind}/metrics", timeout=2)


def test_prepare_workers_makes_a_fresh_directory(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    done = prepare_workers(make_settings(tmp_path), environ)
    made = Path(environ["PROMETHEUS_MULTIPROC_DIR"])
    assert made.is_dir() and not any(made.iterdir())
    done()
    assert not made.exists()
    own = tmp_path / "own"
    own.mkdir()
    (own / "counter_1.db").write_bytes(b"stale")
    (own / "notes.txt").write_text("kept")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(own)}
    prepare_workers(make_settings(tmp_path), environ)()
    assert sorted(p.name for p in own.iterdir()) == ["notes.txt"]
    environ = {}
    prepare_workers(make_settings(tmp_path, metrics=False), environ)()
    assert environ == {}


def test_the_bind_setting() -> None:
    assert Settings.from_env({}).metrics_bind is None
    assert parse_bind("[::1]:9464") == ("::1", 9464)
    assert parse_bind(" 127.0.0.1:9464 ") == ("127.0.0.1", 9464)
    for bad in ("9464", "127.0.0.1", "127.0.0.1:http", ":9464", "127.0.0.1:70000"):
        with pytest.raises(ConfigurationError, match="must be host:port"):
            Settings.from_env({"PROVARA_METRICS_BIND": bad})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port}: cannot listen there"):
            MetricsServer(
                f"127.0.0.1:{port}", Metrics(ModelLabels(None), usage_pending=lambda: 0).registry
            )


class _Broken:
    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        raise RuntimeError("attempt observer bug")

    def request_done(self, outcome: Outcome) -> None:
        raise RuntimeError("request observer bug")


def test_one_observer_failing_starves_no_other(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    fanout = Fanout([_Broken(), metrics])
    fanout.attempt_done(attempt(), request_id="chatcmpl-1", tenant_id="t_1")
    fanout.request_done(outcome(attempt()))
    assert value(metrics, "provara_requests_total", **SERVED_ECHO) == 1
    assert "_Broken failed on request chatcmpl-1" in caplog.text
    assert "_Broken failed on an attempt" in caplog.text
