"""SQL for the ``feedback`` table: one quality sample per completion and source."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

__all__ = ["insert_feedback"]


def insert_feedback(
    conn: sqlite3.Connection,
    *,
    tenant_id: str,
    request_id: str,
    model: str,
    cell: str,
    score: float,
    source: str,
    comment: str | None,
) -> bool:
    """Store a sample for ``model`` (``provider/model``); False if the completion already
    has one from ``source``."""
    provider, _, model_id = model.partition("/")
    try:
        conn.execute(
            "INSERT INTO feedback (tenant_id, request_id, provider, model, cell, score, source, "
            "comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tenant_id,
                request_id,
                provider,
                model_id,
                cell,
                score,
                source,
                comment,
                datetime.now(UTC).isoformat(timespec="milliseconds"),
            ),
        )
    except sqlite3.IntegrityError:
        return False
    return True
