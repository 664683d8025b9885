"""Tests for provara_kit.pricing and provara_kit.model_catalog."""

from __future__ import annotations

import dataclasses
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provara_kit.errors import ConfigurationError
from provara_kit.model_catalog import DEFAULT_MODELS
from provara_kit.pricing import (
    MODEL_PRICING,
    PICODOLLARS_PER_USD,
    ModelPrice,
    cost_usd,
    format_usd,
    from_picodollars,
    lookup_price,
    missing_pricing_hint,
    pricing_key,
    resolve_pricing_key,
    to_picodollars,
    undated_model_id,
    validate_pricing,
)

BUILT_IN_PROVIDERS = {
    "openai",
    "anthropic",
    "bedrock",
    "fireworks",
    "together",
    "groq",
    "deepseek",
    "zai",
    "mistral",
    "openrouter",
    "perplexity",
    "xai",
    "gemini",
    "ollama",
}

# --- catalog and table --------------------------------------------------------------------


def test_catalog_covers_every_built_in_provider_with_a_handful_of_models() -> None:
    assert set(DEFAULT_MODELS) == BUILT_IN_PROVIDERS
    for provider, models in DEFAULT_MODELS.items():
        assert 3 <= len(models) <= 8, provider
        assert len(set(models)) == len(models), f"duplicate model ids for {provider}"
        for model in models:
            assert model == model.strip() and model, (provider, model)


@pytest.mark.parametrize(
    ("provider", "model"),
    [(provider, model) for provider, models in DEFAULT_MODELS.items() for model in models],
)
def test_every_default_model_is_priced_by_its_exact_key(provider: str, model: str) -> None:
    assert pricing_key(provider, model) in MODEL_PRICING
    price = lookup_price(provider, model)
    assert price is not None
    assert isinstance(price.input_per_million, Decimal)
    assert isinstance(price.output_per_million, Decimal)


def test_provider_specific_id_shapes() -> None:
    assert all(m.startswith("accounts/fireworks/models/") for m in DEFAULT_MODELS["fireworks"])
    assert all(m.count("/") == 1 for m in DEFAULT_MODELS["openrouter"])
    assert "glm-4.6" in DEFAULT_MODELS["zai"]


def test_built_in_table_is_valid_decimal_and_has_sane_keys() -> None:
    parsed = validate_pricing()
    assert set(parsed) == set(MODEL_PRICING)
    for key, row in MODEL_PRICING.items():
        provider, _, model = key.partition("/")
        assert provider in BUILT_IN_PROVIDERS, key
        assert model, key
        assert all(isinstance(value, Decimal) for value in row), key
        assert row[0] <= row[1], f"input dearer than output for {key}"


def test_built_in_table_has_no_rows_outside_the_catalog() -> None:
    catalog_keys = {pricing_key(p, m) for p, models in DEFAULT_MODELS.items() for m in models}
    assert set(MODEL_PRICING) == catalog_keys


def test_known_list_prices() -> None:
    assert lookup_price("anthropic", "claude-sonnet-5-5") == ModelPrice(Decimal(2), Decimal(10))
    assert lookup_price("openai", "gpt-4o-mini") == ModelPrice(Decimal("0.15"), Decimal("0.6"))
    assert lookup_price("groq", "openai/gpt-oss-20b") == ModelPrice(
        Decimal("0.075"), Decimal("0.30")
    )


def test_key_splits_at_first_slash() -> None:
    key = pricing_key("fireworks", "accounts/fireworks/models/glm-5")
    assert key == "fireworks/accounts/fireworks/models/glm-5"
    assert key.partition("/")[0] == "fireworks"
    # Same model id under two providers is two different rows.
    assert lookup_price("together", "openai/gpt-oss-120b") is not None
    assert lookup_price("openai", "gpt-oss-120b") is None
    with pytest.raises(ValueError, match="provider"):
        pricing_key("open/ai", "x")
    with pytest.raises(ValueError, match="provider"):
        pricing_key("", "x")
    with pytest.raises(ValueError, match="model"):
        pricing_key("openai", "")


