"""List prices per model and exact, float-free cost arithmetic.

Prices live in :data:`MODEL_PRICING`, keyed ``"<provider>/<model id>"``. The key splits at
the *first* slash: everything before it is the provider, everything after it is the model id
exactly as the provider's API spells it (it may contain slashes itself, e.g.
``"fireworks/accounts/fireworks/models/glm-5"``). Values are ``(input, output)`` in USD per
1,000,000 tokens.

Add or override a row by plain assignment; floats, ints, strings and Decimals are all fine
because every value is normalised with ``Decimal(str(value))`` when it is looked up::

    MODEL_PRICING["fireworks/accounts/fireworks/models/my-tune"] = (0.2, 0.8)

:func:`lookup_price` returns ``None`` for a model with no row. ``None`` means *unpriced*
(cost unknown) and is different from a free model, which has the row ``(0, 0)`` and costs
exactly ``Decimal(0)``.

Dated snapshots. Some providers answer with a dated snapshot id even when the request named
the undated alias (OpenAI: ``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``; Anthropic:
``claude-haiku-4-5`` -> ``claude-haiku-4-5-20251001``). When there is no exact row,
the lookup strips **one** trailing ``-YYYY-MM-DD`` or ``-YYYYMMDD`` suffix, and only when it
is a real calendar date, and tries the undated id under the same provider. Nothing else is
stripped or guessed: no prefix matching (``gpt-4o`` never prices ``gpt-4o-mini``), no
``-latest``/``-0905``/``-2512`` style suffixes, no cross-provider fallback. A dated snapshot
priced differently from its alias just gets its own row, which always wins.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Final, TypeAlias

from provara_kit.errors import ConfigurationError

__all__ = [
    "MODEL_PRICING",
    "PICODOLLARS_PER_USD",
    "ModelPrice",
    "PriceRow",
    "PriceValue",
    "cost_usd",
    "format_usd",
    "from_picodollars",
    "lookup_price",
    "missing_pricing_hint",
    "pricing_key",
    "resolve_pricing_key",
    "to_picodollars",
    "undated_model_id",
    "validate_pricing",
]

PriceValue: TypeAlias = Decimal | int | float | str
"""What a user may write in a pricing row; normalised with ``Decimal(str(value))``."""

PriceRow: TypeAlias = tuple[PriceValue, PriceValue]
"""``(input_usd_per_1m_tokens, output_usd_per_1m_tokens)``."""

PICODOLLARS_PER_USD: Final = 10**12

_TOKENS_PER_PRICE_UNIT: Final = 6  # prices are per 10**6 tokens

# Exact arithmetic: enough digits for any realistic bill, and any rounding raises instead of
# silently losing money. Only format_usd/to_picodollars round, explicitly, half-even.
_EXACT: Final = Context(
    prec=120,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)
# format_usd rounds on purpose, so its context must not trap Inexact.
_ROUNDING: Final = Context(prec=120, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
_DISPLAY_PLACES: Final = Decimal("1E-8")

_DATE_SUFFIX: Final = re.compile(
    r"^(?P<base>.+)-(?:(?P<y1>\d{4})-(?P<m1>\d{2})-(?P<d1>\d{2})|(?P<y2>\d{4})(?P<m2>\d{2})(?P<d2>\d{2}))$"
)


def _usd(input_per_million: str, output_per_million: str) -> tuple[Decimal, Decimal]:
    return Decimal(input_per_million), Decimal(output_per_million)


# USD per 1M tokens: (input, output). Standard tier, non-cached input, text tokens; batch,
# flex, priority/fast, cache reads/writes, regional surcharges and per-request or tool fees
# are not included. Prices checked 2026-11 on each provider's own pricing/model pages:
#   openai      developers.openai.com/api/docs/pricing and /api/docs/models/<id>
#   anthropic   platform.claude.com/docs/en/about-claude/pricing and /docs/en/models/<id>/overview
#   fireworks   docs.fireworks.ai/serverless/pricing
#   together    docs.together.ai/docs/serverless/models (together.ai/pricing)
#   groq        console.groq.com/docs/models
#   deepseek    api-docs.deepseek.com/quick_start/pricing
#   zai         docs.z.ai/guides/overview/pricing
#   mistral     docs.mistral.ai/models (model cards) and mistral.ai/pricing
#   openrouter  openrouter.ai/<model id> (OpenRouter passes the provider's list price through)
#   perplexity  docs.perplexity.ai/getting-started/pricing
#   xai         docs.x.ai/developers/models/<id>
#   gemini      ai.google.dev/gemini-api/docs/pricing (Gemini Developer API, paid tier)
#   ollama      no list price: a local server runs on the operator's own hardware
#   bedrock     aws.amazon.com/bedrock/pricing/ (on-demand, US East; geo cross-region profiles)
# Prices change often: re-check before relying on a row for billing.
MODEL_PRICING: dict[str, PriceRow] = {
    # OpenAI. GPT-6 family: base tier, prompts up to 272K input tokens (above that the whole
    # request bills 2x input / 1.5x output).
    "openai/gpt-6-astra": _usd("10", "50"),  # base tier (<=272K input tokens)
    "openai/gpt-6.1-sol": _usd("2", "10"),  # base tier (<=272K input tokens)
    "openai/gpt-6.1-terra": _usd("1", "5"),  # base tier (<=272K input tokens)
    "openai/gpt-6-luna": _usd("0.10", "0.50"),  # base tier (<=272K input tokens)
    "openai/gpt-4o-mini": _usd("0.15", "0.60"),  # legacy; answers as gpt-4o-mini-2024-07-18
    # Anthropic. Responses may name the dated snapshot (claude-haiku-4-5-20251001).
    "anthropic/claude-fable-5-1": _usd("10", "50"),
    "anthropic/claude-opus-5-5": _usd("4", "20"),
    "anthropic/claude-sonnet-5-5": _usd("2", "10"),
    "anthropic/claude-haiku-5-5": _usd("0.10", "0.50"),  # base tier (prompts <=100K tokens)
    "anthropic/claude-haiku-4-5": _usd("1", "5"),
    # Fireworks serverless, Standard tier.
    "fireworks/accounts/fireworks/models/kimi-k2p6": _usd("0.95", "4.00"),
    "fireworks/accounts/fireworks/models/kimi-k2p5": _usd("0.60", "3.00"),
    "fireworks/accounts/fireworks/models/glm-5": _usd("1.00", "3.20"),
    "fireworks/accounts/fireworks/models/glm-4p7": _usd("0.60", "2.20"),
    "fireworks/accounts/fireworks/models/gpt-oss-120b": _usd("0.15", "0.60"),
    "fireworks/accounts/fireworks/models/gpt-oss-20b": _usd("0.07", "0.30"),
    # Together AI serverless.
    "together/moonshotai/Kimi-K2.5": _usd("0.50", "3.00"),
    "together/zai-org/GLM-5": _usd("1.00", "3.20"),
    "together/openai/gpt-oss-120b": _usd("0.15", "0.60"),
    "together/meta-llama/Llama-3.3-70B-Instruct-Turbo": _usd("0.88", "0.88"),
    # Groq on-demand.
    "groq/openai/gpt-oss-120b": _usd("0.15", "0.60"),
    "groq/openai/gpt-oss-20b": _usd("0.075", "0.30"),
    "groq/qwen/qwen3.6-27b": _usd("0.60", "3.00"),
    # DeepSeek bills by time of day; these are the PEAK (undiscounted) rates, so recorded cost
    # is an upper bound. Off-peak (outside 01:00-04:00 and 06:00-10:00 UTC on weekdays) is
    # exactly half.
    "deepseek/deepseek-flash": _usd("0.30", "1.20"),  # peak; off-peak 0.15 / 0.60
    "deepseek/deepseek-v4-pro": _usd("1.32", "3.96"),  # peak; off-peak 0.66 / 1.98
    "deepseek/deepseek-v4-flash": _usd("0.30", "1.20"),  # legacy name, billed as deepseek-flash
    # Z.ai (Zhipu GLM), international API.
    "zai/glm-5.3": _usd("1.40", "4.40"),
    "zai/glm-5.2": _usd("1.40", "4.40"),
    "zai/glm-5": _usd("1.00", "3.20"),
    "zai/glm-4.7": _usd("0.60", "2.20"),
    "zai/glm-4.6": _usd("0.60", "2.20"),
    "zai/glm-4.7-flash": _usd("0", "0"),  # free model: priced at zero, not unpriced
    # Mistral La Plateforme.
    "mistral/mistral-medium-3.5": _usd("1.50", "7.50"),
    "mistral/mistral-large-2512": _usd("0.50", "1.50"),
    "mistral/codestral-2508": _usd("0.30", "0.90"),
    # OpenRouter (ids are "<vendor>/<model>"; tiering follows the upstream provider).
    "openrouter/openai/gpt-6-sol": _usd("2", "10"),  # base tier (<=272K input tokens)
    "openrouter/openai/gpt-6.1-terra": _usd("1", "5"),  # base tier (<=272K input tokens)
    "openrouter/openai/gpt-4o-mini": _usd("0.15", "0.60"),
    "openrouter/mistralai/mistral-medium-3-5": _usd("1.50", "7.50"),
    # Perplexity: token prices only; the per-request search fee is not included.
    "perplexity/sonar": _usd("1", "1"),
    "perplexity/sonar-pro": _usd("3", "15"),
    "perplexity/sonar-reasoning-pro": _usd("2", "8"),
    # xAI. Base tier: prompts under 200K tokens (at or above, the whole request bills 2x).
    "xai/grok-4.7": _usd("2", "6"),  # base tier (<200K prompt tokens)
    "xai/grok-4.3": _usd("1.25", "2.50"),  # base tier (<200K prompt tokens)
    "xai/grok-4.20-0309-reasoning": _usd("1.25", "2.50"),  # base tier (<200K prompt tokens)
    "xai/grok-build-0.1": _usd("1", "2"),  # base tier (<200K prompt tokens)
    # Gemini (Developer API, paid tier, text input). Output includes thinking tokens. Tiered
    # models list their base tier (prompts <=200K tokens; above it input and output cost more).
    "gemini/gemini-3.5-flash": _usd("1.50", "9"),
    "gemini/gemini-3.1-pro-preview": _usd("2", "12"),  # base tier (<=200K prompt tokens)
    "gemini/gemini-2.5-pro": _usd("1.25", "10"),  # base tier (<=200K prompt tokens)
    "gemini/gemini-2.5-flash": _usd("0.30", "2.50"),
    "gemini/gemini-2.5-flash-lite": _usd("0.10", "0.40"),
    # Ollama: local compute, billed by nobody per token, so the default models are priced
    # at zero (a real price, reported priced). A model pulled later has no row and stays
    # unpriced until the operator adds one; Ollama Cloud models are billed by plan, not per
    # token, so they get no row either.
    "ollama/llama3.2": _usd("0", "0"),  # local compute
    "ollama/qwen3": _usd("0", "0"),  # local compute
    "ollama/gemma3": _usd("0", "0"),  # local compute
    "ollama/gpt-oss:20b": _usd("0", "0"),  # local compute
    # Amazon Bedrock, on-demand in US East (aws.amazon.com/bedrock/pricing/); cache reads and
    # writes, batch and provisioned throughput bill differently.
    "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0": _usd("3", "15"),
    "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0": _usd("1", "5"),
    "bedrock/us.amazon.nova-pro-v1:0": _usd("0.80", "3.20"),
    "bedrock/us.amazon.nova-lite-v1:0": _usd("0.06", "0.24"),
    "bedrock/us.amazon.nova-micro-v1:0": _usd("0.035", "0.14"),
    "bedrock/us.meta.llama3-3-70b-instruct-v1:0": _usd("0.72", "0.72"),
}


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's list price in USD per 1M tokens; :meth:`cost` is exact Decimal arithmetic."""

    input_per_million: Decimal
    output_per_million: Decimal

    def __post_init__(self) -> None:
        for name in ("input_per_million", "output_per_million"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"ModelPrice.{name} must be a finite Decimal >= 0, got {value!r}")

    @property
    def is_free(self) -> bool:
        """True for a model priced at zero in both directions."""
        return self.input_per_million == 0 and self.output_per_million == 0

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """USD for one request, exactly: ``(in * input + out * output) / 1e6``."""
        _check_tokens("input_tokens", input_tokens)
        _check_tokens("output_tokens", output_tokens)
        total = _EXACT.add(
            _EXACT.multiply(Decimal(input_tokens), self.input_per_million),
            _EXACT.multiply(Decimal(output_tokens), self.output_per_million),
        )
        return total.scaleb(-_TOKENS_PER_PRICE_UNIT, _EXACT)


