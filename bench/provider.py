"""Imported by the gateway under test (``PROVARA_PROVIDER_MODULES=bench.provider``).

Two OpenAI-compatible providers on the mock upstream: ``mock`` answers completions and
``mockstream`` answers streams (nginx serves each on its own port; see
:mod:`bench.upstream`).
"""

from __future__ import annotations

from provara_kit.pricing import MODEL_PRICING
from provara_kit.registry import register_openai_compatible

for _name in ("mock", "mockstream"):
    register_openai_compatible(
        name=_name,
        api_key_env=f"{_name.upper()}_API_KEY",
        base_url_env=f"{_name.upper()}_BASE_URL",
        default_base_url="http://127.0.0.1:9/v1",
        default_models=("bench-model",),
    )
    MODEL_PRICING[f"{_name}/bench-model"] = (0.15, 0.60)
