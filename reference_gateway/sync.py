"""One gateway across processes: each process reads what the others changed.

Every ``PROVARA_SYNC_MS`` (250 ms) a process reads, in one query each, the rows of the
``changes`` and ``feedback`` tables it has not seen; on PostgreSQL a LISTEN connection
(:mod:`reference_gateway.store.notify`) also wakes it as soon as a change commits:

* ``keys`` for a tenant: its cached provider keys and clients are dropped, so the next
  request reads the stored keys again (a deleted or rotated key stops working);
* ``tenant-revoked``: its token stops authenticating (API and dashboard);
* ``tenant-created``: tokens remembered as unknown are forgotten, so the new one works;
* ``operator-revoked``, ``operator-created``: the same for operator tokens;
* a feedback sample: the router's posterior for its tenant, cell and model learns it.

So a change made through any worker or replica takes effect everywhere within the sync
interval plus one query, on PostgreSQL within a round trip. On SQLite the query is a read
of an index in a file every worker has open; nothing else is shared.

Ids come from a sequence, and on PostgreSQL a transaction that took a smaller id may
commit after one with a larger id: :class:`IdTail` keeps reading above the first id it has
not seen until that id turns up, or until it is old enough to have been rolled back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa

from reference_gateway.store import Database
from reference_gateway.store.changes import Change, changes_after, last_change_id
from reference_gateway.store.feedback import (
    Sample,
    feedback_after,
    feedback_totals,
    insert_feedback,
    last_feedback_id,
)
from reference_gateway.store.notify import ChangeListener

__all__ = ["IdTail", "Snapshot", "Sync", "snapshot"]

logger = logging.getLogger("reference_gateway")

_GAP_GRACE_S = 10.0
"""How long a missing id is waited for before it is taken to have been rolled back."""


class IdTail:
    """Which ids of a table have been read, when ids may become visible out of order.

    ``after`` is the highest id below which every id has been read (or given up on);
    :meth:`take` returns the ids of a read that are new.
    """

    def __init__(self, after: int, *, grace: float = _GAP_GRACE_S) -> None:
        self.after = after
        self._grace = grace
        self._seen: set[int] = set()
        self._gap_since: float | None = None

    def take(self, ids: Iterable[int], now: float) -> list[int]:
        fresh = [i for i in ids if i > self.after and i not in self._seen]
        self._seen.update(fresh)
        while self._seen:
            following = self.after + 1
            if following in self._seen:
                self._seen.discard(following)
                self.after = following
                self._gap_since = None
            elif self._gap_since is None:
                self._gap_since = now
                break
            elif now - self._gap_since >= self._grace:
                self.after = following  # rolled back: it will never appear
                self._gap_since = now
            else:
                break
        return fresh


class Snapshot(NamedTuple):
    """Where a process starts reading, and the feedback totals up to there."""

    last_change: int
    last_feedback: int
    totals: list[tuple[str, str, str, int, float]]


def snapshot(conn: sa.Connection) -> Snapshot:
    last_feedback = last_feedback_id(conn)
    return Snapshot(last_change_id(conn), last_feedback, feedback_totals(conn, last_feedback))


def _poll(conn: sa.Connection, change_after: int, sample_after: int) -> tuple[Any, Any]:
    return changes_after(conn, change_after), feedback_after(conn, sample_after)


class Sync:
    """Reads other processes' changes and feedback (see the module docstring).

    ``on_change`` and ``on_sample`` are called on the event loop for each new row; a
    sample this process stored itself through :meth:`insert_feedback` is not passed on
    (the caller applied it already).
    """

    def __init__(
        self,
        db: Database,
        start: Snapshot,
        *,
        interval_ms: int,
        on_change: Callable[[Change], None],
        on_sample: Callable[[Sample], None],
    ) -> None:
        self._db = db
        self._interval = interval_ms / 1000
        self._changes = IdTail(start.last_change)
        self._samples = IdTail(start.last_feedback)
        self._own_samples: set[int] = set()
        self._on_change = on_change
        self._on_sample = on_sample
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._listener: ChangeListener | None = None
        self.polls = 0

    def insert_feedback(self, conn: sa.Connection, **values: Any) -> int | None:
        """:func:`~reference_gateway.store.feedback.insert_feedback`, remembering the id as
        this process's own before the row is committed (so a poll never passes it on)."""
        sample_id = insert_feedback(conn, **values)
        if sample_id is not None:
            self._own_samples.add(sample_id)
        return sample_id

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sync")
            if not self._db.is_sqlite:
                loop = asyncio.get_running_loop()

                def wake() -> None:
                    if not loop.is_closed():
                        loop.call_soon_threadsafe(self._wake.set)

                self._listener = ChangeListener(self._db.url, wake)
                self._listener.start()

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("reading other processes' changes failed: %r", exc)

    async def poll(self) -> None:
        """Read and apply what is new now."""
        changes, samples = await self._db.read(_poll, self._changes.after, self._samples.after)
        self.polls += 1
        now = time.monotonic()
        by_id = {change.id: change for change in changes}
        for change_id in self._changes.take(by_id, now):
            self._on_change(by_id[change_id])
        samples_by_id = {sample.id: sample for sample in samples}
        for sample_id in self._samples.take(samples_by_id, now):
            if sample_id in self._own_samples:
                self._own_samples.discard(sample_id)
                continue
            sample = samples_by_id[sample_id]
            if sample.cell is not None:
                self._on_sample(sample)

    async def aclose(self) -> None:
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