# --- exact costs --------------------------------------------------------------------------


def test_cost_is_exact() -> None:
    price = ModelPrice(Decimal(3), Decimal(15))
    cost = price.cost(1234, 567)
    assert cost == Decimal("0.012207")
    assert str(cost) == "0.012207"


def test_cost_of_one_token_of_a_cheap_model_is_not_lost() -> None:
    price = ModelPrice(Decimal("0.05"), Decimal("0.08"))
    assert price.cost(1, 0) == Decimal("0.00000005")
    assert price.cost(0, 1) == Decimal("0.00000008")
    assert to_picodollars(price.cost(1, 0)) == 50_000


def test_cost_usd_uses_the_table_and_fallback() -> None:
    assert cost_usd("openai", "gpt-6.1-sol", 1_000_000, 1_000_000) == Decimal(12)
    assert cost_usd("anthropic", "claude-haiku-4-5-20251001", 1234, 567) == Decimal("0.004069")
    assert cost_usd("openai", "no-such-model", 1, 1) is None


def test_cost_rejects_bad_token_counts() -> None:
    price = ModelPrice(Decimal(1), Decimal(1))
    with pytest.raises(ValueError, match="input_tokens"):
        price.cost(-1, 0)
    with pytest.raises(ValueError, match="output_tokens"):
        price.cost(0, -5)
    with pytest.raises(TypeError, match="input_tokens"):
        price.cost(1.5, 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="output_tokens"):
        price.cost(0, True)


def test_huge_token_counts_stay_exact() -> None:
    price = ModelPrice(Decimal("0.123456"), Decimal("9.87654"))
    tokens = 10**30 + 7
    with localcontext() as ctx:
        ctx.prec = 200
        expected = (
            Decimal(tokens) * Decimal("0.123456") + Decimal(tokens) * Decimal("9.87654")
        ) / Decimal(10**6)
    assert price.cost(tokens, tokens) == expected


