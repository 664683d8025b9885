"""Known-bad adapters that are built wrong: the configuration they are given is lost."""

from __future__ import annotations

from typing import Any

from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from tests.conformance.case import Case


class IgnoresBaseURL(AnthropicProvider):
    """Hard-codes Anthropic's own base URL in ``__init__`` (copied from the adapter it was
    modelled on): an Anthropic-shaped provider's key is sent to api.anthropic.com."""

    def __init__(self, **options: Any) -> None:
        options["base_url"] = "https://api.anthropic.com/v1"
        super().__init__(**options)


class DefaultModelsNone(OpenAICompatibleProvider):
    """Passes ``default_models=None`` ("discovery will fill them in"): until discovery
    runs, or when it fails, the gateway serves none of the provider's models."""

    def __init__(self, **options: Any) -> None:
        options["default_models"] = None
        super().__init__(**options)


CASES: tuple[Case, ...] = (
    Case(
        "request-shape",
        IgnoresBaseURL,
        r"complete: sent to host 'api.anthropic.com', not the configured base URL's "
        r"'conformance.invalid'",
    ),
    Case(
        "model-discovery",
        DefaultModelsNone,
        r"provider.default_models \(\) lacks the target's models \['acme-large'\]",
    ),
)
