"""The mock upstream: nginx on loopback answering a fixed chat completion.

nginx runs in the foreground (``daemon off``, one process) with a generated configuration
in a temporary directory. ``POST /v1/chat/completions`` answers a fixed completion, or a
fixed SSE stream on a second port (``stream_port``): the gateway and LiteLLM see two
providers, one answering completions and one answering streams, so nginx never has to
look at a request body.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

__all__ = ["COMPLETION", "MODEL", "STREAM", "TEXT", "Upstream"]

MODEL = "bench-model"
TEXT = "Hello! How can I help you today?"
"""The assistant text of both the completion and the stream."""

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1727346172,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
    },
    separators=(",", ":"),
)


def _chunk(delta: dict[str, object], finish: str | None, usage: object = None) -> str:
    body: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1727346172,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        body = {**body, "choices": [], "usage": usage}
    return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"


_WORDS = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
STREAM = (
    _chunk({"role": "assistant", "content": ""}, None)
    + "".join(_chunk({"content": word}, None) for word in _WORDS)
    + _chunk({}, "stop")
    + _chunk({}, None, usage={"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18})
    + "data: [DONE]\n\n"
)

_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 '{completion}';
        }}
        location = /v1/models {{
            default_type application/json;
            return 200 '{models}';
        }}
    }}
    server {{
        listen 127.0.0.1:{stream_port};
        location = /v1/chat/completions {{
            default_type text/event-stream;
            return 200 '{stream}';
        }}
        location = /v1/models {{
            default_type application/json;
            return 200 '{models}';
        }}
    }}
}}
"""
_MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


class Upstream:
    """nginx serving the fixed answers on ``127.0.0.1:port`` (completions) and
    ``127.0.0.1:stream_port`` (streams) until :meth:`stop`."""

    def __init__(self, root: Path, port: int, stream_port: int) -> None:
        self.root = root
        self.port = port
        self.stream_port = stream_port
        self.process: subprocess.Popen[bytes] | None = None

    def base_url(self, stream: bool) -> str:
        return f"http://127.0.0.1:{self.stream_port if stream else self.port}/v1"

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "nginx.conf"
        text = _CONFIG.format(
            root=self.root,
            port=self.port,
            stream_port=self.stream_port,
            completion=COMPLETION,
            stream=STREAM,
            models=_MODELS,
        )
        config.write_text(text, encoding="utf-8")
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.root), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "stderr.log", "wb"),  # noqa: SIM115
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
