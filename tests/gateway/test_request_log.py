"""The request log: one line per chat request, JSON or text, with no key in it and no
prompt unless the operator asked; the ``serve`` logging writes it as a bare line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provara_kit.errors import ConfigurationError
from reference_gateway import logs
from reference_gateway.config import Settings
from reference_gateway.telemetry.request_log import LOGGER_NAME, RequestLog, fields
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.test_metrics import CHAT, attempt, drive, outcome, until

SECRET = "sk-request-log-secret-0123456789abcdef"
PROMPT = "the quarterly plan nobody may read"


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


def test_a_line_for_every_request_through_the_gateway(
    tmp_path: Path, captured: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path, retries=1, retry_backoff_ms=1, fallbacks={"local/echo": ("local/echo-anthropic",)}
    )
    with GatewayServer(settings) as server:
        token = server.tenant("acme-corp")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            made = drive(http, token)
            secret = {"model": "local/echo", "messages": [{"role": "user", "content": PROMPT}]}
            assert (
                http.post(
                    CHAT, json=secret, headers={"authorization": f"Bearer {token}"}
                ).status_code
                == 200
            )
        until("every request logged", lambda: len(request_lines(captured)) == made + 1)
    lines = request_lines(captured)
    assert len(lines) == made + 1 and len({line["request_id"] for line in lines}) == made + 1
    assert [line["status"] for line in lines] == [200, 200, 200, 401, 404, 200, 200, 200, 200]
    assert all(PROMPT not in json.dumps(line) and "prompt" not in line for line in lines)
    unauthenticated, unknown = lines[3], lines[4]
    assert unauthenticated["tenant"] is None and unauthenticated["error"] == "invalid_api_key"
    assert unknown["model_requested"] == "nope/made-up" and unknown["error"] == "model_not_found"
    assert unknown["attempts"] == 0 and unknown["model_served"] is None
    fell_back = lines[6]
    assert fell_back["model_served"] == "local/echo-anthropic"
    assert fell_back["path"] == "local/echo 500 → local/echo 500 → local/echo-anthropic 200"
    assert (fell_back["retries"], fell_back["fallbacks"], fell_back["attempts"]) == (1, 1, 3)
    assert lines[5]["retries"] == 1 and lines[5]["path"].startswith("local/echo 429 → ")
    aborted = lines[7]
    assert (aborted["stream"], aborted["error"], aborted["status"]) == (True, "stream_aborted", 200)
    served = lines[0]
    assert served["tenant"] == "acme-corp" and served["model_served"] == "local/echo"
    assert served["input_tokens"] > 0 and served["cost_usd"] == 0 and served["priced"] is True
    assert served["latency_ms"] > 0 and served["request_id"].startswith("chatcmpl-")


def test_prompts_reach_the_line_when_the_operator_asks(
    tmp_path: Path, captured: pytest.LogCaptureFixture
) -> None:
    with GatewayServer(make_settings(tmp_path, log_prompts=True)) as server:
        token = server.tenant("acme-corp")
        messages = [{"role": "user", "content": PROMPT}]
        answer = httpx.post(
            f"{server.url}{CHAT}",
            json={"model": "local/echo", "messages": messages},
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200
        until("the request logged", lambda: len(request_lines(captured)) == 1)
    assert request_lines(captured)[0]["prompt"] == messages


def request_lines(captured: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(record.getMessage()) for record in captured.records if record.name == LOGGER_NAME
    ]


_attempts = st.builds(
    lambda model, status, tokens, cost, priced, estimated: attempt(
        model,
        status=status,
        error=None if status == 200 else "upstream_error",
        input_tokens=tokens,
        output_tokens=tokens // 2,
        cost_usd=cost,
        priced=priced,
        estimated=estimated,
    ),
    st.sampled_from(["local/echo", "acme/acme-1", "acme/acme-2"]),
    st.sampled_from([200, 429, 503]),
    st.integers(0, 50),
    st.one_of(st.none(), st.decimals("0", "1", places=6)),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_attempts, max_size=5), st.floats(0, 4_000_000_000, allow_nan=False))
def test_the_line_agrees_with_the_outcome(attempts: list[Any], started: float) -> None:
    done = outcome(*attempts, started=started)
    line = fields(done)
    assert line["time"] == datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds")
    assert (line["retries"], line["fallbacks"], line["path"]) == (
        done.retries,
        done.fallbacks,
        done.path,
    )
    assert line["attempts"] == len(attempts)
    assert line["input_tokens"] == sum(a.input_tokens for a in attempts)
    assert line["output_tokens"] == sum(a.output_tokens for a in attempts)
    costs = [a.cost_usd for a in attempts if a.cost_usd is not None]
    assert line["cost_usd"] == (float(sum(costs, Decimal(0))) if costs else None)
    assert line["priced"] == all(
        a.priced and a.cost_usd is not None for a in attempts if a.input_tokens or a.output_tokens
    )
    assert line["estimated"] == any(a.estimated for a in attempts)
