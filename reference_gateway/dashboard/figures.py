"""How the usage pages write their figures: dollars, durations, token counts, keys."""

from __future__ import annotations

from decimal import Decimal

from provara_kit.pricing import from_picodollars

__all__ = ["count", "key_label", "milliseconds", "usd", "usd_tick"]


def usd(picodollars: int) -> str:
    """Exact USD of an integer number of pico-dollars, trailing zeros dropped."""
    amount: Decimal = from_picodollars(picodollars)
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"${text}"


def usd_tick(picodollars: float) -> str:
    """:func:`usd` of an axis tick (a whole number of pico-dollars)."""
    return usd(round(picodollars))


def count(value: float) -> str:
    """A whole number with thousands separators: ``12,345``."""
    return f"{round(value):,}"


def counted(value: int, noun: str) -> str:
    """:func:`count` with ``noun``, plural unless it is one: ``1 attempt``, ``2 attempts``."""
    return f"{count(value)} {noun}{'' if value == 1 else 's'}"


def unpriced_flag(attempts: int) -> str | None:
    """A chart bar's note for ``attempts`` at unpriced models (``None`` when there are none)."""
    return f"{counted(attempts, 'unpriced attempt')}: cost unknown" if attempts else None


def milliseconds(value: float | None) -> str:
    """``840 ms``, ``12.3 s``; an em dash when there is no value."""
    if value is None:
        return "—"
    if value < 10_000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s"


def key_label(key_source: str, key_hint: str | None, *, own: bool = True) -> str:
    """Whose key served: ``your key ••••abcd`` (``tenant key ••••abcd`` when not
    ``own``), ``operator key``, ``no key``, ``local model``."""
    if key_source == "tenant":
        who = "your key" if own else "tenant key"
        return f"{who} ••••{key_hint}" if key_hint else who
    return {"operator": "operator key", "none": "no key", "local": "local model"}.get(
        key_source, key_source
    )
