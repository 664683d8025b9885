"""Provara adapter for {{ cookiecutter.provider_name }}.

Installed, the package registers provider ``{{ cookiecutter.__slug }}`` and its prices with
provara-kit through the ``provara.providers`` entry-point group (:func:`register`), and
gives the conformance suite its wire dialect, ``{{ cookiecutter.__wire }}``, through the
``provara.dialects`` group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from {{ cookiecutter.__module }}.pricing import PRICING, add_pricing
from {{ cookiecutter.__module }}.provider import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MODELS,
    PROVIDER_NAME,
    {{ cookiecutter.__class }},
)

if TYPE_CHECKING:
    from provara_kit.registry import Registry

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODELS",
    "DISTRIBUTION",
    "PRICING",
    "PROVIDER_NAME",
    "{{ cookiecutter.__class }}",
    "add_pricing",
    "create_provider",
    "register",
]

DISTRIBUTION = "{{ cookiecutter.__dist }}"


def create_provider(
    *,
    api_key: str | None,
    base_url: str | None,
    transport: httpx.AsyncBaseTransport | None,
) -> {{ cookiecutter.__class }}:
    """The registry's factory: the adapter at ``base_url``, or at the default one."""
    return {{ cookiecutter.__class }}(
        api_key=api_key,
        base_url=base_url or DEFAULT_BASE_URL,
        transport=transport,
    )


def register(registry: Registry) -> None:
    """The ``provara.providers`` entry point: add the provider, then its prices."""
    registry.register(
        PROVIDER_NAME,
        create_provider,
        api_key_env=API_KEY_ENV,
        base_url_env=BASE_URL_ENV,
        default_base_url=DEFAULT_BASE_URL,
        default_models=DEFAULT_MODELS,
        wire={{ cookiecutter.__class }}.wire,
        source=f"entry-point:{DISTRIBUTION}",
    )
    add_pricing()
