"""Hostile input and operations: nesting bombs, cross-site posts, leaked upstream addresses,
the access log, and provider clients retired by a key rotation."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from provara_kit.vault import generate_master_key

MESSAGES = [{"role": "user", "content": "Hello"}]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the access log ---------------------------------------------------------------------------


def test_serve_writes_the_access_log_with_the_local_provider_on(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PROVARA_MASTER_KEY": generate_master_key(),
        "PROVARA_DISCOVER_MODELS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROVARA_LOCAL_UPSTREAM", None)  # the default: on
    command = [
        sys.executable,
        "-m",
        "reference_gateway.cli",
        "serve",
        "--port",
        str(port),
        "--database",
        str(tmp_path / "gateway.db"),
    ]
    # uvicorn writes the access log to stdout, everything else to stderr: read both.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                healthy = httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the gateway did not start") from None
                time.sleep(0.1)
        assert healthy.status_code == 200
        refused = httpx.post(f"{url}/v1/chat/completions", json={}, timeout=5)
        assert refused.status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert "local upstream (provider 'local')" in output  # the local provider was on
    assert '"GET /healthz HTTP/1.1" 200' in output, output
    assert '"POST /v1/chat/completions HTTP/1.1" 401' in output, output
