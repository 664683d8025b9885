"""Usage rows keep the router's cell, and are found by request id.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage", sa.Column("cell", sa.Text))
    op.create_index("usage_request", "usage", ["request_id"])
