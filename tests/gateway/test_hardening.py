"""Hostile input and operations: nesting bombs, cross-site posts, leaked upstream addresses,
the access log, and provider clients retired by a key rotation."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from provara_kit.provider import Provider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import ProviderSpec, Registry
from provara_kit.testing import CannedReply, OpenAIChatDialect
from provara_kit.vault import generate_master_key
from reference_gateway.api.http import MAX_JSON_DEPTH
from tests.gateway.conftest import GatewayServer, make_settings

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
        deadline = time.monotonic() + 90  # a bound on a loaded machine, not a figure
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
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
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


# -- what a tenant sees of an upstream failure ------------------------------------------------

INTERNAL = ("10.20.30.40", ":8443", "backend-7", "/internal/")
"""Where the scripted upstream says it failed: none of it may reach a tenant."""


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + orjson.dumps({**body, "choices": [choice]}) + b"\n\n"


async def failing_upstream(scope: Scope, receive: Receive, send: Send) -> None:
    """An OpenAI-compatible upstream whose failures quote its internal address; the last
    user message picks the failure: ``status``, ``garbage`` or (streamed) ``midstream``."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = orjson.loads(body)
    what = request["messages"][-1]["content"]
    where = "http://10.20.30.40:8443/internal/v1 (backend-7.cluster.local)"
    headers = [(b"content-type", b"application/json")]
    if what == "status":
        status, payload = 500, orjson.dumps({"error": {"message": f"no healthy upstream: {where}"}})
    elif what == "garbage":
        status, payload = 200, f"<html>bad gateway from {where}</html>".encode()
        headers = [(b"content-type", b"text/html")]
    else:
        status = 200
        headers = [(b"content-type", b"text/event-stream")]
        payload = _chunk({"role": "assistant", "content": "partial"}) + (
            b"data: "
            + orjson.dumps({"error": {"message": f"lost {where}", "type": "server_error"}})
            + b"\n\n"
        )
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """``app`` served on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the upstream did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _openai_like(name: str, url: str) -> ProviderSpec:
    def factory(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
        return OpenAICompatibleProvider(
            name=name,
            base_url=base_url or url,
            api_key=api_key,
            transport=transport,
            default_models=(f"{name}-1",),
        )

    return ProviderSpec(
        name=name,
        factory=factory,
        api_key_env=f"{name.upper()}_API_KEY",
        base_url_env=f"{name.upper()}_BASE_URL",
        default_models=(f"{name}-1",),
        wire="openai-chat",
    )


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayServer, str]]:
    """A gateway with ``downco`` (its base URL a closed loopback port) and ``failco`` (the
    failing upstream), both keyed by the operator; yields it and a tenant token."""
    registry = Registry()
    registry.register(_openai_like("downco", "https://downco.invalid/v1"))
    registry.register(_openai_like("failco", "https://failco.invalid/v1"))
    with serving(failing_upstream) as failing_url:
        environ = {
            "DOWNCO_API_KEY": "sk-downco-0123456789",
            "DOWNCO_BASE_URL": f"http://127.0.0.1:{_free_port()}/internal/v1",
            "FAILCO_API_KEY": "sk-failco-0123456789",
            "FAILCO_BASE_URL": f"{failing_url}/internal/v1",
        }
        settings = make_settings(tmp_path_factory.mktemp("failing"), environ=environ)
        with GatewayServer(settings, registry=registry) as server:
            yield server, server.tenant("failing")


def _addresses(gateway: GatewayServer) -> list[str]:
    """Every address of the gateway's upstreams that a tenant must not see."""
    environ = gateway.settings.environ
    urls = [environ["DOWNCO_BASE_URL"], environ["FAILCO_BASE_URL"]]
    ports = [f":{httpx.URL(url).port}" for url in urls]
    return [*INTERNAL, "127.0.0.1", "http://", *ports]


_UNREACHABLE = ("upstream_unreachable", "did not answer: connection refused")
_STATUS = ("upstream_error", "failed (upstream HTTP 500)")
_GARBAGE = ("upstream_malformed_response", "answered with a body that does not follow its API")


@pytest.mark.parametrize(
    ("provider", "what", "stream", "failure"),
    [
        ("downco", "hi", False, _UNREACHABLE),
        ("downco", "hi", True, _UNREACHABLE),
        ("failco", "status", False, _STATUS),
        ("failco", "status", True, _STATUS),
        ("failco", "garbage", False, _GARBAGE),
    ],
)
def test_a_5xx_names_the_failure_but_not_the_upstream_address(
    failing: tuple[GatewayServer, str],
    caplog: pytest.LogCaptureFixture,
    provider: str,
    what: str,
    stream: bool,
    failure: tuple[str, str],
) -> None:
    gateway, token = failing
    code, kind = failure
    model = f"{provider}/{provider}-1"
    with (
        caplog.at_level(logging.WARNING, logger="reference_gateway"),
        httpx.Client(base_url=gateway.url, timeout=10) as http,
    ):
        response = http.post(
            "/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": what}],
                "stream": stream,
            },
            headers=auth(token),
        )
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["type"] == "server_error"
    assert f"Provider '{provider}' {kind}" in error["message"]
    request_id = response.headers["x-request-id"]
    assert request_id.startswith("chatcmpl-") and request_id in error["message"]
    for address in _addresses(gateway):
        assert address not in response.text, (address, response.text)
    # The operator's log keeps everything, under the request id.
    logged = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert logged, caplog.text
    base_url = gateway.settings.environ[f"{provider.upper()}_BASE_URL"]
    where = base_url if provider == "downco" else "10.20.30.40:8443"
    assert any(where in line for line in logged), logged


