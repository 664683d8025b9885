"""Tests for bench.report: medians, ratios and the speed targets' verdicts."""

from __future__ import annotations

from bench.load import Result
from bench.report import check_targets, summarize, targets_table


def _result(rps: float, p50_ms: float) -> Result:
    return Result(requests=int(rps * 10), seconds=10.0, errors=0, p50_ms=p50_ms, p99_ms=p50_ms * 3)


def _samples(
    gateway_rps: float, litellm_rps: float | None, added_ms: float
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
    rows = summarize(_samples(gateway_rps=900, litellm_rps=50, added_ms=0.7))
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
    assert verdicts["gateway peak RSS (MB)"] is None
    assert verdicts["SSE decode vs fastest peer (x)"] is None
    assert verdicts["json-array decode vs ijson (x)"] is None
    assert verdicts["json c1 added p50 (ms)"] is True
