"""``python -m bench``: run everything, print the tables, write ``bench-results/bench.json``.

Targets alternate inside every round (direct, gateway, LiteLLM for each mode and
concurrency) so drift on the machine hits every side; medians over rounds are reported.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import conformance_time, framing_decoders, sse_decoders, transports
from bench.load import Result, run_wrk
from bench.report import check_targets, summarize, table, targets_table, write
from bench.servers import Server, Unavailable, direct, peak_rss_mb, start_gateway, start_litellm
from bench.upstream import Upstream


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
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument("--no-extras", action="store_true", help="skip SSE and conformance")
    parser.add_argument("--output", type=Path, default=Path("bench-results/bench.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="provara-bench-"))
    upstream = Upstream(work / "nginx", _free_port(), _free_port())
    upstream.start()
    servers: dict[str, Server] = {"direct": direct(upstream)}
    missing: dict[str, str] = {}
    try:
        time.sleep(0.3)
        try:
            servers["gateway"] = start_gateway(
                upstream, work / "gateway", _free_port(), args.workers
            )
        except Unavailable as exc:
            print(f"gateway could not start: {exc}", file=sys.stderr)
            return 1
        if args.no_litellm:
            missing["litellm"] = "skipped (--no-litellm)"
        else:
            try:
                servers["litellm"] = start_litellm(upstream, work / "litellm", _free_port())
            except Unavailable as exc:
                missing["litellm"] = str(exc)
                print(f"LiteLLM's proxy is missing: {exc}", file=sys.stderr)
        samples: dict[tuple[str, str, int], list[Result]] = {}
        for round_ in range(1, args.rounds + 1):
            for stream in (False, True):
                mode = "stream" if stream else "json"
                for conns in args.concurrency:
                    for name, server in servers.items():
                        url = server.stream_url if stream else server.url
                        body = server.body(stream)
                        load = {"connections": conns, "workdir": work / "wrk"}
                        if args.warmup:
                            run_wrk(url, body, server.headers, seconds=args.warmup, **load)
                        result = run_wrk(url, body, server.headers, seconds=args.duration, **load)
                        samples.setdefault((mode, name, conns), []).append(result)
                        print(
                            f"round {round_} {mode:<6} c={conns:<3} {name:<8} "
                            f"{result.rps:9.1f} req/s  p50 {result.p50_ms:8.3f} ms  "
                            f"p99 {result.p99_ms:8.3f} ms  errors {result.errors}",
                            flush=True,
                        )
        rss = {name: peak_rss_mb(server.process) for name, server in servers.items()}
        transport_rates = None
        if not args.no_extras:
            transport_rates = transports.run(
                upstream.base_url(stream=False), upstream.base_url(stream=True)
            )
    finally:
        for server in servers.values():
            server.stop()
        upstream.stop()
    rows = summarize(samples)
    print()
    print(table(rows))
    for name, reason in missing.items():
        print(f"{name}: missing ({reason})")
    print(
        "peak RSS: "
        + ", ".join(f"{name} {mb:.1f} MB" for name, mb in rss.items() if mb is not None)
    )
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
    targets = check_targets(rows, rss.get("gateway"), sse_rates, framing_rates)
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
                "gateway_workers": args.workers,
                "load_tool": "wrk",
                "upstream": "nginx",
            },
            "versions": {n: s.extra for n, s in servers.items() if s.extra},
            "missing": missing,
            "results": rows,
            "peak_rss_mb": {n: None if v is None else round(v, 1) for n, v in rss.items()},
            "targets": targets,
            **extras,
        },
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
