"""Usage and cost accounting, off the hot path.

A request calls :meth:`UsageRecorder.record`, which only appends to an in-memory list. A
background task writes the list to the ``usage`` table every ``PROVARA_USAGE_FLUSH_MS``
milliseconds, or as soon as ``PROVARA_USAGE_FLUSH_ROWS`` rows are waiting, as one
transaction; the conversion to rows (cost in pico-dollars, day, flags) happens on the
database thread. A failed write keeps the rows for the next attempt, and
:meth:`UsageRecorder.aclose` flushes whatever is left, so a clean shutdown loses nothing.

Cost is stored as integer pico-dollars, or ``NULL`` for an unpriced model (``priced`` 0):
an unpriced request is never counted as $0. ``estimated`` marks rows whose token counts
(either one) were not reported by the upstream; ``input_tokens_method`` and
``output_tokens_method`` say what counted them (the adapter's count endpoint or tokenizer,
or characters / 4).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any, TypeAlias

from provara_kit.pricing import to_picodollars
from provara_kit.types import ProvaraMeta
from reference_gateway.store import Database
from reference_gateway.store.usage import insert_usage

__all__ = ["UsageRecorder"]

logger = logging.getLogger("reference_gateway")

_Pending: TypeAlias = tuple[str, str, float, ProvaraMeta, str, bool, str | None]
"""``(request_id, tenant_id, unix time, meta, key source, streamed, router cell)``."""


def _row(item: _Pending) -> tuple[Any, ...]:
    request_id, tenant_id, at, meta, key_source, stream, cell = item
    when = datetime.fromtimestamp(at, UTC)
    estimated = "estimated" in (meta.input_tokens_source, meta.output_tokens_source)
    cost = None if meta.cost_usd is None else to_picodollars(meta.cost_usd)
    return (
        request_id,
        tenant_id,
        when.isoformat(timespec="milliseconds"),
        when.date().isoformat(),
        meta.provider,
        meta.model,
        key_source,
        int(stream),
        meta.input_tokens,
        meta.output_tokens,
        meta.input_tokens_source,
        meta.output_tokens_source,
        int(estimated),
        int(cost is not None),
        cost,
        meta.finish_reason,
        meta.ttft_ms,
        meta.latency_ms,
        cell,
        meta.input_tokens_method,
        meta.output_tokens_method,
    )


def _write(conn: sqlite3.Connection, items: list[_Pending]) -> None:
    insert_usage(conn, [_row(item) for item in items])


class UsageRecorder:
    """Queues usage in memory and writes it in batches (see the module docstring)."""

    def __init__(self, db: Database, *, flush_ms: int, flush_rows: int) -> None:
        self._db = db
        self._interval = flush_ms / 1000
        self._batch = flush_rows
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._pending)

    def record(
        self,
        *,
        request_id: str,
        tenant_id: str,
        meta: ProvaraMeta,
        key_source: str,
        stream: bool,
        cell: str | None = None,
    ) -> None:
        """Queue one finished request's usage. Never blocks, never touches the database.

        ``cell`` is the router's cell of a client's completion, kept so that feedback on it
        still finds its cell and model after a restart.
        """
        self._pending.append((request_id, tenant_id, time.time(), meta, key_source, stream, cell))
        if len(self._pending) >= self._batch:
            self._wake.set()

    def start(self) -> None:
        """Start the background flusher."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="usage-flusher")

    async def _run(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write everything queued now; returns how many rows were written."""
        if not self._pending:
            return 0
        items, self._pending = self._pending, []
        try:
            await self._db.run(_write, items)
        except Exception:
            logger.exception(
                "writing %d usage rows failed; keeping them for the next try", len(items)
            )
            self._pending[:0] = items
            return 0
        self.written += len(items)
        return len(items)

    async def aclose(self) -> None:
        """Stop the flusher and write what is left."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
        if self._pending:
            logger.error("%d usage rows could not be written at shutdown", len(self._pending))
