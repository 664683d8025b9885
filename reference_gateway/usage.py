"""Usage and cost accounting: every attempt's row, written in batches.

:meth:`UsageRecorder.commit` queues a completion's row and returns a future that resolves
once the row is committed; the gateway answers (a 200, or a stream's clean end) only after
that, so a completion the client was given is never lost to a crash of the gateway
(``PROVARA_USAGE_DURABLE=0`` answers at once instead). Rows are written by one background
task as one transaction per batch: what queues up while a write is under way goes in the
next one (group commit), so under load a commit costs a fraction of a transaction. On a
SQLite file the writer commits on the event loop's own thread when the write lock is free
(:meth:`~reference_gateway.store.Database.try_inline`: a one-row commit takes about 0.2 ms,
handing it to the database thread and back 0.6 ms), else on the database thread. Rows
that need no acknowledgement (:meth:`UsageRecorder.record`) wait for the next batch, every
``PROVARA_USAGE_FLUSH_MS`` milliseconds or as soon as ``PROVARA_USAGE_FLUSH_ROWS`` rows are
waiting. A failed write keeps the rows for the next attempt (and fails the futures waiting
on it), and :meth:`UsageRecorder.aclose` flushes whatever is left.

Cost is stored as integer pico-dollars, or ``NULL`` for an unpriced model (``priced`` 0):
an unpriced request is never counted as $0. ``estimated`` marks rows whose token counts
(either one) were not reported by the upstream; ``input_tokens_method`` and
``output_tokens_method`` say what counted them (the adapter's count endpoint or tokenizer,
or characters / 4).

A request makes one row per attempt (a retry or a fallback is an attempt of its own):
``status`` and ``error`` say how the attempt ended (``error`` NULL for the one that served
the request), ``attempt`` its index. A rejected attempt (429, 5xx, no connection) costs 0
tokens; one abandoned before its first token (``first_token_timeout``, a client gone)
counts its input as estimated; a stream broken after its first byte counts what it sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeAlias

import sqlalchemy as sa

from provara_kit.pricing import to_picodollars
from provara_kit.types import ProvaraMeta
from reference_gateway.store import Database
from reference_gateway.store.usage import insert_usage

__all__ = ["SERVED", "Attempted", "UsageNotRecordedError", "UsageRecorder"]

logger = logging.getLogger("reference_gateway")

_Pending: TypeAlias = tuple[str, str, float, ProvaraMeta, str, bool, str | None, "Attempted"]
"""``(request_id, tenant_id, unix time, meta, key source, streamed, router cell, attempt)``."""


class Attempted(NamedTuple):
    """Which attempt of its request a row is: its status, error code (``None``: it served
    the request), 0-based number, the model the client asked for and the stored key's
    hint."""

    status: int = 200
    error: str | None = None
    attempt: int = 0
    requested_model: str | None = None
    key_hint: str | None = None


SERVED = Attempted()
"""A request answered by its first attempt, with nothing more known."""


def _row(item: _Pending) -> tuple[Any, ...]:
    request_id, tenant_id, at, meta, key_source, stream, cell, attempt = item
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
        *attempt,
    )


_CHECKPOINT_ROWS = 2_000
"""Rows written between two checkpoints of a SQLite log (about SQLite's own default)."""


class UsageNotRecordedError(RuntimeError):
    """A completion's usage row could not be committed (it is kept for a later attempt)."""


def _write(conn: sa.Connection, items: list[_Pending]) -> None:
    insert_usage(conn, [_row(item) for item in items])


class UsageRecorder:
    """Queues usage in memory and writes it in batches (see the module docstring)."""

    def __init__(
        self, db: Database, *, flush_ms: int, flush_rows: int, durable: bool = True
    ) -> None:
        self._db = db
        self._interval = flush_ms / 1000
        self._batch = flush_rows
        self.durable = durable
        self._pending: list[_Pending] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._since_checkpoint = 0
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
        attempt: Attempted = SERVED,
    ) -> None:
        """Queue one attempt's usage for the next batch. Never blocks, never touches the
        database.

        ``cell`` is the router's cell of a client's completion, kept so that feedback on it
        still finds its cell and model after a restart. A failed attempt's row queued here
        before its request's :meth:`commit` lands in the same transaction or an earlier one.
        """
        self._pending.append(
            (request_id, tenant_id, time.time(), meta, key_source, stream, cell, attempt)
        )
        if len(self._pending) >= self._batch:
            self._wake.set()

    def commit(
        self,
        *,
        request_id: str,
        tenant_id: str,
        meta: ProvaraMeta,
        key_source: str,
        stream: bool,
        cell: str | None = None,
        attempt: Attempted = SERVED,
    ) -> asyncio.Future[None]:
        """Queue a completion's usage and return a future done once the row is committed
        (at once when not :attr:`durable`); it fails with :class:`UsageNotRecordedError`
        when the write fails."""
        self.record(
            request_id=request_id,
            tenant_id=tenant_id,
            meta=meta,
            key_source=key_source,
            stream=stream,
            cell=cell,
            attempt=attempt,
        )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.durable:
            future.set_result(None)
            return future
        self._waiters.append(future)
        self._wake.set()
        return future

    def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def _run(self) -> None:
        while not self._closing:
            if not self._wake.is_set():
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
        waiters, self._waiters = self._waiters, []
        try:
            written, _ = self._db.try_inline(_write, items)
            if not written:
                await self._db.run(_write, items)
        except Exception as exc:
            logger.exception(
                "writing %d usage rows failed; keeping them for the next try", len(items)
            )
            self._pending[:0] = items
            error = UsageNotRecordedError(f"the usage store is unavailable ({type(exc).__name__})")
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            return 0
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.written += len(items)
        self._since_checkpoint += len(items)
        if self._since_checkpoint >= _CHECKPOINT_ROWS:
            self._since_checkpoint = 0
            await self._db.checkpoint()
        return len(items)

    async def aclose(self) -> None:
        """Stop the writer and write what is left."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
        if self._pending:
            logger.error("%d usage rows could not be written at shutdown", len(self._pending))
