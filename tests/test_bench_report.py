"""Tests for bench.report: medians, ratios and the speed targets' verdicts (and
bench.probe's reading of an answer, which decides whether a target is measured at all)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.load import Result
from bench.probe import answer_problem
from bench.report import (
    check_targets,
    durability_cost,
    durability_table,
    legend,
    summarize,
    table,
    targets_table,
)
from bench.upstream import COMPLETION, STREAM


def _result(rps: float, p50_ms: float) -> Result:
    return Result(requests=int(rps * 10), seconds=10.0, errors=0, p50_ms=p50_ms, p99_ms=p50_ms * 3)


def _samples(
    gateway_rps: float,
    litellm_rps: float | None,
    added_ms: float,
    portkey_rps: float | None = 500,
) -> dict[tuple[str, str, int], list[Result]]:
    samples: dict[tuple[str, str, int], list[Result]] = {}
    for mode in ("json", "stream"):
        for conns in (1, 16):
            samples[(mode, "direct", conns)] = [_result(10_000, 0.1)] * 3
            samples[(mode, "gateway", conns)] = [
                _result(gateway_rps * 2, 0.1 + added_ms),
                _result(gateway_rps, 0.1 + added_ms),  # the median of three
                _result(gateway_rps / 2, 99.0),
            ]
            if litellm_rps is not None:
                samples[(mode, "litellm", conns)] = [_result(litellm_rps, 20.0)] * 3
            if portkey_rps is not None:
                samples[(mode, "portkey", conns)] = [_result(portkey_rps, 3.0)] * 3
    return samples


def _verdicts(checks: list[dict[str, object]]) -> dict[object, object]:
    return {check["target"]: check["met"] for check in checks}


def test_medians_and_ratio_against_litellm() -> None:
    rows = summarize(_samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3))
    gateway = next(
        r for r in rows if (r["mode"], r["concurrency"], r["target"]) == ("json", 16, "gateway")
    )
    assert gateway["rps"] == 2_000
    assert gateway["rps_vs_litellm"] == 40.0
    assert gateway["added_p50_ms"] == 0.3


def test_every_target_met() -> None:
    rows = summarize(_samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3))
    framings = {
        "ndjson": {"provara_kit.framings": 230.0, "httpx lines (ollama client)": 220.0},
        "json-array": {"provara_kit.framings + parse": 27.0, "ijson items (parses)": 17.0},
        "event-stream": {"provara_kit.framings": 14.0, "botocore EventStreamBuffer": 14.5},
    }
    checks = check_targets(
        rows, 100.0, {"provara_kit.sse": 400.0, "httpx-sse": 170.0, "openai SDK": 60.0}, framings
    )
    assert set(_verdicts(checks).values()) == {True}
    assert _verdicts(checks)["event-stream decode vs botocore (x)"] is True
    assert "MISSED" not in targets_table(checks)


def test_each_miss_is_reported() -> None:
    rows = summarize(_samples(gateway_rps=900, litellm_rps=50, added_ms=0.7, portkey_rps=500))
    framings = {
        "ndjson": {"provara_kit.framings": 200.0, "httpx lines (ollama client)": 220.0},
        "json-array": {"provara_kit.framings + parse": 15.0, "ijson items (parses)": 17.0},
        "event-stream": {"provara_kit.framings": 12.0, "botocore EventStreamBuffer": 14.5},
    }
    checks = check_targets(rows, 151.0, {"provara_kit.sse": 150.0, "httpx-sse": 170.0}, framings)
    assert set(_verdicts(checks).values()) == {False}
    assert targets_table(checks).count("MISSED") == len(checks)


def test_a_missing_peer_is_not_measured_never_met() -> None:
    rows = summarize(_samples(gateway_rps=2_000, litellm_rps=None, added_ms=0.3))
    verdicts = _verdicts(check_targets(rows, None, None))
    assert verdicts["json c16 req/s vs LiteLLM (x)"] is None
    assert verdicts["json c16 req/s vs Portkey (x)"] is True
    assert verdicts["gateway peak RSS (MB)"] is None
    assert verdicts["SSE decode vs fastest peer (x)"] is None
    assert verdicts["json-array decode vs ijson (x)"] is None
    assert verdicts["json c1 added p50 (ms)"] is True


def _one(rows: list[dict[str, object]], mode: str, conns: int, target: str) -> dict[str, object]:
    return next(
        r for r in rows if (r["mode"], r["concurrency"], r["target"]) == (mode, conns, target)
    )


def test_ratio_against_portkey_and_its_target() -> None:
    rows = summarize(_samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=800))
    assert _one(rows, "json", 16, "gateway")["rps_vs_portkey"] == 2.5
    assert _verdicts(check_targets(rows, 100.0, None))["json c16 req/s vs Portkey (x)"] is True
    rows = summarize(_samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=1_100))
    assert _verdicts(check_targets(rows, 100.0, None))["json c16 req/s vs Portkey (x)"] is False
    # 832 over 416.4 is 1.998: shown as 2.0x, judged as missed.
    rows = summarize(_samples(gateway_rps=832, litellm_rps=50, added_ms=0.3, portkey_rps=416.4))
    assert _one(rows, "json", 16, "gateway")["rps_vs_portkey"] == 1.998
    assert "2.0x" in table(rows)
    assert _verdicts(check_targets(rows, 100.0, None))["json c16 req/s vs Portkey (x)"] is False


def test_an_unmeasured_cell_is_a_reason_never_a_figure() -> None:
    samples = _samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=500)
    for conns in (1, 16):
        del samples[("stream", "portkey", conns)]
    reason = "HTTP 500: Something went wrong; its log: TypeError: immutable"
    unmeasured = {("stream", "portkey", c): reason for c in (1, 16)}
    rows = summarize(samples, unmeasured)
    row = _one(rows, "stream", 16, "portkey")
    assert row["rps"] is None
    assert row["reason"] == reason
    assert "rps_vs_portkey" not in _one(rows, "stream", 16, "gateway")
    assert _one(rows, "json", 16, "gateway")["rps_vs_portkey"] == 4.0
    printed = table(rows)
    assert f"portkey            not measured: {reason}" in printed


def test_a_cell_with_failed_requests_is_not_measured() -> None:
    samples = _samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=500)
    failing = Result(requests=5_000, seconds=10.0, errors=5_000, p50_ms=0.2, p99_ms=1.0)
    samples[("json", "portkey", 16)] = [failing] * 3
    samples[("json", "litellm", 16)] = [Result(0, 10.0, 0, 0.0, 0.0)] * 3
    rows = summarize(samples)
    assert _one(rows, "json", 16, "portkey")["reason"] == "15000 of 15000 requests failed"
    assert _one(rows, "json", 16, "litellm")["reason"] == "no request was answered"
    checks = {c["target"]: c for c in check_targets(rows, 100.0, None)}
    portkey = checks["json c16 req/s vs Portkey (x)"]
    assert (portkey["met"], portkey["measured"]) == (None, None)
    assert portkey["reason"] == "portkey: 15000 of 15000 requests failed"
    assert checks["json c16 req/s vs LiteLLM (x)"]["reason"] == "litellm: no request was answered"
    # A few failures in many requests still count: the errors column shows them.
    samples[("json", "portkey", 16)] = [Result(5_000, 10.0, 3, 3.0, 9.0)] * 3
    assert _one(summarize(samples), "json", 16, "portkey")["rps"] == 500


def test_a_missing_peer_says_why_in_the_targets() -> None:
    rows = summarize(_samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=None))
    reasons = {"portkey": "node is not installed (apt-get install nodejs npm)"}
    checks = check_targets(rows, 100.0, None, reasons=reasons)
    assert _verdicts(checks)["json c16 req/s vs Portkey (x)"] is None
    printed = targets_table(checks)
    assert "not measured (node is not installed (apt-get install nodejs npm))" in printed
    printed = targets_table(check_targets(rows, 100.0, None))
    assert "not measured (portkey not run at concurrency 16)" in printed


def test_peer_ratios_are_for_one_worker() -> None:
    rows = summarize(_samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=500))
    checks = {c["target"]: c for c in check_targets(rows, 100.0, None, gateway_workers=2)}
    for name in ("json c16 req/s vs Portkey (x)", "json c16 req/s vs LiteLLM (x)"):
        assert checks[name]["met"] is None
        assert checks[name]["reason"] == "the gateway ran 2 workers; the target is for one"


def test_variants_are_rows_with_their_own_ratios() -> None:
    samples = _samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=500)
    samples[("json", "gateway-2w", 16)] = [_result(3_000, 4.0)] * 3
    rows = summarize(samples)
    targets = [r["target"] for r in rows if (r["mode"], r["concurrency"]) == ("json", 16)]
    assert targets == ["direct", "gateway", "gateway-2w", "litellm", "portkey"]
    assert _one(rows, "json", 16, "gateway-2w")["rps_vs_portkey"] == 6.0
    assert _one(rows, "json", 16, "gateway-2w")["rps_vs_litellm"] == 60.0
    assert "rps_vs_portkey" not in _one(rows, "json", 16, "litellm")


def test_durability_cost_per_store() -> None:
    samples = _samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.9)
    samples[("json", "gateway-batched", 1)] = [_result(2_500, 0.4)] * 3
    samples[("json", "gateway-pg", 1)] = [_result(900, 2.0)] * 3
    samples[("json", "gateway-pg-batched", 1)] = [_result(1_500, 0.7)] * 3
    entries = durability_cost(summarize(samples))
    assert [
        (e["store"], e["before_p50_ms"], e["after_p50_ms"], e["added_ms"]) for e in entries
    ] == [
        ("SQLite", 0.4, 1.0, 0.6),
        ("PostgreSQL", 0.7, 2.0, 1.3),
    ]
    assert "not measured" not in durability_table(entries)


def test_durability_cost_not_measured_says_why() -> None:
    samples = _samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.9)
    samples[("json", "gateway-batched", 1)] = [_result(2_500, 0.4)] * 3
    reasons = {
        "gateway-pg": "PostgreSQL could not start: no initdb",
        "gateway-pg-batched": "PostgreSQL could not start: no initdb",
    }
    sqlite, postgres = durability_cost(summarize(samples), reasons)
    assert sqlite["added_ms"] == 0.6
    assert postgres["added_ms"] is None
    assert postgres["reason"] == (
        "gateway-pg-batched: PostgreSQL could not start: no initdb; "
        "gateway-pg: PostgreSQL could not start: no initdb"
    )
    assert "PostgreSQL  not measured: gateway-pg-batched: PostgreSQL" in durability_table(
        [sqlite, postgres]
    )


def test_legend_lists_targets_in_table_order() -> None:
    printed = legend(
        {
            "portkey": "a bare relay: no auth, no stored keys, no usage recording",
            "gateway": "token auth, stored keys, usage recorded",
            "direct": "",
        }
    )
    assert printed.splitlines() == [
        "  gateway            token auth, stored keys, usage recorded",
        "  portkey            a bare relay: no auth, no stored keys, no usage recording",
    ]


def test_probe_accepts_the_upstreams_answers() -> None:
    assert answer_problem(200, COMPLETION, stream=False) is None
    assert answer_problem(200, STREAM, stream=True) is None


@pytest.mark.parametrize(
    ("status", "body", "stream", "problem"),
    [
        (500, '{"status":"failure","message":"Something went wrong"}', True, "HTTP 500: "),
        (200, '{"error": {"message": "no"}}', False, "not a chat completion"),
        (200, COMPLETION.replace("Hello!", "Bye!"), False, "the answer was 'Bye!"),
        (200, STREAM.replace("data: [DONE]\n\n", ""), True, "without data: [DONE]"),
        (200, STREAM.replace('"content":" today"', '"content":""'), True, "the stream carried"),
        (200, "", True, "the stream carried ''"),
    ],
)
def test_probe_names_what_is_wrong(status: int, body: str, stream: bool, problem: str) -> None:
    found = answer_problem(status, body, stream)
    assert found is not None
    assert found.startswith(problem) or problem in found


def test_cpu_per_request_is_the_median_of_the_rounds_and_shown() -> None:
    samples = _samples(gateway_rps=2_000, litellm_rps=50, added_ms=0.3, portkey_rps=800)
    samples[("json", "gateway", 16)] = [
        replace(result, cpu_us=cpu)
        for result, cpu in zip(
            samples[("json", "gateway", 16)], (900.0, 1_100.0, 1_000.0), strict=True
        )
    ]
    rows = summarize(samples)
    assert _one(rows, "json", 16, "gateway")["cpu_us"] == 1_000.0
    assert _one(rows, "json", 16, "portkey")["cpu_us"] is None  # not read: no column value
    line = next(line for line in table(rows).splitlines() if " 16 gateway " in line)
    assert " 1000 " in line
