"""The Bedrock Converse adapter: real recorded bodies, SigV4, auth, errors and broken streams."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provara_kit.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    PermissionDeniedError,
    RateLimitError,
    StreamAbortedError,
    UpstreamServerError,
)
from provara_kit.framings import EVENT_STREAM
from provara_kit.providers.bedrock import BedrockProvider, environment_key, parse_key
from provara_kit.testing import CannedReply, ScriptedUpstream
from provara_kit.testing.dialects.bedrock_requests import signature_matches
from provara_kit.testing.event_stream import encode_message, event, exception
from provara_kit.types import ChatRequest, ProvaraMeta, ReasoningDelta, TextDelta, ToolCallDelta

from ..wire_corpus import corpus_dir, parse_http

botocore_auth = pytest.importorskip("botocore.auth")
botocore_awsrequest = pytest.importorskip("botocore.awsrequest")
botocore_credentials = pytest.importorskip("botocore.credentials")

ACCESS = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDEXAMPLESESSIONTOKEN"
SIGV4_KEY = f"{ACCESS}:{SECRET}:{TOKEN}"
BEARER = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxlLWtleQ=="
MODEL = "us.amazon.nova-micro-v1:0"
STREAM_TYPE = "application/vnd.amazon.eventstream"


def _request(**fields: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=[{"role": "user", "content": "hi"}], **fields)


def _provider(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> BedrockProvider:
    kwargs.setdefault("api_key", BEARER)
    return BedrockProvider(
        transport=httpx.MockTransport(handler), base_url="https://bedrock.test", **kwargs
    )


def _serving(body: bytes, status: int = 200, **headers: str) -> BedrockProvider:
    content_type = (
        STREAM_TYPE if status == 200 and not body.startswith(b"{") else "application/json"
    )
    return _provider(
        lambda _: httpx.Response(
            status, headers={"content-type": content_type, **headers}, content=body
        )
    )


async def _stream(provider: BedrockProvider, request: ChatRequest | None = None) -> list[Any]:
    async with provider:
        return [event async for event in provider.complete_stream(request or _request())]


def _read(events: list[Any]) -> tuple[str, str, dict[int, list[str | None]], ProvaraMeta]:
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    calls: dict[int, list[str | None]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            call = calls.setdefault(e.index, [None, None, ""])
            call[0] = call[0] or e.id
            call[1] = call[1] or e.name
            call[2] = (call[2] or "") + e.arguments
    metas = [e for e in events if isinstance(e, ProvaraMeta)]
    assert len(metas) == 1 and events[-1] is metas[0]
    assert all(e.text for e in events if isinstance(e, TextDelta | ReasoningDelta))
    return text, reasoning, calls, metas[0]


# -- real recordings ----------------------------------------------------------------------

STREAMS = {
    "converse-stream-text-nova.pydantic-ai.i0": (
        "The capital of France is Paris. Paris is not only the capital city but also the most "
        "populous city in France, and it is a major center for culture, commerce, fashion, and "
        "international diplomacy. Known for its historical landmarks, such as the Eiffel Tower, "
        'the Louvre Museum, and Notre-Dame Cathedral, Paris is often referred to as "The City '
        'of Light" or "The City of Love."',
        "",
        {},
        (13, 82, "stop"),
    ),
    "converse-stream-reasoning-signature-claude.pydantic-ai.i0": (
        "Hello! It's nice to meet you. How can I help you today?",
        'The user has greeted me with a simple "Hello". I should respond in a friendly and '
        "welcoming manner. This is a straightforward greeting, so I'll respond warmly and ask "
        "how I can help them today.",
        {},
        (36, 73, "stop"),
    ),
    "converse-stream-empty-text-delta-gpt-oss.pydantic-ai.i0": (
        "Hello! How can I help you today?",
        'The user just says "Hi". We need to respond appropriately, friendly greeting. No '
        "special instructions. Should be short.",
        {},
        (70, 43, "stop"),
    ),
    "converse-stream-tool-use-input-fragments.openllmetry.i0": (
        "Okay, let me check the weather for Barcelona using the available tool:",
        "",
        {1: ["tooluse_yypYDr71TwCwByoyao4-Vg", "get_weather", '{"location": "Barcelona"}']},
        (236, 58, "tool_calls"),
    ),
    "converse-stream-tool-use-utf8-nova.pydantic-ai.i0": (
        "<thinking> To find the temperature of the capital of France, I need to first determine "
        "the capital of France and then get the current temperature in that city. The capital "
        'of France is Paris. I will use the "get_temperature" tool to find the current '
        "temperature in Paris.</thinking>\n",
        "",
        {1: ["tooluse_lAG_zP8QRHmSYOwZzzaCqA", "get_temperature", '{"city":"Paris"}']},
        (471, 91, "tool_calls"),
    ),
    "converse-stream-tool-use-utf8-nova.pydantic-ai.i1": (
        "The current temperature in Paris, the capital of France, is 30°C.",
        "",
        {},
        (577, 18, "stop"),
    ),
    "converse-stream-guardrail-intervened.openllmetry.i0": (
        "\nThe capital of {ADDRESS} is {ADDRESS}. The capital of {ADDRESS} is {ADDRESS}.",
        "",
        {},
        (17, 16, "content_filter"),
    ),
}


def _corpus(name: str) -> bytes:
    return (corpus_dir() / "bedrock" / "extracted" / name).read_bytes()


@pytest.mark.parametrize("name", sorted(STREAMS))
@pytest.mark.parametrize("read_size", [None, 1, 7])
async def test_recorded_streams_read_exactly(name: str, read_size: int | None) -> None:
    body = _corpus(f"{name}.eventstream")
    text, reasoning, calls, (input_tokens, output_tokens, finish) = STREAMS[name]
    pieces = (
        [body]
        if read_size is None
        else [body[i : i + read_size] for i in range(0, len(body), read_size)]
    )
    provider = _provider(
        lambda _: httpx.Response(200, headers={"content-type": STREAM_TYPE}, stream=_Pieces(pieces))
    )
    got_text, got_reasoning, got_calls, meta = _read(await _stream(provider))
    assert (got_text, got_reasoning, got_calls) == (text, reasoning, calls)
    assert (meta.input_tokens, meta.output_tokens, meta.finish_reason) == (
        input_tokens,
        output_tokens,
        finish,
    )
    assert meta.input_tokens_source == meta.output_tokens_source == "upstream"


class _Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self) -> Any:
        for piece in self.pieces:
            yield piece


def test_every_recorded_body_decodes_and_reencodes_byte_for_byte() -> None:
    folder = corpus_dir() / "bedrock" / "extracted"
    bodies = sorted(folder.glob("*.eventstream"))
    assert len(bodies) >= 8
    for path in bodies:
        body = path.read_bytes()
        decoder = EVENT_STREAM.decoder()
        messages = decoder.feed(body)
        decoder.end()
        assert messages and not decoder.truncated, path.name
        rebuilt = b"".join(encode_message(m.headers, m.payload) for m in messages)  # type: ignore[arg-type]
        assert rebuilt == body, path.name


def test_our_encoder_and_botocores_decoder_agree() -> None:
    from provara_kit.testing.event_stream import Timestamp

    headers = {
        ":event-type": "contentBlockDelta",
        "flag": True,
        "off": False,
        "n": -7,
        "raw": b"\x00\xff",
        ":date": Timestamp(1_764_000_000_123),
        "ünï": "çødé",
    }
    payload = json.dumps({"delta": {"text": "Olá 🍋"}}).encode()
    body = encode_message(headers, payload) + encode_message({}, b"")
    for cut in range(len(body) + 1):
        decoder = EVENT_STREAM.decoder()
        messages = decoder.feed(body[:cut]) + decoder.feed(body[cut:])
        decoder.end()
        assert not decoder.truncated
        assert [dict(m.headers) for m in messages] == [
            {**headers, ":date": 1_764_000_000_123},
            {},
        ]
        assert [m.payload for m in messages] == [payload, b""]


async def test_recorded_completions_read_exactly() -> None:
    folder = corpus_dir() / "bedrock" / "extracted"
    cases = {
        "converse-nonstream-cache-usage-guardrail-trace.openllmetry.i0.json": (20, 72, "stop"),
        "converse-nonstream-guardrail-intervened.openllmetry.i0.json": (17, 17, "content_filter"),
        "converse-nonstream-tool-use-then-400-malformed-input.pydantic-ai.i0.reserialized.json": (
            901,
            14,
            "tool_calls",
        ),
    }
    for name, (input_tokens, output_tokens, finish) in cases.items():
        body = (folder / name).read_bytes()
        async with _serving(body) as provider:
            response = await provider.complete(_request())
        assert response.usage.input_tokens == input_tokens
        assert response.usage.output_tokens == output_tokens
        assert response.finish_reason == finish
    text = json.loads((folder / next(iter(cases))).read_bytes())["output"]["message"]["content"]
    async with _serving((folder / next(iter(cases))).read_bytes()) as provider:
        response = await provider.complete(_request())
    assert response.text == text[0]["text"]
    tool_body = (folder / list(cases)[2]).read_bytes()
    async with _serving(tool_body) as provider:
        response = await provider.complete(_request())
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("tooluse_aS2bf2IWkc0VLclSrpq8MK", "get_file", "{}")
    ]


async def test_recorded_errors_are_typed() -> None:
    folder = corpus_dir() / "bedrock" / "extracted"
    invalid = (
        folder / "error-400-invalid-model-converse-stream.pydantic-ai.i0.reserialized.json"
    ).read_bytes()
    with pytest.raises(BadRequestError, match="The provided model identifier is invalid"):
        await _stream(_serving(invalid, 400))
    recording = parse_http((folder / "error-403-access-denied.raw-http.i0.http").read_bytes())
    errortype = recording.header("x-amzn-errortype") or ""
    provider = _serving(recording.body, recording.status, **{"x-amzn-errortype": errortype})
    with pytest.raises(PermissionDeniedError) as caught:
        async with provider:
            await provider.complete(_request())
    assert "don't have access to the model" in caught.value.message
    assert caught.value.error_type == "AccessDeniedException"


# -- errors, exceptions in the stream, broken frames ----------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (429, "ThrottlingException", RateLimitError),
        (503, "ServiceUnavailableException", UpstreamServerError),
        (400, "ValidationException", BadRequestError),
        (403, "UnrecognizedClientException", PermissionDeniedError),
        (401, "AccessDeniedException", AuthenticationError),
    ],
)
async def test_error_statuses(status: int, kind: str, error: type[Exception]) -> None:
    body = json.dumps({"message": f"Too many requests, {SECRET}"}).encode()
    provider = BedrockProvider(
        api_key=SIGV4_KEY,
        base_url="https://bedrock.test",
        transport=httpx.MockTransport(
            lambda _: httpx.Response(
                status, headers={"x-amzn-errortype": f"{kind}:http://x/"}, content=body
            )
        ),
    )
    with pytest.raises(error) as caught:
        async with provider:
            await provider.complete(_request())
    assert caught.value.error_type == kind  # type: ignore[attr-defined]
    assert caught.value.retryable is (status in (429, 503))  # type: ignore[attr-defined]
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def _frames(*messages: bytes) -> bytes:
    return b"".join(messages)


START = event("messageStart", b'{"role":"assistant"}')
HELLO = event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"Hello"}}')
STOP = event("messageStop", b'{"stopReason":"end_turn"}')
METADATA = event("metadata", b'{"usage":{"inputTokens":3,"outputTokens":1,"totalTokens":4}}')


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("throttlingException", "Too many tokens, please wait before trying again."),
        ("modelStreamErrorException", "The model stream failed."),
        ("validationException", "Input is too long for requested model."),
        ("serviceUnavailableException", "Bedrock is unable to process your request."),
    ],
)
async def test_exception_events_abort_with_their_words(kind: str, message: str) -> None:
    body = _frames(
        START, HELLO, exception(kind, json.dumps({"message": message}).encode()), STOP, METADATA
    )
    events: list[Any] = []
    with pytest.raises(StreamAbortedError, match=f"{kind}.*{message[:20]}"):
        async with _serving(body) as provider:
            async for item in provider.complete_stream(_request()):
                events.append(item)
    assert not any(isinstance(e, ProvaraMeta) for e in events)


async def test_an_error_message_aborts_with_its_code() -> None:
    error = encode_message(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}
    )
    with pytest.raises(StreamAbortedError, match=r"InternalFailure.*boom"):
        await _stream(_serving(_frames(START, HELLO, error)))


@pytest.mark.parametrize("cut", [1, 11, 12, 30, -5, -1])
async def test_a_body_cut_inside_a_frame_is_truncated(cut: int) -> None:
    body = _frames(START, HELLO, STOP, METADATA)
    cut_at = len(body) - len(METADATA) + cut if cut > 0 else len(body) + cut
    with pytest.raises(StreamAbortedError, match="truncated"):
        await _stream(_serving(body[:cut_at]))


@pytest.mark.parametrize("where", ["prelude", "headers", "payload", "message crc"])
async def test_crc_corruption_aborts(where: str) -> None:
    offset = {"prelude": 9, "headers": 14, "payload": len(HELLO) - 8, "message crc": len(HELLO) - 2}
    broken = bytearray(HELLO)
    broken[offset[where]] ^= 0x20
    with pytest.raises(StreamAbortedError):
        await _stream(_serving(_frames(START, bytes(broken), STOP, METADATA)))


async def test_a_stream_that_ends_before_message_stop_aborts() -> None:
    with pytest.raises(StreamAbortedError, match="terminal marker"):
        await _stream(_serving(_frames(START, HELLO)))


async def test_message_stop_without_metadata_finishes_with_estimated_usage() -> None:
    text, _, _, meta = _read(await _stream(_serving(_frames(START, HELLO, STOP))))
    assert text == "Hello" and meta.finish_reason == "stop"
    assert meta.input_tokens_source == meta.output_tokens_source == "estimated"


async def test_metadata_ends_the_stream_even_if_more_bytes_follow() -> None:
    trailing = event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"late"}}')
    text, _, _, meta = _read(
        await _stream(_serving(_frames(START, HELLO, STOP, METADATA, trailing)))
    )
    assert text == "Hello" and (meta.input_tokens, meta.output_tokens) == (3, 1)


# -- auth ---------------------------------------------------------------------------------

FIXED = datetime.datetime(2025, 11, 26, 3, 4, 5, tzinfo=datetime.UTC)


async def test_sigv4_matches_botocores_own_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: FIXED.replace(tzinfo=None))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"message": "stop here"})

    provider = BedrockProvider(
        api_key=SIGV4_KEY,
        region="eu-west-3",
        base_url="https://bedrock-runtime.eu-west-3.amazonaws.com",
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(BadRequestError):
        async with provider:
            await provider.complete(_request(temperature=0.5))
    sent = seen[0]
    assert sent.url.raw_path == b"/model/us.amazon.nova-micro-v1%3A0/converse"
    reference = botocore_awsrequest.AWSRequest(
        method="POST",
        url="https://bedrock-runtime.eu-west-3.amazonaws.com/model/us.amazon.nova-micro-v1%3A0/converse",
        headers={
            "host": "bedrock-runtime.eu-west-3.amazonaws.com",
            "content-type": "application/json",
        },
        data=sent.content,
    )
    credentials = botocore_credentials.Credentials(ACCESS, SECRET, TOKEN)
    botocore_auth.SigV4Auth(credentials, "bedrock", "eu-west-3").add_auth(reference)
    assert sent.headers["authorization"] == reference.headers["Authorization"]
    assert sent.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251126/eu-west-3/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
    )
    assert sent.headers["x-amz-date"] == "20251126T030405Z"
    assert sent.headers["x-amz-security-token"] == TOKEN
    headers = {k.lower(): v for k, v in sent.headers.items()}
    verify = {"method": "POST", "path": sent.url.raw_path.decode(), "query": "", "headers": headers}
    assert signature_matches(SIGV4_KEY, **verify, body=sent.content)
    assert not signature_matches(SIGV4_KEY, **verify, body=sent.content + b" ")
    assert not signature_matches(f"{ACCESS}:other-secret:{TOKEN}", **verify, body=sent.content)


async def test_a_bedrock_api_key_is_a_bearer_token_and_signs_nothing() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"message": "no"})

    with pytest.raises(BadRequestError):
        async with _provider(handler) as provider:
            await provider.complete(_request())
    assert seen[0].headers["authorization"] == f"Bearer {BEARER}"
    assert "x-amz-date" not in seen[0].headers


async def test_botocore_credentials_objects_sign_too() -> None:
    credentials = botocore_credentials.Credentials(ACCESS, SECRET)
    upstream = ScriptedUpstream(
        "bedrock-converse", reply=CannedReply(("ok",)), expected_api_key=f"{ACCESS}:{SECRET}"
    )
    provider = BedrockProvider(
        api_key=None, credentials=credentials, base_url="https://bedrock.test", transport=upstream
    )
    async with provider:
        assert (await provider.complete(_request())).text == "ok"
    assert upstream.last_request.authorized is True
    assert "sigv4" in repr(provider) and SECRET not in repr(provider)


def test_keys_and_the_environment() -> None:
    assert parse_key(BEARER).bearer == BEARER
    assert (parse_key(SIGV4_KEY).access_key, parse_key(SIGV4_KEY).token) == (ACCESS, TOKEN)
    assert parse_key(f"{ACCESS}:{SECRET}").token is None
    with pytest.raises(ConfigurationError, match="ACCESS_KEY_ID:SECRET_ACCESS_KEY"):
        parse_key(":nothing")
    assert SECRET not in repr(parse_key(SIGV4_KEY))
    env = {"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET}
    assert environment_key(env) == f"{ACCESS}:{SECRET}"
    assert environment_key({**env, "AWS_SESSION_TOKEN": TOKEN}) == SIGV4_KEY
    assert environment_key({**env, "AWS_BEARER_TOKEN_BEDROCK": BEARER}) == BEARER
    assert environment_key({"AWS_ACCESS_KEY_ID": ACCESS}) is None


def test_region_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert (
        BedrockProvider(api_key=BEARER).base_url
        == "https://bedrock-runtime.ap-south-1.amazonaws.com"
    )
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    provider = BedrockProvider(api_key=SIGV4_KEY)
    assert provider.region == "eu-central-1"
    assert SECRET not in repr(provider) and TOKEN not in repr(provider)


async def test_secrets_are_scrubbed_from_errors_and_stream_aborts() -> None:
    echo = json.dumps({"message": f"bad token {TOKEN} and secret {SECRET}"}).encode()
    provider = BedrockProvider(
        api_key=SIGV4_KEY,
        base_url="https://bedrock.test",
        transport=httpx.MockTransport(lambda _: httpx.Response(400, content=echo)),
    )
    with pytest.raises(BadRequestError) as caught:
        async with provider:
            await provider.complete(_request())
    assert TOKEN not in str(caught.value) and SECRET not in str(caught.value)
    body = _frames(START, exception("throttlingException", echo))
    provider = BedrockProvider(
        api_key=SIGV4_KEY,
        base_url="https://bedrock.test",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body)),
    )
    with pytest.raises(StreamAbortedError) as aborted:
        await _stream(provider)
    assert TOKEN not in str(aborted.value) and SECRET not in str(aborted.value)


def test_the_kit_imports_without_botocore() -> None:
    code = (
        "import sys\n"
        "for name in [m for m in sys.modules if m.startswith('botocore')]: del sys.modules[name]\n"
        "sys.modules['botocore'] = None\n"
        "import provara_kit, provara_kit.registry, provara_kit.framings\n"
        "from reference_gateway import app\n"
        "from provara_kit.errors import ConfigurationError\n"
        "try:\n"
        "    provara_kit.registry.create('bedrock', api_key='k')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
        "try:\n"
        "    provara_kit.framings.EVENT_STREAM.decoder()\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stderr
    assert all('pip install "provara-kit[bedrock]"' in line for line in lines)


# -- the request ------------------------------------------------------------------------


def test_the_payload() -> None:
    provider = BedrockProvider(api_key=BEARER, base_url="https://bedrock.test")
    request = ChatRequest(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"c":"Lisbon"}'},
                    },
                    {"id": "t2", "type": "function", "function": {"name": "w", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "10°C"},
            {"role": "tool", "tool_call_id": "t2", "content": "11°C"},
        ],
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        stop="END",
        tools=[{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "w"}},
    )
    payload = provider._build_payload(request, stream=True)
    assert payload == {
        "messages": [
            {"role": "user", "content": [{"text": "Weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "t1", "name": "w", "input": {"c": "Lisbon"}}},
                    {"toolUse": {"toolUseId": "t2", "name": "w", "input": {}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"text": "10°C"}]}},
                    {"toolResult": {"toolUseId": "t2", "content": [{"text": "11°C"}]}},
                ],
            },
        ],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {
            "maxTokens": 50,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "w", "inputSchema": {"json": {"type": "object"}}}}],
            "toolChoice": {"tool": {"name": "w"}},
        },
    }
    assert (
        provider._request_path(request, stream=True)
        == "/model/us.amazon.nova-micro-v1%3A0/converse-stream"
    )


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            "data: URL",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            "input_audio",
        ),
        ({"tools": [{"type": "web_search"}]}, "function tools"),
        ({"seed": 3}, "seed"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ],
)
async def test_what_the_wire_cannot_express_is_refused(fields: dict[str, Any], words: str) -> None:
    sent: list[httpx.Request] = []
    provider = _provider(lambda r: sent.append(r) or httpx.Response(500))
    request = ChatRequest.model_validate(
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}
    )
    with pytest.raises(ValueError, match=words):
        async with provider:
            await provider.complete(request)
    assert not sent


def test_tool_choice_none_leaves_the_tools_out() -> None:
    provider = BedrockProvider(api_key=BEARER, base_url="https://bedrock.test")
    tools = [{"type": "function", "function": {"name": "w"}}]
    payload = provider._build_payload(_request(tools=tools, tool_choice="none"), stream=False)
    assert "toolConfig" not in payload


async def test_discovery_keeps_the_default_models() -> None:
    provider = BedrockProvider(api_key=BEARER, base_url="https://bedrock.test")
    assert await provider.discover_models() is None
    assert MODEL in provider.default_models


def test_the_corpus_replays_converse_bodies_only() -> None:
    from conformance.replay import corpus_fixtures
    from conformance.target import ConformanceTarget

    target = ConformanceTarget.from_registry("bedrock")
    dialect = target.dialect
    fixtures = corpus_fixtures(
        corpus_dir() / "bedrock",
        routes=lambda path: dialect.is_completion_path(path) or dialect.is_models_path(path),
    )
    names = {fixture.name: fixture.exchanges[0] for fixture in fixtures}
    streamed = [name for name, exchange in names.items() if exchange.framing == "event-stream"]
    assert len(streamed) == 7 and all(name.startswith("converse-stream") for name in streamed)
    assert not [name for name in names if name.startswith(("invoke", "error-403"))]


def test_a_large_read_decodes_whole() -> None:
    body = _corpus("converse-stream-text-nova.pydantic-ai.i0.eventstream") * 40
    decoder = EVENT_STREAM.decoder()
    messages = decoder.feed(body)
    decoder.end()
    assert len(messages) == 33 * 40 and not decoder.truncated


async def test_no_credentials_means_no_lookup_and_no_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a credential provider was asked (instance metadata, profiles)")

    for provider_class in (
        "InstanceMetadataProvider",
        "ContainerProvider",
        "SharedCredentialProvider",
    ):
        monkeypatch.setattr(getattr(botocore_credentials, provider_class), "load", no_lookup)
    monkeypatch.setattr(botocore_credentials, "create_credential_resolver", no_lookup)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(403, json={"message": "Missing Authentication Token"})

    from provara_kit.registry import default_registry

    registry = default_registry(plugins=False)
    assert registry.get("bedrock").api_key({}) is None
    provider = registry.create("bedrock", environ={}, transport=httpx.MockTransport(handler))
    with pytest.raises(PermissionDeniedError, match="Missing Authentication Token"):
        async with provider:
            await provider.complete(_request())
    assert "authorization" not in seen[0].headers and "auth=<missing>" in repr(provider)


def test_the_decoder_refuses_corrupt_bytes_and_notes_a_cut() -> None:
    import struct
    import zlib

    broken = bytearray(HELLO)
    broken[5] ^= 0x01  # the headers length: the prelude CRC no longer matches
    with pytest.raises(ValueError, match="corrupt event-stream message"):
        EVENT_STREAM.decoder().feed(bytes(broken))
    prelude = struct.pack("!II", 16, 40)  # a prelude that cannot hold its own headers
    prelude += struct.pack("!I", zlib.crc32(prelude))
    body = prelude + struct.pack("!I", zlib.crc32(prelude))
    with pytest.raises(ValueError):
        EVENT_STREAM.decoder().feed(body)
    decoder = EVENT_STREAM.decoder()
    assert decoder.feed(HELLO[:-1]) == [] and decoder.end() == [] and decoder.truncated
