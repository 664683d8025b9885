"""The whole conformance suite on the Gemini adapter in its other stream framing.

The registered ``gemini`` provider asks for SSE streams (``alt=sse``); ``nox -s
conformance`` runs the suite on it. This runs every check again on an instance built with
``stream_framing="json-array"``, against the dialect streaming JSON arrays, with the wire
corpus's array recordings replayed.
"""

from __future__ import annotations

import dataclasses

import httpx

from conformance import ConformanceTarget, ProviderConformance
from conformance.replay import default_corpus
from provara_kit.model_catalog import DEFAULT_MODELS
from provara_kit.provider import Provider
from provara_kit.providers.gemini import API_KEY_ENV, DEFAULT_BASE_URL, GeminiProvider
from provara_kit.testing.dialects.gemini import GeminiDialect


class TestGeminiJSONArrayConformance(ProviderConformance):
    provider_name = "gemini"
    wire = GeminiDialect(stream_framing="json-array")
    models = DEFAULT_MODELS["gemini"]
    api_key_env = API_KEY_ENV

    def make_provider(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Provider:
        return GeminiProvider(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            transport=transport,
            stream_framing="json-array",
        )

    def conformance_target_for(self) -> ConformanceTarget:
        target = super().conformance_target_for()
        corpus = default_corpus()
        folder = None if corpus is None else corpus / "gemini"
        return dataclasses.replace(target, corpus_dir=folder)
