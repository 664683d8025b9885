"""The date range of a usage page: ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` or ``?last=N``.

Days are UTC and both ends are included. Without parameters the range is the last 30
days, today included. A malformed or reversed range is an :class:`InvalidRange` whose
message says what to fix; a range longer than :data:`MAX_DAYS` is refused too, so a
page's queries and charts stay bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "PRESETS", "DateRange", "InvalidRange", "parse_range"]

DEFAULT_DAYS = 30
MAX_DAYS = 366
PRESETS: tuple[tuple[int, str], ...] = (
    (1, "Today"),
    (7, "Last 7 days"),
    (30, "Last 30 days"),
    (90, "Last 90 days"),
)
"""The quick ranges offered beside the form: ``(days, label)``, ending today."""


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class InvalidRange(ValueError):
    """A date range that cannot be read; its message is meant for the page."""


@dataclass(frozen=True, slots=True)
class DateRange:
    """The UTC days ``first`` to ``last``, both included."""

    first: date
    last: date

    @classmethod
    def last_days(cls, days: int, today: date) -> DateRange:
        """The ``days`` days ending with ``today``."""
        return cls(today - timedelta(days=days - 1), today)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def query(self, **extra: str | int) -> str:
        """The range as a query string, with ``extra`` parameters after it."""
        return urlencode({"from": self.first.isoformat(), "to": self.last.isoformat(), **extra})

    def __str__(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


def _day(text: str, name: str) -> date:
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRange(
            f"'{name}' must be a date written YYYY-MM-DD, such as 2026-01-31; got {text[:40]!r}."
        ) from None


def parse_range(params: Mapping[str, str], today: date | None = None) -> DateRange:
    """The range a page's query asks for (see the module docstring)."""
    today = today or datetime.now(UTC).date()
    last_days = params.get("last", "").strip()
    if last_days:
        if not re.fullmatch(r"[0-9]{1,4}", last_days) or not 1 <= int(last_days) <= MAX_DAYS:
            raise InvalidRange(f"'last' must be a number of days from 1 to {MAX_DAYS}.")
        return DateRange.last_days(int(last_days), today)
    start = params.get("from", "").strip()
    end = params.get("to", "").strip()
    last = _day(end, "to") if end else today
    first = _day(start, "from") if start else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidRange(
            f"The range starts ({first.isoformat()}) after it ends ({last.isoformat()})."
        )
    chosen = DateRange(first, last)
    if chosen.days > MAX_DAYS:
        raise InvalidRange(
            f"The range covers {chosen.days} days; at most {MAX_DAYS} can be shown at once."
        )
    return chosen
