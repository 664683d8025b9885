"""One log line per chat request, on the ``reference_gateway.requests`` logger.

``PROVARA_REQUEST_LOG=json`` (the default) writes one JSON object a line; ``text`` the
same fields as ``key=value`` pairs; ``off`` nothing. The line never holds a key (the
logger carries :data:`reference_gateway.logs.SECRETS`, which rewrites any record quoting
one) and holds the request's messages only when ``PROVARA_LOG_PROMPTS=1``.

Fields, in order: ``time`` (the request's arrival, ISO 8601 UTC), ``request_id``,
``tenant``, ``tenant_id``, ``model_requested``, ``model_served``, ``status``, ``error``,
``stream``, ``latency_ms``, ``ttft_ms``, ``input_tokens``, ``output_tokens`` (every
attempt's), ``cost_usd`` (the priced attempts', ``null`` when none was priced),
``priced`` (every attempt with tokens had a price), ``estimated``, ``attempts``,
``retries``, ``fallbacks``, ``path`` (``model status → model status``), then ``prompt``
when prompts are logged.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import orjson

from reference_gateway.outcome import Attempt, Outcome

__all__ = ["LOGGER_NAME", "RequestLog", "fields"]

LOGGER_NAME = "reference_gateway.requests"

_CLIP = 256  # a client's model string is logged, but not a megabyte of it


def _clip(value: str | None) -> str | None:
    if value is None or len(value) <= _CLIP:
        return value
    return value[:_CLIP] + "…"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


_second: tuple[int, str] = (-1, "")  # the last second formatted: most lines share it


def _time(started: float) -> str:
    """``started`` as ISO 8601 UTC to the millisecond (``2026-01-02T03:04:05.678+00:00``)."""
    global _second
    second = int(started)
    micros = round((started - second) * 1_000_000)  # as datetime rounds, then truncates
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    if _second[0] != second:
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second[1]}.{micros // 1000:03d}+00:00"


def fields(outcome: Outcome, *, prompts: bool = False) -> dict[str, Any]:
    """The request line's fields (see the module docstring)."""
    # One pass over the attempts: this runs once per request, on the event loop.
    input_tokens = output_tokens = retries = fallbacks = 0
    costs: list[Decimal] = []
    priced, estimated = True, False
    steps: list[str] = []
    before: str | None = None
    for attempt in outcome.attempts:
        input_tokens += attempt.input_tokens
        output_tokens += attempt.output_tokens
        if attempt.cost_usd is not None:
            costs.append(attempt.cost_usd)
        if attempt.input_tokens or attempt.output_tokens:
            priced = priced and attempt.priced and attempt.cost_usd is not None
        estimated = estimated or attempt.estimated
        model = f"{attempt.provider}/{attempt.model}"
        if before is not None:
            if model == before:
                retries += 1
            else:
                fallbacks += 1
        before = model
        steps.append(f"{model} {attempt.status}")
    record: dict[str, Any] = {
        "time": _time(outcome.started),
        "request_id": outcome.request_id,
        "tenant": outcome.tenant,
        "tenant_id": outcome.tenant_id,
        "model_requested": _clip(outcome.requested_model),
        "model_served": outcome.served_model,
        "status": outcome.status,
        "error": outcome.error,
        "stream": outcome.stream,
        "latency_ms": _ms(outcome.latency_ms),
        "ttft_ms": _ms(outcome.ttft_ms),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": float(sum(costs, Decimal(0))) if costs else None,
        "priced": priced,
        "estimated": estimated,
        "attempts": len(steps),
        "retries": retries,
        "fallbacks": fallbacks,
        "path": " → ".join(steps),
    }
    if prompts and outcome.prompt is not None:
        record["prompt"] = outcome.prompt
    return record


def _json(record: dict[str, Any]) -> str:
    return orjson.dumps(record, default=str).decode()


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else _json(value)
    if text and all(c.isprintable() and c not in ' "=\\' for c in text):
        return text
    return orjson.dumps(text).decode()


def _text(record: dict[str, Any]) -> str:
    return " ".join(f"{key}={_text_value(value)}" for key, value in record.items())


class RequestLog:
    """The observer that writes the request line (``style`` is ``json`` or ``text``)."""

    def __init__(
        self, style: str = "json", *, prompts: bool = False, logger: logging.Logger | None = None
    ) -> None:
        if style not in ("json", "text"):
            raise ValueError(f"request log style must be json or text, not {style!r}")
        self._format = _json if style == "json" else _text
        self._prompts = prompts
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        return None  # the request's line lists its attempts

    def request_done(self, outcome: Outcome) -> None:
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):
            line = self._format(fields(outcome, prompts=self._prompts))
            # A record made here: logger.info() would walk the stack for a caller it never
            # shows, a third of the line's cost.
            logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None))
