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
import pytest

from provara_kit.vault import generate_master_key
from reference_gateway.api.http import MAX_JSON_DEPTH

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


# -- nesting bombs ------------------------------------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _nested(levels: int) -> bytes:
    """JSON arrays nested ``levels`` deep: ``[[[...]]]``."""
    return b"[" * levels + b"]" * levels


def _chat_body(field: str, levels: int) -> bytes:
    """A chat request with ``levels`` of arrays in ``field``; the body counts as a level, so
    the whole body nests ``levels + 1`` deep (``+ 3``/``+ 6`` for the deeper fields)."""
    bomb = _nested(levels)
    if field == "metadata":
        return (
            b'{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"metadata":%s}'
            % (bomb)
        )
    if field == "messages":
        return b'{"model":"local/echo","messages":[{"role":"user","content":"hi","x":%s}]}' % bomb
    return (
        b'{"model":"local/echo","messages":[{"role":"user","content":"hi"}],"tools":[{"type":'
        b'"function","function":{"name":"f","parameters":{"type":"object","default":%s}}}]}' % bomb
    )


def _assert_too_deep(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "nesting_too_deep"
    assert error["param"] == param
    assert f"more than {MAX_JSON_DEPTH} levels deep" in error["message"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("field", ["metadata", "messages", "tools"])
def test_a_nesting_bomb_in_a_chat_request_is_a_400(
    http: httpx.Client, token: str, field: str, stream: bool
) -> None:
    body = _chat_body(field, 1_000)
    if stream:
        body = body[:-1] + b',"stream":true}'
    response = http.post(
        "/v1/chat/completions",
        content=body,
        headers={**auth(token), "content-type": "application/json"},
    )
    _assert_too_deep(response, field)


def test_the_nesting_limit_is_exact(http: httpx.Client, token: str) -> None:
    headers = {**auth(token), "content-type": "application/json"}
    at_limit = http.post(
        "/v1/chat/completions", content=_chat_body("metadata", MAX_JSON_DEPTH - 1), headers=headers
    )
    assert at_limit.status_code == 200, at_limit.text
    over = http.post(
        "/v1/chat/completions", content=_chat_body("metadata", MAX_JSON_DEPTH), headers=headers
    )
    _assert_too_deep(over, "metadata")


def test_a_nesting_bomb_in_feedback_is_a_400(http: httpx.Client, token: str) -> None:
    body = b'{"completion_id":"chatcmpl-x","score":1,"comment":%s}' % _nested(1_000)
    response = http.post(
        "/v1/feedback", content=body, headers={**auth(token), "content-type": "application/json"}
    )
    _assert_too_deep(response, "comment")


@pytest.mark.parametrize("path", ["/api/provider-keys", "/api/provider-keys/ACME_API_KEY/rotate"])
def test_a_nesting_bomb_in_the_keys_api_is_a_400(http: httpx.Client, token: str, path: str) -> None:
    body = b'{"name":"ACME_API_KEY","value":%s}' % _nested(1_000)
    response = http.post(
        path, content=body, headers={**auth(token), "content-type": "application/json"}
    )
    _assert_too_deep(response, "value")
    assert http.get("/api/provider-keys", headers=auth(token)).json()["data"] == []
