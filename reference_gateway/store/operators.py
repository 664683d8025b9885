"""SQL for the ``operators`` table: operator sign-in tokens, stored as SHA-256 digests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import sqlalchemy as sa

from reference_gateway.store.changes import record_change
from reference_gateway.store.tables import operators

__all__ = [
    "Operator",
    "OperatorExistsError",
    "OperatorRow",
    "find_operator_by_token_hash",
    "insert_operator",
    "list_operators",
    "revoke_operator",
]


class OperatorExistsError(ValueError):
    """An operator with that name exists already."""


class Operator(NamedTuple):
    """An authenticated operator of the gateway."""

    id: str
    name: str


class OperatorRow(NamedTuple):
    """An operator as ``operators list`` shows it."""

    id: str
    name: str
    token_prefix: str
    created_at: str
    revoked_at: str | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def insert_operator(
    conn: sa.Connection, operator_id: str, name: str, token_sha256: str, token_prefix: str
) -> Operator:
    values = {
        "id": operator_id,
        "name": name,
        "token_sha256": token_sha256,
        "token_prefix": token_prefix,
        "created_at": _now(),
    }
    try:
        with conn.begin_nested():
            conn.execute(operators.insert().values(values))
    except sa.exc.IntegrityError:
        raise OperatorExistsError(f"an operator named {name!r} exists already") from None
    # Processes that refused the token a moment ago forget that they did.
    record_change(conn, "operator-created", operator_id)
    return Operator(id=operator_id, name=name)


def find_operator_by_token_hash(conn: sa.Connection, token_sha256: str) -> Operator | None:
    """The operator holding the token, unless it was revoked."""
    row = conn.execute(
        sa.select(operators.c.id, operators.c.name).where(
            operators.c.token_sha256 == token_sha256, operators.c.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else Operator(id=row.id, name=row.name)


def revoke_operator(conn: sa.Connection, name: str) -> Operator | None:
    """Revoke the operator named ``name`` (its token stops working in every process);
    ``None`` if there is no such operator that is not already revoked."""
    row = conn.execute(
        sa.select(operators.c.id, operators.c.name).where(
            operators.c.name == name, operators.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    conn.execute(operators.update().where(operators.c.id == row.id).values(revoked_at=_now()))
    record_change(conn, "operator-revoked", row.id)
    return Operator(id=row.id, name=row.name)


def list_operators(conn: sa.Connection) -> list[OperatorRow]:
    rows = conn.execute(
        sa.select(
            operators.c.id,
            operators.c.name,
            operators.c.token_prefix,
            operators.c.created_at,
            operators.c.revoked_at,
        ).order_by(operators.c.created_at, operators.c.name)
    )
    return [OperatorRow(*row) for row in rows]