def test_model_price_is_frozen_and_validated() -> None:
    price = ModelPrice(Decimal(1), Decimal(2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        price.input_per_million = Decimal(5)  # type: ignore[misc]
    with pytest.raises(ValueError, match="input_per_million"):
        ModelPrice(Decimal(-1), Decimal(1))
    with pytest.raises(ValueError, match="output_per_million"):
        ModelPrice(Decimal(1), Decimal("NaN"))
    with pytest.raises(ValueError, match="input_per_million"):
        ModelPrice(1.0, Decimal(1))  # type: ignore[arg-type]


prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
requests = st.lists(
    st.tuples(st.integers(0, 2_000_000), st.integers(0, 2_000_000)), min_size=1, max_size=200
)


@given(input_price=prices, output_price=prices, calls=requests)
def test_sum_of_costs_equals_cost_of_summed_tokens(
    input_price: Decimal, output_price: Decimal, calls: list[tuple[int, int]]
) -> None:
    price = ModelPrice(input_price, output_price)
    with localcontext() as ctx:
        ctx.prec = 200  # the caller's rollup must not round either
        summed = sum((price.cost(i, o) for i, o in calls), Decimal(0))
    total = price.cost(sum(i for i, _ in calls), sum(o for _, o in calls))
    assert summed == total
    # Integer pico-dollars add up to exactly the same total.
    assert sum(to_picodollars(price.cost(i, o)) for i, o in calls) == to_picodollars(total)
    assert from_picodollars(to_picodollars(total)) == total


@given(calls=st.lists(st.integers(1, 50), min_size=1, max_size=500))
def test_many_tiny_costs_do_not_drift(calls: list[int]) -> None:
    price = ModelPrice(Decimal("0.05"), Decimal("0.4"))
    summed = sum((price.cost(n, n) for n in calls), Decimal(0))
    assert summed == price.cost(sum(calls), sum(calls))
    assert summed == Decimal(sum(calls)) * Decimal("0.45") / Decimal(10**6)


# --- free vs unpriced ---------------------------------------------------------------------


def test_free_model_is_priced_at_zero_while_missing_is_none() -> None:
    free = lookup_price("zai", "glm-4.7-flash")
    assert free is not None
    assert free.is_free
    assert cost_usd("zai", "glm-4.7-flash", 10_000, 5_000) == 0
    assert lookup_price("zai", "glm-9.9") is None
    assert cost_usd("zai", "glm-9.9", 10_000, 5_000) is None


def test_free_row_added_by_user() -> None:
    table = {"local/llama": (0, 0)}
    price = lookup_price("local", "llama", table)
    assert price is not None and price.is_free
    assert cost_usd("local", "llama", 5, 5, table) == Decimal(0)


# --- user rows: normalisation and rejection -----------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ((0.2, 0.8), (Decimal("0.2"), Decimal("0.8"))),
        ((0.1, 0.3), (Decimal("0.1"), Decimal("0.3"))),  # no 0.1000000000000000055...
        ((3, 15), (Decimal(3), Decimal(15))),
        (("0.075", "0.30"), (Decimal("0.075"), Decimal("0.30"))),
        ((" 1.25 ", "2.5"), (Decimal("1.25"), Decimal("2.5"))),
        ((Decimal("0.95"), 4), (Decimal("0.95"), Decimal(4))),
        ([1, 2], (Decimal(1), Decimal(2))),
        ((-0.0, 0), (Decimal(0), Decimal(0))),
    ],
)
def test_user_rows_are_normalised(row: object, expected: tuple[Decimal, Decimal]) -> None:
    table = {"fireworks/accounts/fireworks/models/x": row}
    price = lookup_price("fireworks", "accounts/fireworks/models/x", table)
    assert price == ModelPrice(*expected)
    assert not price.input_per_million.is_signed()


def test_float_row_cost_is_exact() -> None:
    table = {"fireworks/x": (0.1, 0.2)}
    assert cost_usd("fireworks", "x", 3, 3, table) == Decimal("0.0000009")


def test_assignment_into_module_table_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MODEL_PRICING, "fireworks/accounts/fireworks/models/my-tune", (0.2, 0.8))
    assert cost_usd("fireworks", "accounts/fireworks/models/my-tune", 1_000_000, 0) == Decimal(
        "0.2"
    )


def test_a_row_replaced_at_run_time_is_read_afresh() -> None:
    table: dict[str, object] = {"p/m": (1, 2)}
    assert lookup_price("p", "m", table) == ModelPrice(Decimal(1), Decimal(2))
    table["p/m"] = (3, 4)
    assert lookup_price("p", "m", table) == ModelPrice(Decimal(3), Decimal(4))
    table["p/m"] = ("oops", 4)
    with pytest.raises(ConfigurationError, match="p/m"):
        lookup_price("p", "m", table)


def test_a_list_row_edited_in_place_is_read_afresh() -> None:
    row = [1, 2]
    table: dict[str, object] = {"p/m": row}
    assert lookup_price("p", "m", table) == ModelPrice(Decimal(1), Decimal(2))
    row[1] = 5
    assert lookup_price("p", "m", table) == ModelPrice(Decimal(1), Decimal(5))


def test_the_same_key_in_two_tables_keeps_each_price() -> None:
    first: dict[str, object] = {"p/m": (1, 2)}
    second: dict[str, object] = {"p/m": (7, 8)}
    for _ in range(2):
        assert lookup_price("p", "m", first) == ModelPrice(Decimal(1), Decimal(2))
        assert lookup_price("p", "m", second) == ModelPrice(Decimal(7), Decimal(8))


