"""SQL for the ``changes`` table: what every gateway process must learn about.

A change is written in the same transaction as what it announces, so a process that sees
the change also sees the new state. Kinds: ``keys`` (a tenant's provider keys changed),
``tenant-created``, ``tenant-revoked``, ``operator-created``, ``operator-revoked`` (the
``tenant_id`` column then holds the operator's id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import sqlalchemy as sa

from reference_gateway.store.notify import notify_change
from reference_gateway.store.tables import changes

__all__ = ["Change", "changes_after", "last_change_id", "record_change"]


class Change(NamedTuple):
    id: int
    kind: str
    tenant_id: str | None


def record_change(conn: sa.Connection, kind: str, tenant_id: str | None) -> None:
    conn.execute(
        changes.insert().values(
            kind=kind,
            tenant_id=tenant_id,
            created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
    )
    notify_change(conn)


def last_change_id(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(changes.c.id))).scalar() or 0)


def changes_after(conn: sa.Connection, after: int, limit: int = 1000) -> list[Change]:
    """Changes with an id above ``after``, oldest first."""
    rows = conn.execute(
        sa.select(changes.c.id, changes.c.kind, changes.c.tenant_id)
        .where(changes.c.id > after)
        .order_by(changes.c.id)
        .limit(limit)
    )
    return [Change(*row) for row in rows]
