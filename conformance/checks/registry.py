"""The table of checks: a stable id, a one-line title, the hermetic run and the live run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conformance.context import CheckContext

__all__ = ["CHECKS", "Check", "CheckFunction", "check"]

CheckFunction = Callable[[CheckContext], Awaitable[None]]


@dataclass(frozen=True)
class Check:
    """One conformance check. ``live`` is what runs under ``--live`` (``None``: the check
    needs a scripted upstream and is skipped against the real API)."""

    id: str
    title: str
    run: CheckFunction
    live: CheckFunction | None = None


CHECKS: dict[str, Check] = {}


def check(
    check_id: str, title: str, *, live: CheckFunction | None = None
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated coroutine function as check ``check_id``."""

    def decorate(run: CheckFunction) -> CheckFunction:
        if check_id in CHECKS:
            raise ValueError(f"duplicate check id {check_id!r}")
        CHECKS[check_id] = Check(check_id, title, run, live)
        return run

    return decorate
