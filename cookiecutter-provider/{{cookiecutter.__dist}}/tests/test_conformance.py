"""Every provara-kit conformance check against the adapter, scripted in its own wire dialect.

``pytest`` runs them offline. ``pytest --live`` runs the live checks against the real API
with ``{{ cookiecutter.__env }}_API_KEY`` (and ``{{ cookiecutter.__env }}_BASE_URL`` when set);
``--live --record`` also saves the real exchanges into ``tests/fixtures``, which the
``replay-fixtures`` check plays back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import httpx
from conformance import ProviderConformance

from {{ cookiecutter.__module }}.dialect import {{ cookiecutter.__dialect_class }}
from {{ cookiecutter.__module }}.pricing import PRICING
from {{ cookiecutter.__module }}.provider import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MODELS,
    PROVIDER_NAME,
    {{ cookiecutter.__class }},
)


class Test{{ cookiecutter.__class }}Conformance(ProviderConformance):
    provider_name = PROVIDER_NAME
    wire = {{ cookiecutter.__dialect_class }}()
    models = DEFAULT_MODELS
    api_key_env = API_KEY_ENV
    base_url = os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    pricing = PRICING
    fixtures_dir = Path(__file__).parent / "fixtures"
    # Check id -> why the adapter cannot pass it yet. It runs as a strict xfail, so the day
    # the adapter passes it the suite says so; a check is never skipped silently.
    expected_failures: ClassVar[Mapping[str, str]] = {}

    def make_provider(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> {{ cookiecutter.__class }}:
        return {{ cookiecutter.__class }}(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            transport=transport,
            pricing=self.pricing,
        )
