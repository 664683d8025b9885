from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from provara_kit import registry as registry_module
from provara_kit.errors import ConfigurationError
from provara_kit.pricing import MODEL_PRICING
from provara_kit.provider import Provider
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import (
    AUTO_REGISTER,
    ProviderSpec,
    Registry,
    default_registry,
    register_openai_compatible,
)
from provara_kit.types import ChatRequest

COMPLETION = {
    "id": "chatcmpl-1",
    "model": "acme-large",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1000, "completion_tokens": 500},
}


@pytest.fixture
def clean_global_registry() -> Iterator[None]:
    yield
    registry_module.REGISTRY._specs.pop("acme", None)
    registry_module.REGISTRY.models.pop("acme", None)
    MODEL_PRICING.pop("acme/acme-large", None)


async def test_path_a_is_one_call_plus_pricing(
    clean_global_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runbook's path A: register, price, complete pinned to the new provider."""
    register_openai_compatible(
        name="acme",
        api_key_env="ACME_API_KEY",
        base_url_env="ACME_BASE_URL",
        default_base_url="https://api.acme.example/v1",
    )
    MODEL_PRICING["acme/acme-large"] = (0.5, 1.5)
    monkeypatch.setenv("ACME_API_KEY", "acme-secret-key-123456")
    monkeypatch.setenv("ACME_BASE_URL", "https://eu.acme.example/v1")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=COMPLETION)

    provider = registry_module.create("acme", transport=httpx.MockTransport(handler))
    async with provider:
        response = await provider.complete(
            ChatRequest(model="acme-large", messages=[{"role": "user", "content": "hi"}])
        )
    assert str(seen[0].url) == "https://eu.acme.example/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer acme-secret-key-123456"
    assert response.text == "hello"
    assert response.meta.provider == "acme" and response.meta.priced
    assert response.meta.cost_usd == Decimal("0.00125")  # 1000 * 0.5/1M + 500 * 1.5/1M
    assert "acme-secret-key" not in repr(provider)


def test_auto_register_list_has_the_runbook_providers() -> None:
    registry = default_registry(plugins=False)
    for name in (
        "openai",
        "fireworks",
        "together",
        "groq",
        "deepseek",
        "zai",
        "mistral",
        "openrouter",
    ):
        spec = registry.get(name)
        assert spec.wire == "openai-chat" and spec.source == "builtin"
        assert spec.default_base_url and spec.default_base_url.startswith("https://")
        assert spec.api_key_env == f"{name.upper()}_API_KEY"
    assert registry.get("fireworks").default_base_url == "https://api.fireworks.ai/inference/v1"
    assert registry.get("anthropic").wire == "anthropic-messages"
    assert len(AUTO_REGISTER) == len({row[0] for row in AUTO_REGISTER})


def test_create_builds_the_right_adapter_from_env() -> None:
    registry = default_registry(plugins=False)
    env = {"GROQ_API_KEY": "gsk_x", "ANTHROPIC_API_KEY": "sk-ant-x"}
    groq = registry.create("groq", environ=env)
    assert isinstance(groq, OpenAICompatibleProvider)
    assert groq.base_url == "https://api.groq.com/openai/v1"
    anthropic = registry.create("anthropic", environ=env)
    assert isinstance(anthropic, AnthropicProvider)


def test_unknown_provider_names_the_known_ones() -> None:
    registry = default_registry(plugins=False)
    with pytest.raises(
        ConfigurationError, match="registered providers: anthropic, bedrock, deepseek"
    ):
        registry.get("nope")


def test_invalid_names_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="lower-case"):
        Registry().register_openai_compatible(
            name="Bad Name", api_key_env="X", default_base_url="https://x"
        )


def test_register_by_name_and_factory() -> None:
    registry = Registry()

    def factory(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
        return OpenAICompatibleProvider(
            name="mine", api_key=api_key, base_url=base_url or "https://m"
        )

    spec = registry.register("mine", factory, api_key_env="MINE_API_KEY", default_models=("m1",))
    assert registry.get("mine") is spec and registry.models["mine"] == ("m1",)
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(spec, replace=False)
    with pytest.raises(ConfigurationError, match="needs a provider factory"):
        registry.register("other")


class FakeEntryPoint:
    def __init__(self, name: str, target: object) -> None:
        self.name = name
        self.value = f"{name}_pkg:register"
        self._target = target
        self.dist = SimpleNamespace(name=f"provara-provider-{name}")

    def load(self) -> object:
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def test_entry_points_register_specs_and_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    def factory(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
        return OpenAICompatibleProvider(name="viaspec", api_key=api_key, base_url="https://s")

    def hook(registry: Registry) -> None:
        registry.register_openai_compatible(
            name="viahook", api_key_env="VIAHOOK_API_KEY", default_base_url="https://h"
        )

    points = [
        FakeEntryPoint("viaspec", ProviderSpec(name="viaspec", factory=factory)),
        FakeEntryPoint("viahook", hook),
        FakeEntryPoint("broken", ImportError("no module named broken_pkg")),
    ]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: points)
    registry = Registry()
    loaded = registry.load_entry_points()
    assert loaded == ["viaspec", "viahook"]
    assert registry.get("viaspec").source == "entry-point:provara-provider-viaspec"
    assert "viahook" in registry
    assert "ImportError" in registry.plugin_errors["broken"]


def _models_handler(status: int, ids: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/models")
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "down for maintenance"}})
        return httpx.Response(200, json={"object": "list", "data": [{"id": i} for i in ids]})

    return httpx.MockTransport(handler)


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def test_refresh_models_survives_providers_that_are_down() -> None:
    registry = Registry()
    for name in ("up", "down", "gone"):
        registry.register_openai_compatible(
            name=name,
            api_key_env=f"{name.upper()}_API_KEY",
            default_base_url=f"https://{name}",
            default_models=("configured",),
        )
    providers = {
        "up": registry.create("up", api_key="k1", transport=_models_handler(200, ["a", "b"])),
        "down": registry.create("down", api_key="k2", transport=_models_handler(503, [])),
        "gone": registry.create("gone", api_key="k3", transport=httpx.MockTransport(_refused)),
    }
    report = await registry.refresh_models(providers)
    assert report.results["up"].status == "ok"
    assert registry.models["up"] == ("a", "b")
    assert report.failed == ["down", "gone"]
    assert "down for maintenance" in (report.results["down"].error or "")
    assert "ProviderConnectionError" in (report.results["gone"].error or "")
    assert registry.models["down"] == ("configured",)  # kept, not wiped
    assert "up: ok - 2 models" in str(report)


async def test_refresh_models_from_env_skips_providers_without_keys() -> None:
    registry = Registry()
    registry.register_openai_compatible(
        name="nokey", api_key_env="NOKEY_API_KEY", default_base_url="https://n"
    )
    report = await registry.refresh_models(environ={})
    assert report.results["nokey"].status == "skipped"
    assert "NOKEY_API_KEY" in (report.results["nokey"].error or "")


def test_completion_fixture_is_valid_json() -> None:
    json.dumps(COMPLETION)
