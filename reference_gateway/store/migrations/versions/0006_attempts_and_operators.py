"""Usage rows record every attempt (status, error, position, what was asked for, which
stored key served); operators sign in with their own tokens.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage", sa.Column("status", sa.Integer, nullable=False, server_default="200"))
    op.add_column("usage", sa.Column("error", sa.Text))
    op.add_column("usage", sa.Column("attempt", sa.Integer, nullable=False, server_default="0"))
    op.add_column("usage", sa.Column("requested_model", sa.Text))
    op.add_column("usage", sa.Column("key_hint", sa.Text))
    op.create_index("usage_created", "usage", ["created_at"])
    op.create_table(
        "operators",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
        sa.Column("token_prefix", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Text),
    )
