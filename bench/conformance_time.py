"""The offline conformance suite's wall time per adapter (median of a few runs).

Each run is what ``nox -s conformance -- NAME`` runs, a fresh pytest process, so the
figure includes interpreter start-up.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run"]

ADAPTERS = ("openai", "anthropic", "fireworks")


def run(runs: int = 3, adapters: tuple[str, ...] = ADAPTERS) -> dict[str, object]:
    """Seconds per adapter, and whether every run passed."""
    seconds: dict[str, float] = {}
    passed: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "conformance.ini"
        ini.write_text("[pytest]\nxfail_strict = true\n", encoding="utf-8")
        for name in adapters:
            times = []
            ok = True
            for _ in range(runs):
                started = time.perf_counter()
                done = subprocess.run(
                    [
                        *(sys.executable, "-m", "pytest", "-q", "-c", str(ini)),
                        *("-p", "no:cacheprovider", "--report-dir", tmp),
                        *("--pyargs", "conformance.registered"),
                        f"--conformance-target={name}",
                    ],
                    capture_output=True,
                    text=True,
                )
                times.append(time.perf_counter() - started)
                ok = ok and done.returncode == 0
            seconds[name] = round(statistics.median(times), 2)
            passed[name] = ok
    return {"seconds": seconds, "passed": passed, "runs": runs}
