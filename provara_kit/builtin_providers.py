"""The providers that ship built in, and the factories that build them.

The OpenAI-compatible ones are the rows of :data:`AUTO_REGISTER`; Anthropic, Gemini,
Ollama and Bedrock are registered with their native adapters. :func:`register_builtins`
adds them all to a :class:`~provara_kit.registry.Registry`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from provara_kit.model_catalog import DEFAULT_MODELS
from provara_kit.provider import Provider
from provara_kit.provider_spec import ProviderFactory, ProviderSpec
from provara_kit.providers import bedrock
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.gemini import GeminiProvider
from provara_kit.providers.ollama import OllamaProvider

if TYPE_CHECKING:
    from provara_kit.registry import Registry

__all__ = ["AUTO_REGISTER", "register_builtins"]

# name, key env, base-URL env, default base URL: the providers known to speak the OpenAI wire.
AUTO_REGISTER: tuple[tuple[str, str, str, str], ...] = (
    ("openai", "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    (
        "fireworks",
        "FIREWORKS_API_KEY",
        "FIREWORKS_BASE_URL",
        "https://api.fireworks.ai/inference/v1",
    ),
    ("together", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", "https://api.together.xyz/v1"),
    ("groq", "GROQ_API_KEY", "GROQ_BASE_URL", "https://api.groq.com/openai/v1"),
    ("deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com"),
    ("zai", "ZAI_API_KEY", "ZAI_BASE_URL", "https://api.z.ai/api/paas/v4"),
    ("mistral", "MISTRAL_API_KEY", "MISTRAL_BASE_URL", "https://api.mistral.ai/v1"),
    ("openrouter", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1"),
    ("perplexity", "PERPLEXITY_API_KEY", "PERPLEXITY_BASE_URL", "https://api.perplexity.ai"),
    ("xai", "XAI_API_KEY", "XAI_BASE_URL", "https://api.x.ai/v1"),
)


def _native_factory(adapter: Callable[..., Provider]) -> ProviderFactory:
    """A factory for a native adapter that keeps its own default base URL unless one is
    configured (``<NAME>_BASE_URL``)."""

    def build(
        *,
        api_key: str | None,
        base_url: str | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Provider:
        kwargs: dict[str, Any] = {"api_key": api_key, "transport": transport}
        if base_url:
            kwargs["base_url"] = base_url
        return adapter(**kwargs)

    return build


@dataclass(frozen=True, slots=True)
class _BedrockSpec(ProviderSpec):
    """Bedrock's key comes from the standard AWS variables: a Bedrock API key, else the
    access key pair (:func:`~provara_kit.providers.bedrock.environment_key`)."""

    def api_key(self, environ: Mapping[str, str] = os.environ) -> str | None:
        return bedrock.environment_key(environ)


def _bedrock_factory(
    *,
    api_key: str | None,
    base_url: str | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Provider:
    return bedrock.BedrockProvider(
        api_key=api_key,
        base_url=base_url,
        transport=transport,
        default_models=DEFAULT_MODELS.get("bedrock", bedrock.DEFAULT_BEDROCK_MODELS),
    )


def register_builtins(registry: Registry) -> None:
    """Register every built-in provider in ``registry`` (source ``"builtin"``)."""
    for name, key_env, url_env, base_url in AUTO_REGISTER:
        registry.register_openai_compatible(
            name=name,
            api_key_env=key_env,
            base_url_env=url_env,
            default_base_url=base_url,
            default_models=DEFAULT_MODELS.get(name, ()),
            source="builtin",
        )
    registry.register(
        ProviderSpec(
            name="anthropic",
            factory=_native_factory(AnthropicProvider),
            api_key_env="ANTHROPIC_API_KEY",
            base_url_env="ANTHROPIC_BASE_URL",
            default_base_url="https://api.anthropic.com/v1",
            default_models=DEFAULT_MODELS.get("anthropic", ()),
            wire=AnthropicProvider.wire,
            source="builtin",
        )
    )
    registry.register(
        ProviderSpec(
            name="gemini",
            factory=_native_factory(GeminiProvider),
            api_key_env="GEMINI_API_KEY",
            base_url_env="GEMINI_BASE_URL",
            default_base_url="https://generativelanguage.googleapis.com/v1beta",
            default_models=DEFAULT_MODELS.get("gemini", ()),
            wire=GeminiProvider.wire,
            source="builtin",
        )
    )
    registry.register(
        ProviderSpec(
            name="ollama",
            factory=_native_factory(OllamaProvider),
            api_key_env="OLLAMA_API_KEY",
            base_url_env="OLLAMA_BASE_URL",
            default_base_url="http://localhost:11434",
            default_models=DEFAULT_MODELS.get("ollama", ()),
            wire=OllamaProvider.wire,
            source="builtin",
            api_key_required=False,
        )
    )
    registry.register(
        _BedrockSpec(
            name="bedrock",
            factory=_bedrock_factory,
            api_key_env=bedrock.API_KEY_ENV,
            base_url_env=bedrock.BASE_URL_ENV,
            default_base_url=None,  # the region's endpoint, chosen when the provider is built
            default_models=DEFAULT_MODELS.get("bedrock", bedrock.DEFAULT_BEDROCK_MODELS),
            wire=bedrock.BedrockProvider.wire,
            source="builtin",
        )
    )
