"""Medians, ratios, the printed table and ``bench-results/bench.json``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.load import Result

__all__ = ["check_targets", "summarize", "table", "targets_table", "write"]

TARGETS = ("direct", "gateway", "litellm")


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def summarize(samples: dict[tuple[str, str, int], list[Result]]) -> list[dict[str, Any]]:
    """One row per (mode, concurrency, target) with medians over rounds."""
    rows: list[dict[str, Any]] = []
    keys = sorted({(mode, c) for mode, _, c in samples}, key=lambda k: (k[0] != "json", k[1]))
    for mode, c in keys:
        base = samples.get((mode, "direct", c))
        base_p50 = _median([r.p50_ms for r in base]) if base else None
        by_target: dict[str, dict[str, Any]] = {}
        for target in TARGETS:
            results = samples.get((mode, target, c))
            if not results:
                continue
            p50 = _median([r.p50_ms for r in results])
            by_target[target] = {
                "mode": mode,
                "concurrency": c,
                "target": target,
                "rps": round(statistics.median(r.rps for r in results), 1),
                "p50_ms": p50,
                "p99_ms": _median([r.p99_ms for r in results]),
                "added_p50_ms": None if base_p50 is None else round(p50 - base_p50, 3),
                "errors": sum(r.errors for r in results),
                "rounds": len(results),
            }
        gateway, litellm = by_target.get("gateway"), by_target.get("litellm")
        if gateway and litellm and litellm["rps"]:
            gateway["rps_vs_litellm"] = round(gateway["rps"] / litellm["rps"], 1)
        rows += by_target.values()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'mode':<7}{'conc':>5} {'target':<8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'+p50 ms':>9}{'errors':>8}{'vs LiteLLM':>12}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        added = "" if row["added_p50_ms"] is None else f"{row['added_p50_ms']:.3f}"
        ratio = f"{row['rps_vs_litellm']:.1f}x" if "rps_vs_litellm" in row else ""
        lines.append(
            f"{row['mode']:<7}{row['concurrency']:>5} {row['target']:<8}{row['rps']:>10.1f}"
            f"{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}{added:>9}{row['errors']:>8}{ratio:>12}"
        )
    return "\n".join(lines)


MIN_RATIO_VS_LITELLM = 20.0
MAX_ADDED_P50_MS = 0.5
MAX_PEAK_RSS_MB = 150.0


def _row(rows: list[dict[str, Any]], mode: str, concurrency: int, target: str) -> dict[str, Any]:
    for row in rows:
        if (row["mode"], row["concurrency"], row["target"]) == (mode, concurrency, target):
            return row
    return {}


def check_targets(
    rows: list[dict[str, Any]],
    peak_rss_mb: float | None,
    sse_mb_per_s: dict[str, float] | None,
    framing_mb_per_s: dict[str, dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """Each speed target of the gateway with what this run measured.

    ``met`` is ``None`` when the run could not measure it (a peer missing, a concurrency
    not run): a target is never counted as met without its figure.
    """
    checks: list[dict[str, Any]] = []

    def add(name: str, measured: float | None, limit: float, higher_is_better: bool) -> None:
        met = None
        if measured is not None:
            met = measured >= limit if higher_is_better else measured <= limit
        sign = ">=" if higher_is_better else "<="
        checks.append(
            {"target": name, "measured": measured, "limit": f"{sign} {limit:g}", "met": met}
        )

    for mode in ("json", "stream"):
        ratio = _row(rows, mode, 16, "gateway").get("rps_vs_litellm")
        add(f"{mode} c16 req/s vs LiteLLM (x)", ratio, MIN_RATIO_VS_LITELLM, True)
    for mode in ("json", "stream"):
        added = _row(rows, mode, 1, "gateway").get("added_p50_ms")
        add(f"{mode} c1 added p50 (ms)", added, MAX_ADDED_P50_MS, False)
    add("gateway peak RSS (MB)", peak_rss_mb, MAX_PEAK_RSS_MB, False)
    ours = peers = None
    if sse_mb_per_s:
        ours = sse_mb_per_s.get("provara_kit.sse")
        others = [v for k, v in sse_mb_per_s.items() if k != "provara_kit.sse"]
        peers = max(others) if others else None
    ratio = None if ours is None or not peers else round(ours / peers, 2)
    add("SSE decode vs fastest peer (x)", ratio, 1.0, True)
    for framing, ours_name, peer_name, limit in FRAMING_TARGETS:
        rates = (framing_mb_per_s or {}).get(framing, {})
        mine, theirs = rates.get(ours_name), rates.get(peer_name)
        ratio = None if mine is None or not theirs else round(mine / theirs, 2)
        add(f"{framing} decode vs {peer_name.split(' ')[0]} (x)", ratio, limit, True)
    return checks


FRAMING_TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("ndjson", "provara_kit.framings", "httpx lines (ollama client)", 1.0),
    ("json-array", "provara_kit.framings + parse", "ijson items (parses)", 1.0),
    # The kit wraps botocore's decoder: the wrapper may cost at most a tenth.
    ("event-stream", "provara_kit.framings", "botocore EventStreamBuffer", 0.9),
)
"""Each framing decoder against its peer: ``(framing, ours, peer, minimum ratio)``."""


def targets_table(checks: list[dict[str, Any]]) -> str:
    lines = []
    for check in checks:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[check["met"]]
        measured = "-" if check["measured"] is None else f"{check['measured']:g}"
        lines.append(f"{check['target']:<34}{measured:>10}  {check['limit']:<9} {verdict}")
    return "\n".join(lines)


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
