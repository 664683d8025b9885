"""OpenTelemetry spans of the chat completions, after the GenAI semantic conventions.

One span per request (kind ``SERVER``) and a child per attempt (kind ``CLIENT``), each
named ``chat {model}`` and made once the request has ended, with the start and end
times its :class:`~reference_gateway.outcome.Outcome` recorded. Attributes:
``gen_ai.operation.name`` (``chat``), ``gen_ai.provider.name`` and its older name
``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.response.id``, ``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``error.type`` (the gateway's error code, with an error
status), ``http.response.status_code``, and ``provara.*`` for the rest (tenant, cost,
time to first token, retries and fallbacks). No prompt and no key is ever put on a span.
A request that carries a W3C ``traceparent`` (and ``tracestate``) gets its span in that
trace, under the caller's span.

Tracing needs the ``otel`` extra (``pip install 'provara-kit[otel]'``: opentelemetry-sdk
and the OTLP/HTTP exporter) and is configured by the standard variables: it is on when
``OTEL_TRACES_EXPORTER`` names ``console`` and/or ``otlp``, or when it is unset and an
OTLP endpoint is (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``);
``OTEL_TRACES_EXPORTER=none`` or ``OTEL_SDK_DISABLED=true`` turn it off.
``OTEL_SERVICE_NAME`` defaults to ``provara-gateway``; the exporter's other ``OTEL_*``
variables (headers, timeout, sampler, resource attributes) are the SDK's own. Without the
SDK nothing is imported and nothing traced.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reference_gateway.outcome import Attempt, Outcome
from reference_gateway.telemetry.labels import ModelLabels

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.trace import Span

__all__ = ["DEFAULT_SERVICE_NAME", "EXPORTERS", "Tracing", "exporter_names", "from_environ"]

logger = logging.getLogger("reference_gateway")

DEFAULT_SERVICE_NAME = "provara-gateway"
EXPORTERS = ("console", "otlp")
_CLIP = 256
_TRUE = {"1", "true", "yes", "on"}


def exporter_names(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The span exporters the environment asks for (none: tracing is off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return ()
    raw = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not raw:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ("otlp",) if any(environ.get(name, "").strip() for name in endpoints) else ()
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if "none" in names:
        return ()
    for name in names:
        if name not in EXPORTERS:
            logger.error(
                "OTEL_TRACES_EXPORTER: %r is not an exporter this gateway has (console, otlp "
                "or none); it is ignored",
                name[:_CLIP],
            )
    return tuple(name for name in names if name in EXPORTERS)


def _otlp_endpoint(environ: Mapping[str, str]) -> str | None:
    traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return base.rstrip("/") + "/v1/traces" if base else None


def span_processor(name: str, environ: Mapping[str, str]) -> SpanProcessor:
    """A batching processor feeding exporter ``name`` (``console`` or ``otlp``)."""
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=_otlp_endpoint(environ))
    return BatchSpanProcessor(exporter)


def from_environ(environ: Mapping[str, str], labels: ModelLabels) -> Tracing | None:
    """The tracing observer the ``OTEL_*`` variables ask for, or ``None`` (off, or the
    SDK is not installed: then it says so once if it was asked for)."""
    names = exporter_names(environ)
    if not names:
        return None
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        logger.warning(
            "tracing is off: OpenTelemetry is not installed (pip install 'provara-kit[otel]')"
        )
        return None
    service = environ.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    for name in names:
        try:
            provider.add_span_processor(span_processor(name, environ))
        except ImportError:
            logger.warning(
                "traces cannot go to %s: its exporter is not installed "
                "(pip install 'provara-kit[otel]')",
                name,
            )
    logger.info("tracing: spans of service %r go to %s", service, ", ".join(names))
    return Tracing(provider, labels)


def _ns(unix_seconds: float) -> int:
    return int(unix_seconds * 1e9)


def _clip(value: str) -> str:
    return value if len(value) <= _CLIP else value[:_CLIP] + "…"


class Tracing:
    """The observer that turns each outcome into a request span and its attempts' spans."""

    def __init__(self, provider: TracerProvider, labels: ModelLabels) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("reference_gateway")
        self._labels = labels

    def _name(self, model: str | None) -> str:
        if model is not None and (model == "auto" or self._labels.known(model)):
            return f"chat {model}"
        return "chat"

    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        return None  # its span is made with its request's, under it

    def request_done(self, outcome: Outcome) -> None:
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, set_span_in_context

        start = _ns(outcome.started)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.response.id": outcome.request_id,
            "http.response.status_code": outcome.status,
            "gen_ai.usage.input_tokens": sum(a.input_tokens for a in outcome.attempts),
            "gen_ai.usage.output_tokens": sum(a.output_tokens for a in outcome.attempts),
            "provara.stream": outcome.stream,
            "provara.attempts": len(outcome.attempts),
            "provara.retries": outcome.retries,
            "provara.fallbacks": outcome.fallbacks,
        }
        if outcome.requested_model is not None:
            attributes["gen_ai.request.model"] = _clip(outcome.requested_model)
        if outcome.served_model is not None:
            provider, _, model = outcome.served_model.partition("/")
            attributes["gen_ai.provider.name"] = attributes["gen_ai.system"] = provider
            attributes["gen_ai.response.model"] = model
        if outcome.tenant_id is not None:
            attributes["provara.tenant.id"] = outcome.tenant_id
        if outcome.tenant is not None:
            attributes["provara.tenant.name"] = outcome.tenant
        if outcome.ttft_ms is not None:
            attributes["provara.time_to_first_token_ms"] = outcome.ttft_ms
        costs = [float(a.cost_usd) for a in outcome.attempts if a.cost_usd is not None]
        if costs:
            attributes["provara.cost_usd"] = sum(costs)
        _error(attributes, outcome.error)
        # The client's traceparent, when it sent one, makes this span a child of its own
        # (the configured propagators read it: W3C trace context by default).
        parent = propagate.extract(dict(outcome.trace_context)) if outcome.trace_context else None
        span = self._tracer.start_span(
            self._name(outcome.requested_model),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=start,
        )
        context = set_span_in_context(span)
        for attempt in outcome.attempts:
            child = self._tracer.start_span(
                f"chat {attempt.model}" if self._labels.known(attempt.public_model) else "chat",
                context=context,
                kind=SpanKind.CLIENT,
                attributes=_attempt_attributes(attempt),
                start_time=_ns(attempt.started),
            )
            _end(child, attempt.error, _ns(attempt.started) + int(attempt.latency_ms * 1e6))
        _end(span, outcome.error, start + int(outcome.latency_ms * 1e6))

    def shutdown(self) -> None:
        """Export what is still buffered and stop the exporters."""
        self.provider.shutdown()