@pytest.mark.parametrize(
    "row",
    [
        (-0.1, 1),
        (1, -1),
        (float("nan"), 1),
        (1, float("inf")),
        ("NaN", 1),
        ("-Infinity", 1),
        ("abc", 1),
        ("", 1),
        (None, 1),
        (True, 1),
        ([1], 2),
        (1, 2, 3),
        (1,),
        "0.2,0.8",
        0.5,
        None,
        {"input": 1, "output": 2},
    ],
)
def test_bad_rows_raise_configuration_error_naming_the_key(row: object) -> None:
    key = "fireworks/accounts/fireworks/models/bad"
    table = {key: row}
    with pytest.raises(ConfigurationError, match=r"fireworks/accounts/fireworks/models/bad"):
        lookup_price("fireworks", "accounts/fireworks/models/bad", table)
    with pytest.raises(ConfigurationError, match=r"fireworks/accounts/fireworks/models/bad"):
        cost_usd("fireworks", "accounts/fireworks/models/bad", 1, 1, table)
    with pytest.raises(ConfigurationError, match=r"fireworks/accounts/fireworks/models/bad"):
        validate_pricing(table)


def test_error_says_which_side_is_wrong() -> None:
    with pytest.raises(ConfigurationError, match="output price"):
        lookup_price("p", "m", {"p/m": (1, -2)})
    with pytest.raises(ConfigurationError, match="input price"):
        lookup_price("p", "m", {"p/m": ("x", 2)})


def test_bad_row_elsewhere_does_not_break_other_lookups() -> None:
    table = {"p/good": (1, 2), "p/bad": ("oops", 2)}
    assert lookup_price("p", "good", table) == ModelPrice(Decimal(1), Decimal(2))


def test_validate_pricing_rejects_malformed_keys() -> None:
    for key in ("no-slash", "/model", "provider/"):
        with pytest.raises(ConfigurationError, match="provider"):
            validate_pricing({key: (1, 2)})


def test_configuration_error_is_a_provara_error() -> None:
    with pytest.raises(ConfigurationError) as excinfo:
        lookup_price("p", "m", {"p/m": (1, "bad")})
    assert "p/m" in str(excinfo.value)


# --- dated snapshot fallback --------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "dated", "base"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("openrouter", "openai/gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),
    ],
)
def test_dated_snapshot_falls_back_to_undated_row(provider: str, dated: str, base: str) -> None:
    assert resolve_pricing_key(provider, dated) == pricing_key(provider, base)
    assert lookup_price(provider, dated) == lookup_price(provider, base)


def test_fallback_with_custom_table_both_date_forms() -> None:
    table = {"anthropic/claude-sonnet-4-5": (3, 15), "openai/gpt-4o-mini": (0.15, 0.6)}
    assert lookup_price("anthropic", "claude-sonnet-4-5-20250929", table) == ModelPrice(
        Decimal(3), Decimal(15)
    )
    assert lookup_price("openai", "gpt-4o-mini-2024-07-18", table) == ModelPrice(
        Decimal("0.15"), Decimal("0.6")
    )


def test_exact_dated_row_wins_over_fallback() -> None:
    table = {"openai/gpt-4o": (2.5, 10), "openai/gpt-4o-2024-05-13": (5, 15)}
    assert lookup_price("openai", "gpt-4o-2024-05-13", table) == ModelPrice(Decimal(5), Decimal(15))
    assert lookup_price("openai", "gpt-4o-2024-08-06", table) == ModelPrice(
        Decimal("2.5"), Decimal(10)
    )


