"""Install LiteLLM's proxy into the running interpreter's environment.

``pip install "litellm[proxy]==VERSION"`` first. LiteLLM releases pin ``certifi`` and
``litellm-proxy-extras`` (database migrations, unused here) to versions newer than some
package indexes carry, which makes that fail on dependencies that do not matter to this
bench; then LiteLLM is installed without dependencies and its declared requirements (base
and ``proxy`` extra) are installed with those two unpinned. Exits non-zero, with pip's
output, if both fail.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

VERSION = "1.109.1"
_UNPINNED = {"certifi", "litellm-proxy-extras"}


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *args], capture_output=True, text=True
    )


def _requirements() -> list[str]:
    wanted: list[str] = []
    for text in metadata.requires("litellm") or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": "proxy"}):
            continue
        if req.name in _UNPINNED:
            wanted.append(req.name)
            continue
        req.marker = None
        wanted.append(str(req))
    return wanted


def main() -> int:
    first = _pip(f"litellm[proxy]=={VERSION}")
    print(first.stdout + first.stderr)
    if first.returncode == 0:
        return 0
    print("retrying with certifi and litellm-proxy-extras unpinned")
    bare = _pip("--no-deps", f"litellm=={VERSION}")
    print(bare.stdout + bare.stderr)
    if bare.returncode != 0:
        return 1
    deps = _pip(*_requirements())
    print(deps.stdout + deps.stderr)
    return deps.returncode


if __name__ == "__main__":
    sys.exit(main())
