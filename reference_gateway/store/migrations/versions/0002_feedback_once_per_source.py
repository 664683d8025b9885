"""One feedback sample per completion and source; feedback found by cell.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("feedback_request_source", "feedback", ["request_id", "source"], unique=True)
    op.create_index("feedback_cell", "feedback", ["cell", "provider", "model"])
