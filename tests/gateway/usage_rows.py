"""Usage rows written straight into a test database, one per attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reference_gateway.store.tables import usage


def attempt_row(
    tenant_id: str, request_id: str, at: datetime, *, model: str = "m", **values: Any
) -> dict[str, Any]:
    """One attempt of ``request_id`` at ``at`` (UTC), served and priced at 1,000 pico-dollars
    unless ``values`` say otherwise."""
    row: dict[str, Any] = {
        "request_id": request_id,
        "tenant_id": tenant_id,
        "created_at": at.isoformat(timespec="milliseconds"),
        "day": at.date().isoformat(),
        "provider": "p",
        "model": model,
        "key_source": "operator",
        "key_hint": None,
        "stream": 0,
        "input_tokens": 10,
        "output_tokens": 20,
        "input_tokens_source": "upstream",
        "output_tokens_source": "upstream",
        "input_tokens_method": "upstream",
        "output_tokens_method": "upstream",
        "estimated": 0,
        "priced": 1,
        "cost_picodollars": 1_000,
        "finish_reason": "stop",
        "ttft_ms": 5.0,
        "latency_ms": 40.0,
        "cell": None,
        "status": 200,
        "error": None,
        "attempt": 0,
        "requested_model": model,
    }
    row.update(values)
    if not row["priced"]:
        row["cost_picodollars"] = None
    return row


def insert_attempts(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(usage.insert(), rows)
