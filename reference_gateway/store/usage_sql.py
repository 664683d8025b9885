"""SQL pieces the usage reports share: conditional counts and sums, and what makes an
attempt priced, failed or of unknown cost."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reference_gateway.store.tables import usage

__all__ = ["FAILED", "PRICED", "UNKNOWN_COST", "as_int", "count_if", "sum_if"]

PRICED = usage.c.priced == 1
"""The attempt's model has a price (its cost is known, 0 included)."""
FAILED = usage.c.error.is_not(None)
"""The attempt did not serve the request."""
UNKNOWN_COST = (usage.c.priced == 0) & ((usage.c.input_tokens + usage.c.output_tokens) > 0)
"""An unpriced attempt that used tokens: its cost is unknown (a refused one cost nothing)."""


def as_int(value: Any) -> int:
    """A SQL sum as a Python int (``NULL`` is 0; PostgreSQL sums integers as NUMERIC)."""
    return 0 if value is None else int(value)


def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    """How many rows meet ``condition``."""
    return sa.func.sum(sa.case((condition, 1), else_=0))


def sum_if(condition: sa.ColumnElement[bool], column: sa.ColumnElement[Any]) -> Any:
    """The sum of ``column`` over the rows that meet ``condition``."""
    return sa.func.sum(sa.case((condition, column), else_=0))
