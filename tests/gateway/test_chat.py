"""The official openai SDK, sync and async, streamed and not, against the running gateway."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway.conftest import GatewayServer

MESSAGES = [
    {"role": "system", "content": "Echo me."},
    {"role": "user", "content": "Hello from the openai SDK, héllo ✓"},
]
TEXT = "Hello from the openai SDK, héllo ✓"


def client(gateway: GatewayServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)


def aclient(gateway: GatewayServer, token: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)


@pytest.mark.parametrize("model", ["local/echo", "local/echo-anthropic"])
def test_sync_completion_with_meta(gateway: GatewayServer, token: str, model: str) -> None:
    with client(gateway, token) as sdk:
        completion = sdk.chat.completions.create(model=model, messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == model
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    meta = completion.model_extra["provara"]
    assert meta["type"] == "_provara"
    assert meta["provider"] == "local"
    assert meta["model"] == model.split("/", 1)[1]
    assert meta["priced"] is True
    assert meta["cost_usd"] == "0"
    assert meta["input_tokens"] == completion.usage.prompt_tokens
    assert meta["output_tokens_source"] == "upstream"


@pytest.mark.parametrize("model", ["local/echo", "local/echo-anthropic"])
@pytest.mark.parametrize("include_usage", [True, False])
def test_sync_stream(gateway: GatewayServer, token: str, model: str, include_usage: bool) -> None:
    options = {"include_usage": True} if include_usage else None
    with client(gateway, token) as sdk:
        kwargs = {"stream_options": options} if options else {}
        stream = sdk.chat.completions.create(model=model, messages=MESSAGES, stream=True, **kwargs)
        chunks = list(stream)
    ids = {chunk.id for chunk in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(c.choices[0].delta.content or "" for c in content) == TEXT
    assert content[0].choices[0].delta.role == "assistant"
    # No chunk is empty: each carries content, a finish reason, usage or the meta.
    for chunk in chunks:
        assert (
            (chunk.choices and (chunk.choices[0].delta.content or chunk.choices[0].finish_reason))
            or chunk.usage is not None
            or "provara" in (chunk.model_extra or {})
        ), chunk
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == (1 if include_usage else 0)
    meta_chunks = [c for c in chunks if "provara" in (c.model_extra or {})]
    assert len(meta_chunks) == 1 and meta_chunks[0] is chunks[-1]
    assert meta_chunks[0].object == "chat.completion.chunk"
    assert meta_chunks[0].choices == []
    meta = meta_chunks[0].model_extra["provara"]
    assert meta["provider"] == "local" and meta["priced"] is True
    assert meta["ttft_ms"] is not None and meta["latency_ms"] >= meta["ttft_ms"]
    if include_usage:
        assert usage_chunks[0].usage.completion_tokens == meta["output_tokens"]


async def test_async_completion_and_stream(gateway: GatewayServer, token: str) -> None:
    async with aclient(gateway, token) as sdk:
        completion = await sdk.chat.completions.create(model="local/echo", messages=MESSAGES)
        assert completion.choices[0].message.content == TEXT
        assert completion.model_extra["provara"]["provider"] == "local"

        stream = await sdk.chat.completions.create(
            model="local/echo-anthropic",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, meta = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
            meta = (chunk.model_extra or {}).get("provara", meta)
        assert "".join(text) == TEXT
        assert meta is not None and meta["model"] == "echo-anthropic"


async def test_async_concurrent_requests(gateway: GatewayServer, token: str) -> None:
    import asyncio

    async with aclient(gateway, token) as sdk:

        async def one(i: int) -> str:
            completion = await sdk.chat.completions.create(
                model="local/echo", messages=[{"role": "user", "content": f"request {i}"}]
            )
            return completion.choices[0].message.content or ""

        answers = await asyncio.gather(*(one(i) for i in range(40)))
    assert answers == [f"request {i}" for i in range(40)]


def test_auto_resolves_to_the_pinned_default(gateway: GatewayServer, token: str) -> None:
    with client(gateway, token) as sdk:
        completion = sdk.chat.completions.create(model="auto", messages=MESSAGES)
    assert completion.model == "local/echo"
    assert completion.choices[0].message.content == TEXT


def test_bare_model_id_resolves_through_the_registry(gateway: GatewayServer, token: str) -> None:
    with client(gateway, token) as sdk:
        assert sdk.chat.completions.create(model="echo", messages=MESSAGES).model == "local/echo"
        # acme-large is only known from the registry's model list; the operator has no key.
        with pytest.raises(openai.PermissionDeniedError) as caught:
            sdk.chat.completions.create(model="acme-large", messages=MESSAGES)
    assert caught.value.code == "provider_key_missing"
    assert "ACME_API_KEY" in caught.value.message


def test_models_list_with_pricing(gateway: GatewayServer, token: str) -> None:
    with client(gateway, token) as sdk:
        models = {model.id: model for model in sdk.models.list()}
        retrieved = sdk.models.retrieve("local/echo-anthropic")
    # Only providers this tenant can use: local (no key needed); not acme (no key at all).
    assert set(models) == {"local/echo", "local/echo-anthropic", "boom/boom-1"}
    assert models["local/echo"].model_extra["pricing"] == {
        "input_per_million": "0",
        "output_per_million": "0",
    }
    assert models["boom/boom-1"].model_extra["pricing"] is None  # unpriced, not $0
    assert retrieved.id == "local/echo-anthropic"


def test_healthz_needs_no_auth(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_tool_calls_and_passthrough_fields(gateway: GatewayServer, token: str) -> None:
    # Extra OpenAI fields pass validation and reach the upstream without breaking it.
    with client(gateway, token) as sdk:
        completion = sdk.chat.completions.create(
            model="local/echo",
            messages=MESSAGES,
            temperature=0.2,
            max_tokens=50,
            seed=7,
            top_p=0.9,
            user="someone",
        )
    assert completion.choices[0].message.content == TEXT
