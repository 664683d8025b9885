"""``python -m bench``: run everything, print the tables, write ``bench-results/bench.json``.

Targets alternate inside every round (direct, the gateway and its variants, LiteLLM and
Portkey for each mode and concurrency) so drift on the machine hits every side; medians
over rounds are reported. Each target answers one checked request per mode first: one
whose answer is wrong is reported as not measured, with the reason, and not loaded. Then
each target is loaded once per mode (``--prewarm`` seconds, unmeasured) so that Node's JIT
and every side's connection pools are warm before the first measured round.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import conformance_time, framing_decoders, portkey, sse_decoders, transports
from bench.load import Result, run_wrk
from bench.probe import new_error_line, probe
from bench.report import (
    check_targets,
    durability_cost,
    durability_table,
    legend,
    summarize,
    table,
    targets_table,
    write,
)
from bench.servers import (
    Server,
    Unavailable,
    cpu_seconds,
    direct,
    peak_rss_mb,
    start_gateway,
    start_litellm,
)
from bench.upstream import Upstream
from bench.variants import VARIANTS, start_variants


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=10, help="seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per run (2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument(
        "--prewarm",
        type=float,
        default=5,
        help="seconds of load per target and mode before the first round (5): JIT compilers "
        "and connection pools warm up before anything is measured",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument("--no-portkey", action="store_true", help="skip Portkey's gateway")
    parser.add_argument(
        "--no-variants",
        action="store_true",
        help="skip the gateway's other configurations (2 workers, PostgreSQL, batched usage, "
        "telemetry off)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        choices=sorted(VARIANTS),
        metavar="NAME",
        help="measure only this configuration of the gateway's others (repeatable): "
        + ", ".join(VARIANTS),
    )
    parser.add_argument("--no-extras", action="store_true", help="skip SSE and conformance")
    parser.add_argument(
        "--cache",
        type=Path,
        default=portkey.default_cache(),
        help="where Portkey's gateway is installed (~/.cache/provara-bench)",
    )
    parser.add_argument("--output", type=Path, default=Path("bench-results/bench.json"))
    return parser


def _cells(name: str, concurrency: list[int]) -> list[tuple[str, int]]:
    """The (mode, concurrency) cells a target is loaded in."""
    wanted = [(mode, c) for mode in ("json", "stream") for c in concurrency]
    if name in VARIANTS:
        return [cell for cell in wanted if cell in VARIANTS[name].cells]
    return wanted


def _probe_all(
    servers: dict[str, Server], concurrency: list[int]
) -> dict[tuple[str, str, int], str]:
    """One checked request per target and mode; the cells of a wrong answer, with why."""
    unmeasured: dict[tuple[str, str, int], str] = {}
    for name, server in servers.items():
        for stream in (False, True):
            mode = "stream" if stream else "json"
            cells = [c for m, c in _cells(name, concurrency) if m == mode]
            if not cells:
                continue
            offset = server.log.stat().st_size if server.log and server.log.exists() else 0
            url = server.stream_url if stream else server.url
            reason = probe(url, server.body(stream), server.request_headers(stream), stream)
            if reason is None:
                continue
            logged = new_error_line(server.log, offset)
            if logged:
                reason += f"; its log: {logged}"
            print(f"{name} {mode}: not measured ({reason})", file=sys.stderr)
            unmeasured |= {(mode, name, c): reason for c in cells}
    return unmeasured


def _start_peer(name: str, start: Callable[[], Server], missing: dict[str, str]) -> Server | None:
    try:
        return start()
    except Unavailable as exc:
        missing[name] = str(exc)
        print(f"{name} is missing: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="provara-bench-"))
    missing: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        upstream = Upstream(work / "nginx", _free_port(), _free_port())
        upstream.start()
        stack.callback(upstream.stop)
        servers: dict[str, Server] = {"direct": direct(upstream)}
        time.sleep(0.3)
        try:
            servers["gateway"] = start_gateway(
                upstream, work / "gateway", _free_port(), workers=args.workers
            )
        except Unavailable as exc:
            print(f"gateway could not start: {exc}", file=sys.stderr)
            return 1
        stack.callback(servers["gateway"].stop)
        if args.no_variants:
            missing |= {name: "skipped (--no-variants)" for name in VARIANTS}
        else:
            names = args.variant or list(VARIANTS)
            missing |= {name: "skipped (--variant)" for name in VARIANTS if name not in names}
            started, failed = start_variants(
                upstream, work, names, [_free_port() for _ in names], stack
            )
            servers |= started
            missing |= failed
            for name, reason in failed.items():
                print(f"{name} is missing: {reason}", file=sys.stderr)
        peers: dict[str, Callable[[], Server]] = {}
        if args.no_litellm:
            missing["litellm"] = "skipped (--no-litellm)"
        else:
            peers["litellm"] = lambda: start_litellm(upstream, work / "litellm", _free_port())
        if args.no_portkey:
            missing["portkey"] = "skipped (--no-portkey)"
        else:
            peers["portkey"] = lambda: portkey.start_portkey(
                upstream, work / "portkey", _free_port(), args.cache
            )
        for name, start in peers.items():
            server = _start_peer(name, start, missing)
            if server is not None:
                stack.callback(server.stop)
                servers[name] = server
        unmeasured = _probe_all(servers, args.concurrency)
        planned = [
            (mode, c, name)
            for mode in ("json", "stream")
            for c in args.concurrency
            for name in servers
            if (mode, c) in _cells(name, args.concurrency) and (mode, name, c) not in unmeasured
        ]
        warm = {(mode, name): c for mode, c, name in planned}  # the highest concurrency
        minutes = len(warm) * args.prewarm / 60
        minutes += len(planned) * (args.warmup + args.duration) * args.rounds / 60
        print(f"{len(planned)} runs per round, {args.rounds} rounds: about {minutes:.0f} min")
        if args.prewarm:
            for (mode, name), conns in warm.items():
                server, stream = servers[name], mode == "stream"
                run_wrk(
                    server.stream_url if stream else server.url,
                    server.body(stream),
                    server.request_headers(stream),
                    connections=conns,
                    seconds=args.prewarm,
                    workdir=work / "wrk",
                )
        samples: dict[tuple[str, str, int], list[Result]] = {}
        for round_ in range(1, args.rounds + 1):
            for mode, conns, name in planned:
                server = servers[name]
                stream = mode == "stream"
                url = server.stream_url if stream else server.url
                body, headers = server.body(stream), server.request_headers(stream)
                load = {"connections": conns, "workdir": work / "wrk"}
                if args.warmup:
                    run_wrk(url, body, headers, seconds=args.warmup, **load)
                cpu_before = cpu_seconds(server.process)
                result = run_wrk(url, body, headers, seconds=args.duration, **load)
                cpu_after = cpu_seconds(server.process)
                if cpu_before is not None and cpu_after is not None and result.requests:
                    per_request = (cpu_after - cpu_before) / result.requests * 1e6
                    result = dataclasses.replace(result, cpu_us=round(per_request, 1))
                samples.setdefault((mode, name, conns), []).append(result)
                cpu = "" if result.cpu_us is None else f"  cpu {result.cpu_us:7.1f} us/req"
                print(
                    f"round {round_} {mode:<6} c={conns:<3} {name:<19}"
                    f"{result.rps:9.1f} req/s  p50 {result.p50_ms:8.3f} ms  "
                    f"p99 {result.p99_ms:8.3f} ms  errors {result.errors}{cpu}",
                    flush=True,
                )
        rss = {name: peak_rss_mb(server.process) for name, server in servers.items()}
        transport_rates = None
        if not args.no_extras:
            transport_rates = transports.run(
                upstream.base_url(stream=False), upstream.base_url(stream=True)
            )
    rows = summarize(samples, unmeasured)
    print()
    print(table(rows))
    for name, reason in missing.items():
        print(f"{name}: missing ({reason})")
    print("what each target does for a request:")
    print(legend({name: server.features for name, server in servers.items()}))
    print(
        "peak RSS: "
        + ", ".join(f"{name} {mb:.1f} MB" for name, mb in rss.items() if mb is not None)
    )
    durability = durability_cost(rows, missing)
    print()
    print("durable usage, non-streaming p50 at concurrency 1 (ms):")
    print(durability_table(durability))
    extras: dict[str, Any] = {}
    if transport_rates is not None:
        extras["transports"] = transport_rates
        print("adapter calls per second by transport (in process, best of 3):")
        for name, rates in transport_rates["requests_per_s"].items():
            print(f"  {name:<22} " + "  ".join(f"{k} {v:8.1f}" for k, v in rates.items()))
        for name, reason in transport_rates["missing"].items():
            print(f"  {name:<22} missing ({reason})")
    if not args.no_extras:
        extras["sse_decoders"] = sse_decoders.run()
        print(
            "SSE decoding (MB/s, 5 MB stream in 4 KiB chunks):", extras["sse_decoders"]["mb_per_s"]
        )
        extras["framing_decoders"] = framing_decoders.run()
        print("framing decoding (MB/s, about 5 MB in 4 KiB reads):")
        for framing, figures in extras["framing_decoders"]["framings"].items():
            rates = "  ".join(f"{k} {v}" for k, v in figures["mb_per_s"].items())
            missing_peers = "  ".join(f"{k}: {v}" for k, v in figures["missing"].items())
            print(f"  {framing:<13} {rates}  {missing_peers}".rstrip())
        extras["conformance_seconds"] = conformance_time.run()
        print("offline conformance suite, s per adapter:", extras["conformance_seconds"]["seconds"])
    sse_rates = extras.get("sse_decoders", {}).get("mb_per_s")
    framing_rates = {
        framing: figures["mb_per_s"]
        for framing, figures in extras.get("framing_decoders", {}).get("framings", {}).items()
    }
    targets = check_targets(
        rows,
        rss.get("gateway"),
        sse_rates,
        framing_rates,
        reasons=missing,
        gateway_workers=args.workers,
    )
    print()
    print("targets (one run, this machine):")
    print(targets_table(targets))
    write(
        args.output,
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": _machine(),
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "prewarm_s": args.prewarm,
                "gateway_workers": args.workers,
                "load_tool": "wrk",
                "upstream": "nginx",
            },
            "versions": {n: s.extra for n, s in servers.items() if s.extra},
            "features": {n: s.features for n, s in servers.items()},
            "missing": missing,
            "results": rows,
            "durability": durability,
            "peak_rss_mb": {n: None if v is None else round(v, 1) for n, v in rss.items()},
            "targets": targets,
            **extras,
        },
    )
    print(f"wrote {args.output}; the servers' logs are in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
