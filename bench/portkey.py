"""Portkey's open-source gateway (``@portkey-ai/gateway`` from npm) as a peer.

:func:`install` puts the pinned release into a cache directory with
``npm install --prefix``; :func:`start_portkey` runs its ``build/start-server.js`` with
Node on a loopback port. Portkey is a bare relay here: the client names the provider
(``x-portkey-provider: openai``) and the upstream (``x-portkey-custom-host``) in headers
on every request, the way its docs describe calling a self-hosted OpenAI-compatible API;
it checks no token, stores no key and records no usage.

Nothing it runs reaches past loopback: it is started headless (no UI), with an
environment of ``PATH``, ``HOME``, ``NODE_ENV=production`` and
``TRUSTED_CUSTOM_HOSTS=127.0.0.1`` only (no proxy variables, no Redis), and a preloaded
script binds its listener to 127.0.0.1 (``start-server.js`` passes no host, which would
listen on every interface). The release sends no telemetry; its only outbound calls are
to the upstream a request names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.servers import Server, Unavailable, wait_ready
from bench.upstream import MODEL, Upstream

__all__ = ["VERSION", "default_cache", "install", "start_portkey"]

VERSION = "1.15.2"
_PACKAGE = "@portkey-ai/gateway"

# start-server.js calls serve({fetch, port}) with no hostname, and @hono/node-server then
# listens on every interface: pin a listen(port) without a host to loopback.
_LOOPBACK = """\
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, host, ...rest) {
  if (typeof port === "number" && (host === undefined || typeof host === "function")) {
    if (typeof host === "function") rest.unshift(host);
    host = "127.0.0.1";
  }
  return listen.call(this, port, host, ...rest);
};
"""


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/provara-bench`` (``~/.cache/provara-bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "provara-bench"


def _package_dir(prefix: Path) -> Path:
    return prefix / "node_modules" / "@portkey-ai" / "gateway"


def _installed_version(prefix: Path) -> str | None:
    try:
        data = json.loads((_package_dir(prefix) / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = data.get("version")
    return version if isinstance(version, str) else None


def install(cache: Path) -> Path:
    """The pinned release's ``start-server.js``, installed under ``cache`` if not there yet.

    Installs into a fresh directory and moves it into place only when npm succeeded, so
    an interrupted install is never taken for a complete one. Lifecycle scripts are not
    run (the release's only one applies patches it does not ship).
    """
    prefix = cache / f"portkey-{VERSION}"
    if _installed_version(prefix) != VERSION:
        npm = shutil.which("npm")
        if npm is None:
            raise Unavailable("npm is not installed (apt-get install nodejs npm)")
        staging = cache / f"portkey-{VERSION}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        done = subprocess.run(
            [
                *(npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund"),
                *("--ignore-scripts", "--loglevel", "error", f"{_PACKAGE}@{VERSION}"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or _installed_version(staging) != VERSION:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise Unavailable(f"npm install {_PACKAGE}@{VERSION} failed: {' '.join(lines[-3:])}")
        shutil.rmtree(prefix, ignore_errors=True)
        staging.rename(prefix)
    return _package_dir(prefix) / "build" / "start-server.js"


def _dependency_version(script: Path, name: str) -> str:
    prefix = script.parents[4]  # <prefix>/node_modules/@portkey-ai/gateway/build/<script>
    try:
        text = (prefix / "node_modules" / name / "package.json").read_text(encoding="utf-8")
        return str(json.loads(text)["version"])
    except (OSError, ValueError, KeyError):
        return "?"


def start_portkey(upstream: Upstream, workdir: Path, port: int, cache: Path) -> Server:
    """Portkey's gateway relaying both models to the mock upstream, on ``127.0.0.1:port``."""
    node = shutil.which("node")
    if node is None:
        raise Unavailable("node is not installed (apt-get install nodejs npm)")
    script = install(cache)
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    workdir.mkdir(parents=True, exist_ok=True)
    preload = workdir / "loopback.cjs"
    preload.write_text(_LOOPBACK, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "NODE_ENV": "production",
        "TRUSTED_CUSTOM_HOSTS": "127.0.0.1",
    }
    log = workdir / "portkey.log"
    process = subprocess.Popen(
        [node, "--require", str(preload), str(script), f"--port={port}", "--headless"],
        env=env,
        stdout=open(log, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    wait_ready(f"http://127.0.0.1:{port}/", process, log, 60)
    # It answers before its start-up banner is done; wait for the banner so that the
    # banner's spinner (no newline) does not run into the log line of a first error.
    deadline = time.monotonic() + 10
    while b"Ready for connections" not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.1)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    def relay(stream: bool) -> dict[str, str]:
        return {
            "Authorization": "Bearer sk-bench-operator",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": upstream.base_url(stream=stream),
        }

    return Server(
        name="portkey",
        url=url,
        stream_url=url,
        headers=relay(False),
        stream_headers=relay(True),
        models=(MODEL, MODEL),
        process=process,
        log=log,
        extra={
            "version": VERSION,
            "node": node_version,
            "hono": _dependency_version(script, "hono"),
        },
        features=(
            f"Portkey gateway {VERSION} on Node {node_version.lstrip('v')}, a bare relay: "
            "no auth, no stored keys, no usage recording"
        ),
    )
