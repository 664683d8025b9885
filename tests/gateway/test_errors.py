"""Bad input and upstream failures: always an OpenAI-shaped error, never a traceback."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from tests.gateway.conftest import BOOM_KEY, GatewayServer

MESSAGES = [{"role": "user", "content": "Hello"}]
FAULT = "x-provara-local-fault"


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str)
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    return error


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# -- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"authorization": "Basic dXNlcjpwdw=="}, "missing_api_key"),
        ({"authorization": "Bearer"}, "missing_api_key"),
        ({"authorization": "Bearer not-a-token"}, "invalid_api_key"),
        ({"authorization": "Bearer pvk_" + "A" * 43}, "invalid_api_key"),
    ],
)
def test_missing_or_wrong_auth_is_401(
    http: httpx.Client, headers: dict[str, str], code: str
) -> None:
    for path, method in (
        ("/v1/chat/completions", "POST"),
        ("/v1/models", "GET"),
        ("/api/provider-keys", "GET"),
    ):
        response = http.request(method, path, headers=headers, json={"model": "local/echo"})
        error = assert_openai_error(response, 401, code)
        assert error["type"] == "authentication_error"
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_openai_sdk_raises_authentication_error(gateway: GatewayServer) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="pvk_wrong", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.chat.completions.create(model="local/echo", messages=MESSAGES)


# -- malformed bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b'{"model": "local/echo", "messages": [}', b"\xff\xfe", b"[]", b"42"],
)
def test_malformed_json_is_400(http: httpx.Client, token: str, body: bytes) -> None:
    response = http.post("/v1/chat/completions", content=body, headers=auth(token))
    assert_openai_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": 42, "messages": MESSAGES}, "model"),
        ({"model": "local/echo"}, "messages"),
        ({"model": "local/echo", "messages": "hello"}, "messages"),
        ({"model": "local/echo", "messages": []}, "messages"),
        (
            {"model": "local/echo", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "local/echo", "messages": [{"content": "x"}]}, "messages[0].role"),
        (
            {"model": "local/echo", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        ({"model": "local/echo", "messages": MESSAGES, "temperature": "hot"}, "temperature"),
        ({"model": "local/echo", "messages": MESSAGES, "temperature": 9}, "temperature"),
        ({"model": "local/echo", "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"model": "local/echo", "messages": MESSAGES, "stream": "yes"}, "stream"),
        (
            {"model": "local/echo", "messages": MESSAGES, "stream": True, "stream_options": 1},
            "stream_options",
        ),
        (
            {
                "model": "local/echo",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"include_usage": "yes"},
            },
            "stream_options.include_usage",
        ),
    ],
)
def test_wrong_types_are_400_with_the_field(
    http: httpx.Client, token: str, body: dict, param: str
) -> None:
    response = http.post("/v1/chat/completions", json=body, headers=auth(token))
    error = assert_openai_error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param.split("[")[0].split(".")[0] in error["message"]


def test_openai_sdk_raises_bad_request(gateway: GatewayServer, token: str) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        sdk.chat.completions.create(model="local/echo", messages=MESSAGES, temperature=7)
    assert caught.value.param == "temperature"


@pytest.mark.parametrize(
    "model", ["no-such-model", "local/no-such-model", "nosuchprovider/x", "local/"]
)
def test_unknown_model_is_404(http: httpx.Client, token: str, model: str) -> None:
    response = http.post(
        "/v1/chat/completions", json={"model": model, "messages": MESSAGES}, headers=auth(token)
    )
    error = assert_openai_error(response, 404, "model_not_found")
    assert error["param"] == "model"


def test_unknown_model_raises_not_found_in_the_sdk(gateway: GatewayServer, token: str) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk:
        with pytest.raises(openai.NotFoundError):
            sdk.chat.completions.create(model="nope/nope", messages=MESSAGES)
        with pytest.raises(openai.NotFoundError):
            sdk.models.retrieve("nope/nope")


def test_oversized_body_is_413_even_with_a_lying_content_length(
    gateway: GatewayServer, token: str, http: httpx.Client
) -> None:
    limit = gateway.settings.max_body_bytes
    big = {"model": "local/echo", "messages": [{"role": "user", "content": "x" * limit}]}
    response = http.post("/v1/chat/completions", json=big, headers=auth(token))
    assert_openai_error(response, 413, "request_too_large")

    # Chunked upload: no Content-Length at all.
    def chunks():
        yield b'{"model": "local/echo", "messages": [{"role": "user", "content": "'
        for _ in range(limit // 1024 + 1):
            yield b"y" * 1024
        yield b'"}]}'

    response = http.post("/v1/chat/completions", content=chunks(), headers=auth(token))
    assert_openai_error(response, 413, "request_too_large")


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_content_length_is_checked_early_and_never_trusted(
    gateway: GatewayServer, token: str
) -> None:
    limit = gateway.settings.max_body_bytes
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Connection: close\r\n"
    )
    # A declared size over the cap is refused before any of the body is read.
    reply = raw_request(gateway.port, f"{head}Content-Length: {limit * 10}\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"code":"request_too_large"' in reply
    # A small declared size frames the request: only those bytes are the body.
    body = b'{"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]}'
    reply = raw_request(gateway.port, f"{head}Content-Length: 20\r\n\r\n".encode(), body)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b'"code":"invalid_json"' in reply


def test_unknown_path_and_wrong_method(http: httpx.Client, token: str) -> None:
    assert_openai_error(http.get("/v1/nothing-here", headers=auth(token)), 404, "unknown_url")
    assert_openai_error(
        http.get("/v1/chat/completions", headers=auth(token)), 405, "method_not_allowed"
    )


def test_bad_fault_header_is_400(http: httpx.Client, token: str) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": "local/echo", "messages": MESSAGES},
        headers={**auth(token), FAULT: "explode"},
    )
    assert_openai_error(response, 400, "invalid_header")


# -- upstream failures ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_429_keeps_retry_after(http: httpx.Client, token: str, stream: bool) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": "local/echo", "messages": MESSAGES, "stream": stream},
        headers={**auth(token), FAULT: "status=429; retry-after=7"},
    )
    error = assert_openai_error(response, 429, "rate_limit_exceeded")
    assert response.headers["retry-after"] == "7"
    assert "scripted local upstream error" in error["message"]


@pytest.mark.parametrize(
    ("status", "expected"), [(400, 400), (401, 401), (404, 404), (500, 502), (503, 503), (529, 503)]
)
def test_upstream_statuses_map_to_openai_errors(
    http: httpx.Client, token: str, status: int, expected: int
) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": "local/echo-anthropic", "messages": MESSAGES},
        headers={**auth(token), FAULT: f"status={status}"},
    )
    assert_openai_error(response, expected)


def test_openai_sdk_raises_rate_limit_error(gateway: GatewayServer, token: str) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk,
        pytest.raises(openai.RateLimitError) as caught,
    ):
        sdk.chat.completions.create(
            model="local/echo", messages=MESSAGES, extra_headers={FAULT: "status=429"}
        )
    assert caught.value.status_code == 429


@pytest.mark.parametrize("fault", ["abort", "error-event", "truncate"])
@pytest.mark.parametrize("model", ["local/echo", "local/echo-anthropic"])
def test_aborted_stream_makes_the_openai_sdk_raise(
    gateway: GatewayServer, token: str, fault: str, model: str
) -> None:
    received: list[str] = []
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk:
        stream = sdk.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "one two three four five six"}],
            stream=True,
            extra_headers={FAULT: fault},
        )
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                assert "provara" not in (chunk.model_extra or {})  # no meta after an abort
                if chunk.choices and chunk.choices[0].delta.content:
                    received.append(chunk.choices[0].delta.content)
    assert "upstream" in caught.value.message
    if fault != "truncate":
        assert received  # content arrived before the failure


def test_aborted_stream_wire_has_error_and_no_done(http: httpx.Client, token: str) -> None:
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "local/echo", "messages": MESSAGES, "stream": True},
        headers={**auth(token), FAULT: "abort"},
    ) as response:
        assert response.status_code == 200
        body = response.read().decode()
    assert "data: [DONE]" not in body
    last = [line for line in body.splitlines() if line.startswith("data: ")][-1]
    assert last.startswith('data: {"error":')
    assert '"code":"upstream_stream_aborted"' in last


def test_non_streamed_abort_is_502(http: httpx.Client, token: str) -> None:
    response = http.post(
        "/v1/chat/completions",
        json={"model": "local/echo", "messages": MESSAGES},
        headers={**auth(token), FAULT: "abort"},
    )
    assert_openai_error(response, 502)


@pytest.mark.parametrize("stream", [False, True])
def test_unexpected_exception_is_a_generic_500_and_the_log_has_no_key(
    http: httpx.Client, token: str, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="reference_gateway"):
        response = http.post(
            "/v1/chat/completions",
            json={"model": "boom/boom-1", "messages": MESSAGES, "stream": stream},
            headers=auth(token),
        )
    error = assert_openai_error(response, 500, "internal_error")
    assert error["type"] == "server_error"
    assert BOOM_KEY not in response.text
    assert "adapter bug" not in response.text  # the exception's text stays in the log
    assert "adapter bug while sending key [REDACTED]" in caplog.text
    assert "Traceback" in caplog.text
    assert BOOM_KEY not in caplog.text