def test_fallback_does_not_over_match() -> None:
    table = {"openai/gpt-4o": (2.5, 10), "anthropic/claude-sonnet-4-5": (3, 15)}
    # A longer model id never borrows a shorter one's price.
    assert lookup_price("openai", "gpt-4o-mini", table) is None
    assert lookup_price("openai", "gpt-4o-mini-2024-07-18", table) is None
    assert lookup_price("openai", "gpt-4o-audio", table) is None
    assert lookup_price("openai", "gpt-4", table) is None
    # Only a real trailing date is stripped.
    assert lookup_price("openai", "gpt-4o-20241399", table) is None  # month 13
    assert lookup_price("openai", "gpt-4o-2024-02-30", table) is None  # no Feb 30
    assert lookup_price("openai", "gpt-4o-0513", table) is None  # MMDD only
    assert lookup_price("openai", "gpt-4o-2405", table) is None  # YYMM only
    assert lookup_price("openai", "gpt-4o-latest", table) is None
    assert lookup_price("openai", "gpt-4o-2024-07-18-preview", table) is None
    assert lookup_price("openai", "gpt-4o-2024-07", table) is None
    # One date is stripped, not two.
    assert lookup_price("openai", "gpt-4o-20240513-20240806", table) is None
    # Never across providers.
    assert lookup_price("openrouter", "gpt-4o-2024-08-06", table) is None
    assert lookup_price("anthropic", "claude-sonnet-4-5-20250929", table) is not None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("o3-2025-04-16", "o3"),
        ("openai/gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),
        ("gpt-4o-mini", None),
        ("mistral-large-2512", None),
        ("kimi-k2-instruct-0905", None),
        ("grok-4.20-0309-reasoning", None),
        ("model-99999999", None),
        ("2024-07-18", None),
        ("-20240718", None),
        ("x-2024-7-18", None),
    ],
)
def test_undated_model_id(model: str, expected: str | None) -> None:
    assert undated_model_id(model) == expected


# --- hint, money units, display -----------------------------------------------------------


def test_missing_pricing_hint_is_exact() -> None:
    assert missing_pricing_hint("fireworks", "accounts/fireworks/models/x") == (
        'MODEL_PRICING["fireworks/accounts/fireworks/models/x"] = '
        "(input_usd_per_1m, output_usd_per_1m)"
    )
    assert missing_pricing_hint("openai", "gpt-x") == (
        'MODEL_PRICING["openai/gpt-x"] = (input_usd_per_1m, output_usd_per_1m)'
    )


def test_missing_pricing_hint_is_valid_python_that_prices_the_model() -> None:
    hint = missing_pricing_hint("together", 'odd/"model"')
    table: dict[str, object] = {}
    exec(  # the hint is our own output
        hint, {"MODEL_PRICING": table, "input_usd_per_1m": 0.5, "output_usd_per_1m": 1.5}
    )
    assert lookup_price("together", 'odd/"model"', table) == ModelPrice(
        Decimal("0.5"), Decimal("1.5")
    )


def test_picodollars() -> None:
    assert PICODOLLARS_PER_USD == 10**12
    assert to_picodollars(Decimal("0.012207")) == 12_207_000_000
    assert to_picodollars(Decimal(0)) == 0
    assert to_picodollars(Decimal("-0.5")) == -500_000_000_000
    # Half-even only beyond 12 decimal places.
    assert to_picodollars(Decimal("0.0000000000005")) == 0
    assert to_picodollars(Decimal("0.0000000000015")) == 2
    assert from_picodollars(12_207_000_000) == Decimal("0.012207")
    with pytest.raises(ValueError):
        to_picodollars(Decimal("NaN"))
    with pytest.raises(TypeError):
        from_picodollars(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("0.012207"), "$0.012207"),
        (Decimal("3.50"), "$3.5"),
        (Decimal("12"), "$12"),
        (Decimal("0"), "$0"),
        (Decimal("0.00000005"), "$0.00000005"),
        (Decimal("0.000000005"), "$0"),  # half-even: 0.5e-8 rounds to 0
        (Decimal("0.000000015"), "$0.00000002"),
        (Decimal("-0.25"), "-$0.25"),
        (Decimal("-0.000000001"), "$0"),
        (Decimal("1E+3"), "$1000"),
        (Decimal("123456789012.123456789"), "$123456789012.12345679"),
    ],
)
def test_format_usd(amount: Decimal, text: str) -> None:
    assert format_usd(amount) == text


def test_format_usd_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        format_usd(Decimal("Infinity"))