def test_an_in_stream_error_names_the_failure_but_not_the_upstream_address(
    failing: tuple[GatewayServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, token = failing
    with (
        caplog.at_level(logging.WARNING, logger="reference_gateway"),
        httpx.Client(base_url=gateway.url, timeout=10) as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "failco/failco-1",
                "messages": [{"role": "user", "content": "midstream"}],
                "stream": True,
            },
            headers=auth(token),
        ) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        text = response.read().decode()
    assert '"content":"partial"' in text
    last = [line for line in text.splitlines() if line.startswith("data: ")][-1]
    error = orjson.loads(last.removeprefix("data: "))["error"]
    assert error["code"] == "upstream_stream_aborted"
    assert "Provider 'failco' broke off the upstream stream" in error["message"]
    assert request_id in error["message"]
    for address in _addresses(gateway):
        assert address not in text, (address, text)
    logged = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert any("10.20.30.40:8443" in line for line in logged), caplog.text


# -- provider clients retired by a key rotation -----------------------------------------------

KEYS = ("sk-slowco-first-0123456789", "sk-slowco-second-0123456789", "sk-slowco-third-012345")


class _SlowBody(httpx.AsyncByteStream):
    """A streamed answer that holds its end back until ``gate`` is set."""

    def __init__(self, key: str, gate: threading.Event) -> None:
        self.key = key
        self.gate = gate

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield _chunk({"role": "assistant", "content": f"key={self.key}"})
        await asyncio.to_thread(self.gate.wait, 20)
        yield _chunk({}, "stop") + b"data: [DONE]\n\n"


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[tuple[GatewayServer, list[Provider], threading.Event]]:
    """A gateway with ``slowco``, whose instances are recorded (each knows whether it was
    closed) and whose streamed answers to ``slow`` wait for the event."""
    instances: list[Provider] = []
    gate = threading.Event()

    def upstream(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        body = orjson.loads(request.content)
        if body.get("stream"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=_SlowBody(key, gate)
            )
        reply = CannedReply(chunks=(f"key={key}",), model="slowco-1")
        return httpx.Response(
            200,
            content=OpenAIChatDialect().render_completion(reply),
            headers={"content-type": "application/json"},
        )

    class Recorded(OpenAICompatibleProvider):
        closed = False

        async def aclose(self) -> None:
            self.closed = True
            await super().aclose()

    def factory(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
        instance = Recorded(
            name="slowco",
            base_url="https://slowco.invalid/v1",
            api_key=api_key,
            transport=httpx.MockTransport(upstream),
            default_models=("slowco-1",),
        )
        instances.append(instance)
        return instance

    registry = Registry()
    registry.register(
        ProviderSpec(
            name="slowco",
            factory=factory,
            api_key_env="SLOWCO_API_KEY",
            default_models=("slowco-1",),
            wire="openai-chat",
        )
    )
    with GatewayServer(make_settings(tmp_path), registry=registry) as gateway:
        try:
            yield gateway, instances, gate
        finally:
            gate.set()


def _closed(instance: Provider) -> bool:
    return bool(getattr(instance, "closed", False))


def test_a_rotated_key_closes_its_client_once_its_last_request_ends(
    rotating: tuple[GatewayServer, list[Provider], threading.Event],
) -> None:
    gateway, instances, gate = rotating
    token = gateway.tenant("rotating")
    first, second, third = KEYS
    ask = {"model": "slowco/slowco-1", "messages": [{"role": "user", "content": "fast"}]}
    with httpx.Client(base_url=gateway.url, timeout=10, headers=auth(token)) as http:
        stored = http.post("/api/provider-keys", json={"name": "SLOWCO_API_KEY", "value": first})
        assert stored.status_code == 201, stored.text
        slow = {**ask, "messages": [{"role": "user", "content": "slow"}], "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=slow) as stream:
            lines = stream.iter_lines()
            assert f"key={first}" in next(line for line in lines if line.startswith("data: "))
            (old,) = instances

            rotate = "/api/provider-keys/SLOWCO_API_KEY/rotate"
            assert http.post(rotate, json={"value": second}).status_code == 200
            answer = http.post("/v1/chat/completions", json=ask).json()
            assert answer["choices"][0]["message"]["content"] == f"key={second}"
            assert len(instances) == 2
            assert not _closed(old)  # the slow stream still reads through it

            gate.set()
            rest = list(lines)
        assert "data: [DONE]" in rest
        assert _closed(old)  # released by the stream's end
        assert not _closed(instances[1])

        # Rotated again with no request in flight: closed at once.
        assert http.post(rotate, json={"value": third}).status_code == 200
        answer = http.post("/v1/chat/completions", json=ask).json()
        assert answer["choices"][0]["message"]["content"] == f"key={third}"
        deadline = time.monotonic() + 10
        while not _closed(instances[1]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _closed(instances[1])
        assert not _closed(instances[2])


# -- cross-site posts to the dashboard ------------------------------------------------------

EVIL = "https://evil.example"


def _assert_refused(response: httpx.Response, why: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "This form was refused" in response.text and why in response.text
    assert "Nothing was changed" in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"origin": EVIL}, "sent from https://evil.example (Origin)"),
        ({"origin": "null"}, "sent from null (Origin)"),
        ({"sec-fetch-site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
        ({"sec-fetch-site": "same-site", "origin": "SAME"}, "Sec-Fetch-Site: same-site"),
        ({"referer": f"{EVIL}/phish"}, "sent from https://evil.example (Referer)"),
    ],
    ids=["origin", "null-origin", "fetch-site", "same-site", "referer"],
)
def test_a_cross_site_sign_in_is_refused(
    gateway: GatewayServer, token: str, headers: dict[str, str], why: str
) -> None:
    headers = {k: gateway.url if v == "SAME" else v for k, v in headers.items()}
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as browser:
        response = browser.post("/dashboard/login", data={"token": token}, headers=headers)
        _assert_refused(response, why)
        assert not browser.cookies


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "SAME"},
        {"origin": "SAME", "sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "same-origin", "origin": EVIL},  # the browser's word wins
        {"referer": "SAME/dashboard/api-keys"},
        {},  # a tool, not a browser
    ],
    ids=["origin", "fetch-site", "fetch-site-first", "referer", "no-header"],
)
def test_a_same_origin_sign_in_is_accepted(
    gateway: GatewayServer, token: str, headers: dict[str, str]
) -> None:
    headers = {k: v.replace("SAME", gateway.url) for k, v in headers.items()}
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as browser:
        response = browser.post("/dashboard/login", data={"token": token}, headers=headers)
        assert response.status_code == 303, response.text
        assert "provara_token" in browser.cookies


@pytest.mark.parametrize(
    ("host", "origin", "accepted"),
    [
        ("gw.example", "https://gw.example", True),  # behind a TLS proxy: scheme not compared
        ("gw.example:443", "https://gw.example", True),
        ("GW.example", "http://gw.example", True),
        ("gw.example", "https://gw.example:8443", False),
        ("gw.example", "https://gw.example.evil.example", False),
        ("gw.example", "ftp://gw.example", False),
    ],
)
def test_the_origin_is_compared_with_the_host(
    gateway: GatewayServer, token: str, host: str, origin: str, accepted: bool
) -> None:
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as browser:
        response = browser.post(
            "/dashboard/login", data={"token": token}, headers={"host": host, "origin": origin}
        )
    assert response.status_code == (303 if accepted else 403), response.text


@contextmanager
def signed_in(gateway: GatewayServer, token: str) -> Iterator[tuple[httpx.Client, str]]:
    """A browser with a dashboard session (posting from the gateway's origin), and the
    session's CSRF token."""
    with httpx.Client(
        base_url=gateway.url, follow_redirects=False, headers={"origin": gateway.url}
    ) as browser:
        assert browser.post("/dashboard/login", data={"token": token}).status_code == 303
        page = browser.get("/dashboard/api-keys")
        yield browser, page.text.split('name="csrf" value="')[1].split('"')[0]


def test_a_cross_site_key_form_is_refused_and_changes_nothing(
    gateway: GatewayServer, token: str
) -> None:
    with signed_in(gateway, token) as (browser, csrf):
        form = {
            "action": "add",
            "name": "ACME_API_KEY",
            "value": "sk-forged-0123456789",
            "csrf": csrf,
        }
        for headers, why in (
            ({"origin": EVIL}, "https://evil.example (Origin)"),
            ({"sec-fetch-site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
        ):
            _assert_refused(browser.post("/dashboard/api-keys", data=form, headers=headers), why)
        out = browser.post("/dashboard/logout", data={"csrf": csrf}, headers={"origin": EVIL})
        _assert_refused(out, EVIL)
        page = browser.get("/dashboard/api-keys")
        assert "No keys stored yet" in page.text  # nothing added, still signed in
        added = browser.post("/dashboard/api-keys", data=form)  # from its own origin
        assert added.status_code == 303, added.text


def test_a_key_form_without_its_csrf_token_is_refused(gateway: GatewayServer, token: str) -> None:
    with signed_in(gateway, token) as (browser, csrf):
        form = {"action": "add", "name": "ACME_API_KEY", "value": "sk-forged-0123456789"}
        for wrong in ({}, {"csrf": "0" * len(csrf)}):
            refused = browser.post("/dashboard/api-keys", data={**form, **wrong})
            _assert_refused(refused, "no valid CSRF token")
        assert "No keys stored yet" in browser.get("/dashboard/api-keys").text
