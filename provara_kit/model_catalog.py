"""Popular chat models of each built-in provider, as ids that provider's API accepts.

Every id here is exactly what goes in the request's ``model`` field (Fireworks ids carry their
``accounts/fireworks/models/`` prefix, OpenRouter, Together and some Groq ids carry a vendor
prefix). Each one has a list price in :data:`provara_kit.pricing.MODEL_PRICING`; the test
suite enforces that. Checked against the providers' own model and pricing pages in 2026-11;
providers retire models quickly, so treat this as a starting menu, not a promise.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_MODELS"]

DEFAULT_MODELS: Final[dict[str, tuple[str, ...]]] = {
    "openai": (
        "gpt-6-astra",
        "gpt-6.1-sol",
        "gpt-6.1-terra",
        "gpt-6-luna",
        "gpt-4o-mini",
    ),
    "anthropic": (
        "claude-fable-5-1",
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-haiku-4-5",
    ),
    "fireworks": (
        "accounts/fireworks/models/kimi-k2p6",
        "accounts/fireworks/models/kimi-k2p5",
        "accounts/fireworks/models/glm-5",
        "accounts/fireworks/models/glm-4p7",
        "accounts/fireworks/models/gpt-oss-120b",
        "accounts/fireworks/models/gpt-oss-20b",
    ),
    "together": (
        "moonshotai/Kimi-K2.5",
        "zai-org/GLM-5",
        "openai/gpt-oss-120b",
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    ),
    "groq": (
        "openai/gpt-oss-120b",
        "openai/gpt-oss-20b",
        "qwen/qwen3.6-27b",
    ),
    "deepseek": (
        "deepseek-flash",
        "deepseek-v4-pro",
        "deepseek-v4-flash",
    ),
    "zai": (
        "glm-5.3",
        "glm-5.2",
        "glm-5",
        "glm-4.7",
        "glm-4.6",
        "glm-4.7-flash",
    ),
    "mistral": (
        "mistral-medium-3.5",
        "mistral-large-2512",
        "codestral-2508",
    ),
    "openrouter": (
        "openai/gpt-6-sol",
        "openai/gpt-6.1-terra",
        "openai/gpt-4o-mini",
        "mistralai/mistral-medium-3-5",
    ),
    "perplexity": (
        "sonar",
        "sonar-pro",
        "sonar-reasoning-pro",
    ),
    "ollama": (
        "llama3.2",
        "qwen3",
        "gemma3",
        "gpt-oss:20b",
    ),
    "xai": (
        "grok-4.7",
        "grok-4.3",
        "grok-4.20-0309-reasoning",
        "grok-build-0.1",
    ),
    "gemini": (
        "gemini-3.5-flash",
        "gemini-3.1-pro-preview",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.5-pro",
    ),
    # Bedrock ids as Converse takes them: cross-region inference profiles ("us." prefix),
    # which on-demand calls to these models need.
    "bedrock": (
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "us.amazon.nova-pro-v1:0",
        "us.amazon.nova-lite-v1:0",
        "us.amazon.nova-micro-v1:0",
        "us.meta.llama3-3-70b-instruct-v1:0",
    ),
}