def _error(attributes: dict[str, Any], error: str | None) -> None:
    if error is not None:
        attributes["error.type"] = _clip(error)


def _end(span: Span, error: str | None, end: int) -> None:
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=end)


def _attempt_attributes(attempt: Attempt) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": attempt.provider,
        "gen_ai.system": attempt.provider,
        "gen_ai.request.model": _clip(attempt.model),
        "gen_ai.usage.input_tokens": attempt.input_tokens,
        "gen_ai.usage.output_tokens": attempt.output_tokens,
        "http.response.status_code": attempt.status,
        "provara.attempt": attempt.index,
        "provara.stream": attempt.stream,
        "provara.tokens_estimated": attempt.estimated,
        "provara.priced": attempt.priced,
    }
    if attempt.ok:
        attributes["gen_ai.response.model"] = _clip(attempt.model)
    finish: Sequence[str] = () if attempt.finish_reason is None else (attempt.finish_reason,)
    if finish:
        attributes["gen_ai.response.finish_reasons"] = finish
    if attempt.ttft_ms is not None:
        attributes["provara.time_to_first_token_ms"] = attempt.ttft_ms
    if attempt.cost_usd is not None:
        attributes["provara.cost_usd"] = float(attempt.cost_usd)
    if attempt.retry_after is not None:
        attributes["provara.retry_after_s"] = attempt.retry_after
    _error(attributes, attempt.error)
    return attributes
