"""Reading a gateway's database in tests, whichever store it is (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reference_gateway.store import connect


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (named ``:params``) on the database at ``url``."""
    with connect(url) as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql), params)]


def scalar(url: str, sql: str, **params: Any) -> Any:
    """The first column of the first row of ``sql``."""
    rows = query(url, sql, **params)
    return rows[0][0] if rows else None


def tenant_id(url: str, token: str) -> str:
    """The id of the tenant holding ``token``."""
    found = scalar(url, "SELECT id FROM tenants WHERE token_prefix = :p", p=token[:8])
    assert isinstance(found, str), "no tenant holds that token"
    return found
