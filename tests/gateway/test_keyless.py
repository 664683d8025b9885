"""A provider registered as needing no key (a local Ollama server) is served to every tenant
without one, and uses the operator's key when one is set."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from provara_kit.provider import Provider
from provara_kit.providers.ollama import OllamaProvider
from provara_kit.registry import ProviderSpec, Registry
from provara_kit.testing import CannedReply, ScriptedUpstream
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.test_dashboard_pages import page

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]


def _registry(upstream: ScriptedUpstream) -> Registry:
    def factory(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
        return OllamaProvider(api_key=api_key, transport=upstream, default_models=("gemma3",))

    registry = Registry()
    registry.register(
        ProviderSpec(
            name="ollama",
            factory=factory,
            api_key_env="OLLAMA_API_KEY",
            default_models=("gemma3",),
            wire=OllamaProvider.wire,
            api_key_required=False,
        )
    )
    return registry


def _ask(server: GatewayServer, token: str, *, stream: bool) -> str:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0) as sdk:
        if not stream:
            completion = sdk.chat.completions.create(model="ollama/gemma3", messages=MESSAGES)
            return completion.choices[0].message.content or ""
        chunks = sdk.chat.completions.create(model="ollama/gemma3", messages=MESSAGES, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


def test_served_without_any_key(tmp_path: Path) -> None:
    upstream = ScriptedUpstream("ollama-chat", reply=CannedReply(("Hello", " there")))
    settings = make_settings(tmp_path)
    with GatewayServer(settings, registry=_registry(upstream)) as server:
        token = server.tenant("alice")
        assert _ask(server, token, stream=False) == "Hello there"
        assert _ask(server, token, stream=True) == "Hello there"
        html = page(server, "/dashboard/providers", token)
    assert all("authorization" not in r.headers for r in upstream.requests)
    row = re.search(r"<strong>ollama</strong></td><td[^>]*>([^<]*)</td>", html)
    assert row is not None and row.group(1) == "not needed", html


def test_the_operator_key_is_sent_when_set(tmp_path: Path) -> None:
    key = "ollama-cloud-operator-0123456789"
    upstream = ScriptedUpstream("ollama-chat", reply=CannedReply(("Hi",)), expected_api_key=key)
    settings = make_settings(tmp_path)
    settings = replace(settings, environ={**settings.environ, "OLLAMA_API_KEY": key})
    with GatewayServer(settings, registry=_registry(upstream)) as server:
        assert _ask(server, server.tenant("bob"), stream=False) == "Hi"
    assert upstream.last_request.authorized is True
