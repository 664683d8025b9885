"""A tiny adapter to mutation-test: the OpenAI wire, registered as ``tiny`` on import.

Import it through ``PROVARA_PROVIDER_MODULES=tests.conformance.tiny_adapter`` (from the
checkout's root). Two places are out of every check's reach on purpose, so a mutation run
must report their mutants: the ``x-tiny-client`` header (no check reads it) and
``describe`` (nothing calls it).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from provara_kit.pricing import MODEL_PRICING
from provara_kit.providers.base import ParsedCompletion
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import REGISTRY, ProviderSpec

NAME = "tiny"
MODEL = "tiny-large"
BASE_URL = "https://api.tiny.example/v1"
CLIENT_HEADER = "x-tiny-client"


class TinyProvider(OpenAICompatibleProvider):
    """OpenAI-compatible, plus a client header and a summary line nothing uses."""

    def _completion_path(self) -> str:
        return "/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        headers[CLIENT_HEADER] = "provara-kit"  # no check reads it
        return headers

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        parsed = super()._parse_completion(body)
        return parsed

    def describe(self) -> str:  # nothing calls it
        return self.name + " at " + self.base_url


MODEL_PRICING.setdefault(f"{NAME}/{MODEL}", (1.0, 2.0))
if NAME not in REGISTRY:
    REGISTRY.register(
        ProviderSpec(
            name=NAME,
            factory=partial(TinyProvider, name=NAME, default_models=(MODEL,)),
            api_key_env="TINY_API_KEY",
            default_base_url=BASE_URL,
            default_models=(MODEL,),
            wire="openai-chat",
        )
    )
