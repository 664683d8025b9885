"""Installed, the package registers its provider, its prices and its wire dialect."""

from __future__ import annotations

import pytest
from conformance import resolve_dialect
from provara_kit.pricing import PriceRow, lookup_price
from provara_kit.registry import default_registry

from {{ cookiecutter.__module }} import DISTRIBUTION, add_pricing
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


def test_the_registry_finds_the_provider_through_its_entry_point() -> None:
    registry = default_registry()
    assert PROVIDER_NAME in registry, registry.plugin_errors
    spec = registry.get(PROVIDER_NAME)
    assert spec.source == f"entry-point:{DISTRIBUTION}"
    assert (spec.api_key_env, spec.base_url_env) == (API_KEY_ENV, BASE_URL_ENV)
    assert spec.default_base_url == DEFAULT_BASE_URL
    assert spec.wire == {{ cookiecutter.__class }}.wire
    assert registry.models[PROVIDER_NAME] == DEFAULT_MODELS


def test_the_registry_builds_the_adapter_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "sk-registry-test-4d2f0a")
    monkeypatch.setenv(BASE_URL_ENV, "https://staging.invalid/v1")
    provider = default_registry().create(PROVIDER_NAME)
    assert isinstance(provider, {{ cookiecutter.__class }})
    assert provider.base_url == "https://staging.invalid/v1"
    assert "sk-registry-test-4d2f0a" not in repr(provider)


def test_registration_prices_every_default_model() -> None:
    default_registry()
    for model in DEFAULT_MODELS:
        assert lookup_price(PROVIDER_NAME, model) is not None, f"{model} is unpriced"


def test_registration_keeps_the_prices_an_operator_set() -> None:
    key = next(iter(PRICING))
    table: dict[str, PriceRow] = {key: ("1", "2")}
    add_pricing(table)
    assert table[key] == ("1", "2")
    assert set(table) == set(PRICING)


def test_the_suite_finds_the_wire_dialect() -> None:
    dialect = resolve_dialect({{ cookiecutter.__class }}.wire)
    assert isinstance(dialect, {{ cookiecutter.__dialect_class }})
