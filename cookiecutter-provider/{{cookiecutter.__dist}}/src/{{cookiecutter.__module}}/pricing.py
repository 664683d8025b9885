"""What {{ cookiecutter.provider_name }}'s models cost, in USD per 1M tokens.

:func:`add_pricing` runs when the provider is registered: it adds :data:`PRICING` to
provara-kit's ``MODEL_PRICING``, keeping any row an operator has set already. A model with
no row is reported unpriced (``cost_usd`` None), never as $0, and the ``pricing-presence``
check names it: add it to :data:`PRICES`.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Final

from provara_kit.pricing import MODEL_PRICING, PriceRow, pricing_key

from {{ cookiecutter.__module }}.provider import PROVIDER_NAME

__all__ = ["PRICES", "PRICING", "add_pricing"]

PRICES: Final[Mapping[str, PriceRow]] = {
{%- for model, price_in, price_out in cookiecutter.models | model_prices %}
    "{{ model }}": ("{{ price_in }}", "{{ price_out }}"),
{%- endfor %}
}
"""Model id -> ``(input, output)`` list price in USD per 1M tokens."""

PRICING: Final[Mapping[str, PriceRow]] = {
    pricing_key(PROVIDER_NAME, model): row for model, row in PRICES.items()
}
"""The same rows keyed as ``MODEL_PRICING`` keys them: ``"<provider>/<model id>"``."""


def add_pricing(table: MutableMapping[str, PriceRow] = MODEL_PRICING) -> None:
    """Add the rows ``table`` (default: the kit's global price table) does not have yet."""
    for key, row in PRICING.items():
        table.setdefault(key, row)
