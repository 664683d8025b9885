"""Load generation with wrk: a fixed POST body, a fixed duration, one result line.

The Lua script reads the body from a file and prints the summary as one JSON line
(``BENCH {...}``): requests, duration, socket and status errors, and latency percentiles
in microseconds. Every target is loaded the same way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Result", "run_wrk"]

_SCRIPT = """\
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests":%d,"duration_us":%d,"socket_errors":%d,"status_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_us: float | None = None
    """CPU time (user and system) the target's process tree spent per request, in µs:
    a cost the machine's other load moves less than it moves req/s (``None``: not read,
    as for nginx, which the run does not start as a target of its own)."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def run_wrk(
    url: str,
    body: str,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    workdir: Path,
    threads: int = 1,
) -> Result:
    """Load ``url`` with ``connections`` keep-alive connections for ``seconds``."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    workdir.mkdir(parents=True, exist_ok=True)
    body_file = workdir / "body.json"
    body_file.write_text(body, encoding="utf-8")
    lines = "\n".join(f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in headers.items())
    script = workdir / "post.lua"
    script.write_text(_SCRIPT.format(body=body_file, headers=lines), encoding="utf-8")
    command = [
        *(wrk, "-t", str(min(threads, connections)), "-c", str(connections)),
        *("-d", f"{seconds:g}s", "--timeout", "10s", "-s", str(script), url),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line[6:])
            return Result(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                errors=data["socket_errors"] + data["status_errors"],
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result: {done.stdout}\n{done.stderr}")
