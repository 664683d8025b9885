"""Usage rows say which method produced each token count; older rows get the one their
source implies.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage", sa.Column("input_tokens_method", sa.Text))
    op.add_column("usage", sa.Column("output_tokens_method", sa.Text))
    op.execute(
        "UPDATE usage SET "
        "input_tokens_method = "
        "CASE input_tokens_source WHEN 'upstream' THEN 'upstream' ELSE 'chars/4' END, "
        "output_tokens_method = "
        "CASE output_tokens_source WHEN 'upstream' THEN 'upstream' ELSE 'chars/4' END"
    )
