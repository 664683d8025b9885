"""The request log: one line per chat request, JSON or text, with no key in it and no
prompt unless the operator asked; the ``serve`` logging writes it as a bare line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from provara_kit.errors import ConfigurationError
from reference_gateway import logs
from reference_gateway.config import Settings
from reference_gateway.telemetry.request_log import LOGGER_NAME, RequestLog, fields
from tests.gateway.test_metrics import attempt, outcome

SECRET = "sk-request-log-secret-0123456789abcdef"


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    return caplog


def test_one_json_line_per_request(captured: pytest.LogCaptureFixture) -> None:
    log = RequestLog("json")
    log.request_done(
        outcome(
            attempt(
                "acme/acme-1",
                status=429,
                error="rate_limited",
                input_tokens=0,
                output_tokens=0,
                cost_usd=None,
            ),
            attempt("local/echo", ttft_ms=4.0, cost_usd=Decimal("0.25")),
            requested_model="auto",
            ttft_ms=4.0,
            prompt=[{"role": "user", "content": "the prompt"}],
        )
    )
    assert len(captured.messages) == 1
    line = json.loads(captured.messages[0])
    assert line == {
        "time": "2025-06-15T15:06:40.000+00:00",
        "request_id": "chatcmpl-1",
        "tenant": "acme-corp",
        "tenant_id": "t_1",
        "model_requested": "auto",
        "model_served": "local/echo",
        "status": 200,
        "error": None,
        "stream": False,
        "latency_ms": 25.0,
        "ttft_ms": 4.0,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.25,
        "priced": True,
        "estimated": False,
        "attempts": 2,
        "retries": 0,
        "fallbacks": 1,
        "path": "acme/acme-1 429 → local/echo 200",
    }
    assert "the prompt" not in captured.messages[0]


def test_prompts_only_when_asked(captured: pytest.LogCaptureFixture) -> None:
    messages = [{"role": "user", "content": "the prompt"}]
    RequestLog("json", prompts=True).request_done(outcome(attempt(), prompt=messages))
    RequestLog("json", prompts=True).request_done(outcome(attempt()))
    assert json.loads(captured.messages[0])["prompt"] == messages
    assert "prompt" not in json.loads(captured.messages[1])


def test_text_lines(captured: pytest.LogCaptureFixture) -> None:
    RequestLog("text").request_done(
        outcome(
            status=401,
            error="invalid_api_key",
            tenant=None,
            tenant_id=None,
            requested_model='a "quoted"\nmodel',
        )
    )
    (line,) = captured.messages
    assert "\n" not in line
    assert line.startswith("time=2025-06-15T15:06:40.000+00:00 request_id=chatcmpl-1 tenant=- ")
    assert 'model_requested="a \\"quoted\\"\\nmodel"' in line
    assert "status=401 error=invalid_api_key stream=false" in line
    assert "cost_usd=- priced=true" in line


def test_a_key_in_a_field_is_redacted(captured: pytest.LogCaptureFixture) -> None:
    logs.install()
    logs.SECRETS.add(SECRET)
    RequestLog("json").request_done(
        outcome(status=404, error="model_not_found", requested_model=f"openai/{SECRET}")
    )
    RequestLog("text").request_done(
        outcome(status=404, error="model_not_found", requested_model=f"openai/{SECRET}")
    )
    assert len(captured.messages) == 2
    assert all(SECRET not in line and SECRET[:8] not in line for line in captured.messages)
    assert json.loads(captured.messages[0])["model_requested"] == "openai/[REDACTED]"


def test_cost_sums_priced_attempts_and_says_when_one_was_not() -> None:
    record = fields(
        outcome(
            attempt(cost_usd=Decimal("0.5")), attempt("acme/acme-2", cost_usd=None, priced=False)
        )
    )
    assert record["cost_usd"] == 0.5 and record["priced"] is False
    assert fields(outcome())["cost_usd"] is None
    long = fields(outcome(requested_model="m" * 10_000))["model_requested"]
    assert len(long) == 257


def test_the_switch() -> None:
    assert Settings.from_env({}).request_log == "json"
    assert Settings.from_env({"PROVARA_REQUEST_LOG": "TEXT"}).request_log == "text"
    assert Settings.from_env({"PROVARA_LOG_PROMPTS": "1"}).log_prompts
    with pytest.raises(ConfigurationError, match="PROVARA_REQUEST_LOG must be one of json"):
        Settings.from_env({"PROVARA_REQUEST_LOG": "xml"})
    with pytest.raises(ValueError, match="json or text"):
        RequestLog("off")


_SERVE_LOGGING = """
import logging.config
from reference_gateway.cli import _log_config
from reference_gateway.telemetry.request_log import RequestLog
from tests.gateway.test_metrics import attempt, outcome

logging.config.dictConfig(_log_config())
RequestLog("json").request_done(outcome(attempt()))
"""


def test_serve_writes_the_bare_line_to_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SERVE_LOGGING)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["model_served"] == "local/echo"
    assert done.stderr == ""
