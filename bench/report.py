"""Medians, ratios, the printed tables and ``bench-results/bench.json``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.load import Result

__all__ = [
    "check_targets",
    "durability_cost",
    "durability_table",
    "legend",
    "summarize",
    "table",
    "targets_table",
    "write",
]

TARGETS = (
    "direct",
    "gateway",
    "gateway-2w",
    "gateway-pg",
    "gateway-batched",
    "gateway-pg-batched",
    "gateway-quiet",
    "litellm",
    "portkey",
)
"""Every target in the order the tables list them; ``gateway*`` are the reference gateway."""

PEERS = {"litellm": "LiteLLM", "portkey": "Portkey"}

MAX_ERROR_SHARE = 0.01
"""A target whose failed requests exceed this share of a cell is not measured there."""


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _order(target: str) -> int:
    return TARGETS.index(target) if target in TARGETS else len(TARGETS)


def summarize(
    samples: dict[tuple[str, str, int], list[Result]],
    unmeasured: dict[tuple[str, str, int], str] | None = None,
) -> list[dict[str, Any]]:
    """One row per (mode, concurrency, target) with medians over rounds.

    A cell in ``unmeasured`` (its reason: the probe's answer was wrong), one that
    answered nothing or one whose failed requests exceed :data:`MAX_ERROR_SHARE` is a
    row with ``rps`` ``None`` and its ``reason``: never a figure.
    """
    unmeasured = unmeasured or {}
    cells = set(samples) | set(unmeasured)
    keys = sorted({(mode, c) for mode, _, c in cells}, key=lambda k: (k[0] != "json", k[1]))
    rows: list[dict[str, Any]] = []
    for mode, c in keys:
        base = samples.get((mode, "direct", c))
        base_p50 = _median([r.p50_ms for r in base]) if base else None
        by_target: dict[str, dict[str, Any]] = {}
        names = sorted({t for m, t, cc in cells if (m, cc) == (mode, c)}, key=_order)
        for target in names:
            row: dict[str, Any] = {"mode": mode, "concurrency": c, "target": target}
            results = samples.get((mode, target, c), [])
            errors = sum(r.errors for r in results)
            requests = sum(r.requests for r in results)
            reason = unmeasured.get((mode, target, c))
            if reason is None and results and requests == 0:
                reason = "no request was answered"
            if reason is None and errors > MAX_ERROR_SHARE * max(requests, 1):
                reason = f"{errors} of {requests} requests failed"
            if reason is not None or not results:
                by_target[target] = {**row, "rps": None, "reason": reason or "not run"}
                continue
            p50 = _median([r.p50_ms for r in results])
            cpu = [r.cpu_us for r in results if r.cpu_us is not None]
            by_target[target] = {
                **row,
                "rps": round(statistics.median(r.rps for r in results), 1),
                "p50_ms": p50,
                "p99_ms": _median([r.p99_ms for r in results]),
                "added_p50_ms": None if base_p50 is None else round(p50 - base_p50, 3),
                "cpu_us": _median(cpu) if cpu else None,
                "errors": errors,
                "rounds": len(results),
            }
        for target, row in by_target.items():
            if not target.startswith("gateway") or row["rps"] is None:
                continue
            for peer in PEERS:
                theirs = by_target.get(peer, {}).get("rps")
                if theirs:
                    # Kept to 3 places: a ratio of 1.98 must not be judged as 2.0.
                    row[f"rps_vs_{peer}"] = round(row["rps"] / theirs, 3)
        rows += by_target.values()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'mode':<7}{'conc':>5} {'target':<19}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'+p50 ms':>9}{'cpu us':>9}{'errors':>8}{'vs LiteLLM':>12}{'vs Portkey':>12}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        start = f"{row['mode']:<7}{row['concurrency']:>5} {row['target']:<19}"
        if row["rps"] is None:
            lines.append(f"{start}not measured: {row['reason']}")
            continue
        added = "" if row["added_p50_ms"] is None else f"{row['added_p50_ms']:.3f}"
        cpu = "" if row.get("cpu_us") is None else f"{row['cpu_us']:.0f}"
        ratios = "".join(
            f"{(f'{row[key]:.1f}x' if key in row else ''):>12}"
            for key in (f"rps_vs_{peer}" for peer in PEERS)
        )
        lines.append(
            f"{start}{row['rps']:>10.1f}{row['p50_ms']:>9.3f}{row['p99_ms']:>9.3f}"
            f"{added:>9}{cpu:>9}{row['errors']:>8}{ratios}"
        )
    return "\n".join(lines)


def legend(features: dict[str, str]) -> str:
    """What each target does for a request, one line each, in table order."""
    return "\n".join(
        f"  {name:<19}{features[name]}" for name in sorted(features, key=_order) if features[name]
    )


DURABILITY = (
    ("SQLite", "gateway-batched", "gateway"),
    ("PostgreSQL", "gateway-pg-batched", "gateway-pg"),
)
"""``(store, target with PROVARA_USAGE_DURABLE=0, target with the default 1)``."""


def durability_cost(
    rows: list[dict[str, Any]], reasons: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Per store, the non-streaming p50 at concurrency 1 before (usage written in batches)
    and after (answered once its usage row is committed), and what durability adds.

    ``reasons`` names why a target has no row (it could not start); a store whose
    figures are missing has ``added_ms`` ``None`` and a ``reason``.
    """
    reasons = reasons or {}
    found: list[dict[str, Any]] = []
    for store, before_name, after_name in DURABILITY:
        entry: dict[str, Any] = {"store": store, "before_p50_ms": None, "after_p50_ms": None}
        why = []
        for key, name in (("before_p50_ms", before_name), ("after_p50_ms", after_name)):
            row = _row(rows, "json", 1, name)
            if row.get("rps") is not None:
                entry[key] = row["p50_ms"]
            else:
                why.append(f"{name}: {row.get('reason') or reasons.get(name, 'not run')}")
        if why:
            entry |= {"added_ms": None, "reason": "; ".join(why)}
        else:
            entry["added_ms"] = round(entry["after_p50_ms"] - entry["before_p50_ms"], 3)
        found.append(entry)
    return found


def durability_table(entries: list[dict[str, Any]]) -> str:
    head = f"{'store':<12}{'batched p50':>13}{'durable p50':>13}{'added ms':>10}"
    lines = [head, "-" * len(head)]
    for entry in entries:
        if entry["added_ms"] is None:
            lines.append(f"{entry['store']:<12}not measured: {entry['reason']}")
            continue
        lines.append(
            f"{entry['store']:<12}{entry['before_p50_ms']:>13.3f}{entry['after_p50_ms']:>13.3f}"
            f"{entry['added_ms']:>10.3f}"
        )
    return "\n".join(lines)


MIN_RATIO_VS_LITELLM = 20.0
MIN_RATIO_VS_PORTKEY = 2.0
MAX_ADDED_P50_MS = 0.5
MAX_PEAK_RSS_MB = 150.0


def _row(rows: list[dict[str, Any]], mode: str, concurrency: int, target: str) -> dict[str, Any]:
    for row in rows:
        if (row["mode"], row["concurrency"], row["target"]) == (mode, concurrency, target):
            return row
    return {}


def _ratio_vs(
    rows: list[dict[str, Any]],
    mode: str,
    peer: str,
    reasons: dict[str, str],
    gateway_workers: int,
) -> tuple[float | None, str | None]:
    """The gateway's req/s over ``peer``'s at concurrency 16, or why there is none."""
    if gateway_workers != 1:
        return None, f"the gateway ran {gateway_workers} workers; the target is for one"
    ours, theirs = _row(rows, mode, 16, "gateway"), _row(rows, mode, 16, peer)
    for name, row in (("gateway", ours), (peer, theirs)):
        if not row:
            return None, reasons.get(name, f"{name} not run at concurrency 16")
        if row["rps"] is None:
            return None, f"{name}: {row['reason']}"
    ratio = ours.get(f"rps_vs_{peer}")
    return ratio, None if ratio is not None else f"{peer} answered no request"


def check_targets(
    rows: list[dict[str, Any]],
    peak_rss_mb: float | None,
    sse_mb_per_s: dict[str, float] | None,
    framing_mb_per_s: dict[str, dict[str, float]] | None = None,
    *,
    reasons: dict[str, str] | None = None,
    gateway_workers: int = 1,
) -> list[dict[str, Any]]:
    """Each speed target of the gateway with what this run measured.

    ``met`` is ``None`` when the run could not measure it (a peer missing or failing, a
    concurrency not run), with the ``reason`` when one is known (``reasons``: why a
    target has no rows at all): a target is never counted as met without its figure.
    The ratios are for the default gateway: one worker, SQLite, durable usage.
    """
    reasons = reasons or {}
    checks: list[dict[str, Any]] = []

    def add(
        name: str,
        measured: float | None,
        limit: float,
        higher_is_better: bool,
        reason: str | None = None,
    ) -> None:
        met = None
        if measured is not None:
            met = measured >= limit if higher_is_better else measured <= limit
        sign = ">=" if higher_is_better else "<="
        check = {"target": name, "measured": measured, "limit": f"{sign} {limit:g}", "met": met}
        if met is None and reason:
            check["reason"] = reason
        checks.append(check)

    ratio, reason = _ratio_vs(rows, "json", "portkey", reasons, gateway_workers)
    add("json c16 req/s vs Portkey (x)", ratio, MIN_RATIO_VS_PORTKEY, True, reason)
    for mode in ("json", "stream"):
        ratio, reason = _ratio_vs(rows, mode, "litellm", reasons, gateway_workers)
        add(f"{mode} c16 req/s vs LiteLLM (x)", ratio, MIN_RATIO_VS_LITELLM, True, reason)
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
        if check["met"] is None and check.get("reason"):
            verdict += f" ({check['reason']})"
        measured = "-" if check["measured"] is None else f"{check['measured']:g}"
        lines.append(f"{check['target']:<34}{measured:>10}  {check['limit']:<9} {verdict}")
    return "\n".join(lines)


def write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
