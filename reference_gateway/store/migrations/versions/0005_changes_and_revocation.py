"""Tenants can be revoked; the changes every gateway process must see.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("tenants", sa.Column("revoked_at", sa.Text))
    op.create_table(
        "changes",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
    )
