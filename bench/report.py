"""Medians, ratios, the printed table and ``bench-results/bench.json``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.load import Result

__all__ = ["summarize", "table", "write"]

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


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
