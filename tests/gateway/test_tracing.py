"""OpenTelemetry spans: a request span and a child per attempt after the GenAI semantic
conventions, the ``OTEL_*`` switches, and a gateway without the SDK that traces nothing and
imports nothing of it."""

from __future__ import annotations

import http.server
import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from reference_gateway.telemetry import tracing
from reference_gateway.telemetry.labels import ModelLabels
from reference_gateway.telemetry.tracing import Tracing, exporter_names, from_environ
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.test_metrics import T0, _Catalog, attempt, drive, outcome, until

_OTEL_MODULES = (
    "opentelemetry",
    "opentelemetry.trace",
    "opentelemetry.sdk",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.resources",
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = Tracing(provider, ModelLabels(_Catalog()))
    yield observer
    observer.shutdown()


def test_a_request_span_with_a_child_per_attempt(
    traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    traced.request_done(
        outcome(
            attempt(
                "acme/acme-1",
                status=429,
                error="rate_limited",
                input_tokens=0,
                output_tokens=0,
                cost_usd=None,
                retry_after=1.5,
            ),
            attempt(
                "local/echo",
                started=T0 + 0.5,
                latency_ms=30.0,
                ttft_ms=3.0,
                finish_reason="stop",
                cost_usd=Decimal("0.002"),
            ),
            requested_model="auto",
            started=T0,
            latency_ms=600.0,
            ttft_ms=3.0,
        )
    )
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["chat acme-1", "chat echo", "chat auto"]
    first, second, request = spans
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert {first.parent.span_id, second.parent.span_id} == {request.context.span_id}  # type: ignore[union-attr]
    assert first.kind is SpanKind.CLIENT
    assert (request.start_time, request.end_time) == (int(T0 * 1e9), int(T0 * 1e9) + 600_000_000)
    assert (second.start_time, second.end_time) == (
        int((T0 + 0.5) * 1e9),
        int((T0 + 0.5) * 1e9) + 30_000_000,
    )
    assert dict(request.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "auto",
        "gen_ai.response.model": "echo",
        "gen_ai.provider.name": "local",
        "gen_ai.system": "local",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
        "http.response.status_code": 200,
        "provara.stream": False,
        "provara.attempts": 2,
        "provara.retries": 0,
        "provara.fallbacks": 1,
        "provara.tenant.id": "t_1",
        "provara.tenant.name": "acme-corp",
        "provara.time_to_first_token_ms": 3.0,
        "provara.cost_usd": 0.002,
    }
    assert request.status.status_code is StatusCode.UNSET
    assert first.status.status_code is StatusCode.ERROR
    failed = dict(first.attributes or {})
    assert failed["error.type"] == "rate_limited" and failed["provara.retry_after_s"] == 1.5
    assert failed["gen_ai.request.model"] == "acme-1" and "gen_ai.response.model" not in failed
    served = dict(second.attributes or {})
    assert served["gen_ai.response.model"] == "echo"
    assert served["gen_ai.response.finish_reasons"] == ("stop",)
    assert served["gen_ai.usage.output_tokens"] == 5 and "error.type" not in served


def test_an_error_before_any_attempt(traced: Tracing, exporter: InMemorySpanExporter) -> None:
    traced.request_done(
        outcome(status=404, error="model_not_found", requested_model="typed/by-a-client")
    )
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat"  # a model nobody routes does not name spans
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "model_not_found"
    assert attributes["gen_ai.request.model"] == "typed/by-a-client"
    assert "gen_ai.provider.name" not in attributes
    assert span.status.status_code is StatusCode.ERROR


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def test_a_client_s_traceparent_puts_the_request_in_its_trace(
    traced: Tracing, exporter: InMemorySpanExporter
) -> None:
    context = (("traceparent", f"00-{TRACE_ID}-{CALLER_SPAN}-01"), ("tracestate", "acme=7"))
    traced.request_done(outcome(attempt("local/echo"), trace_context=context))
    traced.request_done(outcome(attempt("local/echo"), trace_context=(("traceparent", "junk"),)))
    spans = exporter.get_finished_spans()
    requests = [s for s in spans if s.kind is SpanKind.SERVER]
    linked = [s for s in requests if s.parent is not None]
    assert len(requests) == 2 and len(linked) == 1
    (joined,) = linked
    assert f"{joined.context.trace_id:032x}" == TRACE_ID
    assert joined.parent is not None and f"{joined.parent.span_id:016x}" == CALLER_SPAN
    assert joined.parent.is_remote and dict(joined.context.trace_state) == {"acme": "7"}
    (child,) = [
        s for s in spans if s.parent is not None and s.parent.span_id == joined.context.span_id
    ]
    assert child.context.trace_id == joined.context.trace_id
    # A traceparent that is not one starts a trace of the gateway's own.
    (fresh,) = [s for s in requests if s.parent is None]
    assert f"{fresh.context.trace_id:032x}" != TRACE_ID


def test_no_prompt_on_a_span(traced: Tracing, exporter: InMemorySpanExporter) -> None:
    traced.request_done(outcome(attempt(), prompt=[{"role": "user", "content": "secret plan"}]))
    assert all(
        "secret plan" not in str(value)
        for span in exporter.get_finished_spans()
        for value in (span.attributes or {}).values()
    )


def test_otel_variables(caplog: pytest.LogCaptureFixture) -> None:
    assert exporter_names({}) == ()
    assert exporter_names({"OTEL_TRACES_EXPORTER": "console"}) == ("console",)
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp,console"}) == ("otlp", "console")
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == ("otlp",)
    assert (
        exporter_names(
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
        )
        == ()
    )
    assert exporter_names({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) == ()
    with caplog.at_level(logging.ERROR, logger="reference_gateway"):
        assert exporter_names({"OTEL_TRACES_EXPORTER": "zipkin,console"}) == ("console",)
    assert "'zipkin' is not an exporter" in caplog.text


def test_from_environ_builds_the_exporters() -> None:
    environ = {
        "OTEL_TRACES_EXPORTER": "otlp,console",
        "OTEL_SERVICE_NAME": "edge-gateway",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9/",
    }
    observer = from_environ(environ, ModelLabels(None))
    assert observer is not None
    try:
        assert observer.provider.resource.attributes["service.name"] == "edge-gateway"
        processors = observer.provider._active_span_processor._span_processors
        exporters = [p._batch_processor._exporter for p in processors]  # type: ignore[attr-defined]
        assert [type(e).__name__ for e in exporters] == ["OTLPSpanExporter", "ConsoleSpanExporter"]
        assert exporters[0]._endpoint == "http://127.0.0.1:9/v1/traces"
    finally:
        observer.shutdown()
    assert from_environ({}, ModelLabels(None)) is None


def _without_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _OTEL_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def test_without_the_sdk_nothing_is_traced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _without_sdk(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="reference_gateway"):
        assert from_environ({"OTEL_TRACES_EXPORTER": "console"}, ModelLabels(None)) is None
    assert "OpenTelemetry is not installed" in caplog.text


def test_a_gateway_without_the_sdk_runs_untraced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_sdk(monkeypatch)
    base = make_settings(tmp_path)
    settings = replace(base, environ={**base.environ, "OTEL_TRACES_EXPORTER": "console"})
    with GatewayServer(settings) as server:
        assert server.gateway.telemetry.tracing is None
        token = server.tenant("acme-corp")
        _say_hi(server, token)


def _say_hi(server: GatewayServer, token: str, **headers: str) -> httpx.Response:
    """One chat completion of ``local/echo`` as ``token``; it must be answered."""
    answer = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {token}", **headers},
        timeout=30,
    )
    assert answer.status_code == 200
    return answer


def _in_memory(exporter: InMemorySpanExporter) -> object:
    def processor(name: str, environ: object) -> SpanProcessor:
        assert name == "console"
        return SimpleSpanProcessor(exporter)

    return processor


def test_the_gateway_traces_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    monkeypatch.setattr(tracing, "span_processor", _in_memory(exporter))
    base = make_settings(
        tmp_path, retries=1, retry_backoff_ms=1, fallbacks={"local/echo": ("local/echo-anthropic",)}
    )
    settings = replace(base, environ={**base.environ, "OTEL_TRACES_EXPORTER": "console"})
    with GatewayServer(settings) as server:
        assert server.gateway.telemetry.tracing is not None
        token = server.tenant("acme-corp")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            made = drive(http, token)
        until(
            "every request traced",
            lambda: sum(s.parent is None for s in exporter.get_finished_spans()) == made,
        )
    spans = exporter.get_finished_spans()
    requests = [s for s in spans if s.parent is None]
    assert len(requests) == made
    children = {
        r.context.span_id: [s for s in spans if s.parent and s.parent.span_id == r.context.span_id]
        for r in requests
    }
    fell_back = next(
        r for r in requests if (r.attributes or {}).get("gen_ai.response.model") == "echo-anthropic"
    )
    assert fell_back.name == "chat local/echo"
    assert [c.name for c in children[fell_back.context.span_id]] == [
        "chat echo",
        "chat echo",
        "chat echo-anthropic",
    ]
    assert [
        (c.attributes or {}).get("error.type") for c in children[fell_back.context.span_id]
    ] == [
        "upstream_error",
        "upstream_error",
        None,
    ]
    unknown = next(
        r for r in requests if (r.attributes or {}).get("error.type") == "model_not_found"
    )
    assert unknown.name == "chat" and not children[unknown.context.span_id]
    served = [r for r in requests if (r.attributes or {}).get("gen_ai.provider.name") == "local"]
    assert all((r.attributes or {})["gen_ai.usage.input_tokens"] > 0 for r in served)
    assert all(r.end_time is not None and r.start_time is not None for r in requests)
    assert all(r.end_time >= r.start_time for r in requests)  # type: ignore[operator]


def test_the_gateway_continues_the_client_s_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    monkeypatch.setattr(tracing, "span_processor", _in_memory(exporter))
    base = make_settings(tmp_path)
    settings = replace(base, environ={**base.environ, "OTEL_TRACES_EXPORTER": "console"})
    with GatewayServer(settings) as server:
        token = server.tenant("traced")
        _say_hi(server, token, traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01")
        until(
            "the request traced",
            lambda: any(s.kind is SpanKind.SERVER for s in exporter.get_finished_spans()),
        )
    (request,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert f"{request.context.trace_id:032x}" == TRACE_ID
    assert request.parent is not None and f"{request.parent.span_id:016x}" == CALLER_SPAN


_NO_IMPORT = """
import sys
from reference_gateway.app import create_app
from reference_gateway.config import Settings
from reference_gateway.telemetry import Telemetry

settings = Settings(master_key=sys.argv[1], environ={})
telemetry = Telemetry(settings, catalog=None, usage_pending=lambda: 0)
assert telemetry.tracing is None
create_app(settings)
print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
"""


def test_nothing_of_opentelemetry_is_imported_when_tracing_is_off() -> None:
    from provara_kit.vault import generate_master_key

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_NO_IMPORT), generate_master_key()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]"


class _Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP collector on loopback that keeps every export it is sent."""

    def __init__(self) -> None:
        self.exports: list[tuple[str, str, bytes]] = []
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                collector.exports.append((self.path, self.headers["content-type"], body))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_spans_reach_an_otlp_collector(tmp_path: Path, collector: _Collector) -> None:
    base = make_settings(tmp_path)
    environ = {
        **base.environ,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_SERVICE_NAME": "gateway-under-test",
    }
    with GatewayServer(replace(base, environ=environ)) as server:
        token = server.tenant("acme-corp")
        answer = _say_hi(server, token)
    # Stopping the gateway flushed the batch.
    assert collector.exports, "no export reached the collector"
    spans = []
    for path, content_type, body in collector.exports:
        assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert service["service.name"] == "gateway-under-test"
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert sorted(s.name for s in spans) == ["chat echo", "chat local/echo"]
    (request_span,) = [s for s in spans if not s.parent_span_id]
    attributes = {a.key: a.value for a in request_span.attributes}
    assert attributes["gen_ai.response.id"].string_value == answer.json()["id"]
    assert attributes["gen_ai.usage.output_tokens"].int_value > 0