def _check_tokens(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def pricing_key(provider: str, model: str) -> str:
    """The :data:`MODEL_PRICING` key for a model: ``"<provider>/<model id>"``."""
    if not provider or "/" in provider:
        raise ValueError(f"provider must be a non-empty name without '/', got {provider!r}")
    if not model:
        raise ValueError("model must be a non-empty model id")
    return f"{provider}/{model}"


def undated_model_id(model: str) -> str | None:
    """``model`` without one trailing ``-YYYY-MM-DD``/``-YYYYMMDD`` date, or None if it has none.

    The suffix must be a valid calendar date; ``gpt-4o-mini-2024-07-18`` gives ``gpt-4o-mini``,
    ``kimi-k2-instruct-0905`` and ``mistral-large-2512`` give None.
    """
    match = _DATE_SUFFIX.match(model)
    if match is None:
        return None
    year, month, day = (
        (match["y1"], match["m1"], match["d1"])
        if match["y1"] is not None
        else (match["y2"], match["m2"], match["d2"])
    )
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return None
    return match["base"]


def resolve_pricing_key(
    provider: str, model: str, table: Mapping[str, object] = MODEL_PRICING
) -> str | None:
    """The key :func:`lookup_price` would use: the exact key, else the undated one, else None."""
    exact = pricing_key(provider, model)
    if exact in table:
        return exact
    undated = undated_model_id(model)
    if undated is not None:
        fallback = pricing_key(provider, undated)
        if fallback in table:
            return fallback
    return None


def lookup_price(
    provider: str, model: str, table: Mapping[str, object] = MODEL_PRICING
) -> ModelPrice | None:
    """The price of ``provider``/``model``, or None when it is unpriced.

    Tries the exact key, then the undated snapshot rule described in the module docstring.
    A row that is not two finite, non-negative numbers raises :class:`ConfigurationError`
    naming its key.
    """
    key = resolve_pricing_key(provider, model, table)
    if key is None:
        return None
    row = table[key]
    cached = _PARSED_ROWS.get(key)
    if cached is not None and cached[0] is row:
        return cached[1]
    price = _parse_row(key, row)
    if isinstance(row, tuple):
        # Only immutable rows are remembered: a list could change under the same identity.
        if len(_PARSED_ROWS) >= _PARSED_ROWS_MAX:
            _PARSED_ROWS.clear()
        _PARSED_ROWS[key] = (row, price)
    return price


# key -> (the row object, its parse); a lookup reuses the parse only for the very same row
# object, so a table edited at run time is always read afresh.
_PARSED_ROWS: dict[str, tuple[object, ModelPrice]] = {}
_PARSED_ROWS_MAX = 4096


def cost_usd(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    table: Mapping[str, object] = MODEL_PRICING,
) -> Decimal | None:
    """Exact USD cost of one request, or None when the model is unpriced."""
    price = lookup_price(provider, model, table)
    if price is None:
        return None
    return price.cost(input_tokens, output_tokens)


def validate_pricing(table: Mapping[str, object] = MODEL_PRICING) -> dict[str, ModelPrice]:
    """Parse every row up front (e.g. at startup); the first bad row raises ConfigurationError."""
    parsed: dict[str, ModelPrice] = {}
    for key, row in table.items():
        provider, sep, model = key.partition("/")
        if not provider or not sep or not model:
            raise ConfigurationError(
                f'MODEL_PRICING key {key!r} must look like "<provider>/<model id>"'
            )
        parsed[key] = _parse_row(key, row)
    return parsed


def missing_pricing_hint(provider: str, model: str) -> str:
    """The exact line that prices an unpriced model, ready to paste into configuration."""
    key = json.dumps(pricing_key(provider, model), ensure_ascii=False)
    return f"MODEL_PRICING[{key}] = (input_usd_per_1m, output_usd_per_1m)"


def _parse_row(key: str, row: object) -> ModelPrice:
    if isinstance(row, ModelPrice):
        return row
    if not isinstance(row, (tuple, list)) or len(row) != 2:
        raise ConfigurationError(
            f"MODEL_PRICING[{key!r}] must be a pair (input_usd_per_1m, output_usd_per_1m), "
            f"got {row!r}"
        )
    return ModelPrice(
        input_per_million=_parse_price(key, "input", row[0]),
        output_per_million=_parse_price(key, "output", row[1]),
    )


def _parse_price(key: str, side: str, value: object) -> Decimal:
    where = f"MODEL_PRICING[{key!r}] {side} price"
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise ConfigurationError(
            f"{where} must be a number (Decimal, int, float or numeric str), got {value!r}"
        )
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ConfigurationError(f"{where} is not a number: {value!r}") from None
    if not price.is_finite():
        raise ConfigurationError(f"{where} must be finite, got {value!r}")
    if price < 0:
        raise ConfigurationError(f"{where} must be >= 0 USD per 1M tokens, got {value!r}")
    return price.copy_abs() if price == 0 else price  # -0 -> 0


def to_picodollars(amount: Decimal) -> int:
    """``amount`` USD as an integer number of pico-dollars (1e-12 USD), rounded half-even.

    Why pico-dollars: rollups should add integers, and the unit must be fine enough that
    converting a per-request cost loses nothing. A cost is ``tokens * price / 1e6``; with a
    price of at most 6 decimal places per 1M tokens (every list price here, and cache rates
    such as $0.003625) the cost has at most 12 decimal places, so pico-dollars are exact.
    Micro-dollars would not be: one token of a $0.05/1M model costs 0.05 micro-dollars.
    Rounding only happens for prices with more than 6 decimals. A signed 64-bit column holds
    about $9.2M of pico-dollars; store larger rollups as NUMERIC or keep Python ints.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
    scaled = amount.scaleb(12, _EXACT)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN, context=_EXACT))


def from_picodollars(picodollars: int) -> Decimal:
    """The USD amount of an integer number of pico-dollars, exactly."""
    if isinstance(picodollars, bool) or not isinstance(picodollars, int):
        raise TypeError(f"picodollars must be an int, got {type(picodollars).__name__}")
    return Decimal(picodollars).scaleb(-12, _EXACT)


def format_usd(amount: Decimal) -> str:
    """``amount`` for display: rounded half-even to 8 decimals, trailing zeros dropped.

    ``Decimal("0.012207")`` -> ``"$0.012207"``, ``Decimal("3.50")`` -> ``"$3.5"``,
    ``Decimal("-0.25")`` -> ``"-$0.25"``. Amounts under half of $0.00000001 show as ``"$0"``;
    this is for humans only, never feed it back into arithmetic.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"amount must be a finite Decimal, got {amount!r}")
    rounded = amount.quantize(_DISPLAY_PLACES, rounding=ROUND_HALF_EVEN, context=_ROUNDING)
    text = format(rounded.copy_abs(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    sign = "-" if rounded < 0 else ""
    return f"{sign}${text}"
