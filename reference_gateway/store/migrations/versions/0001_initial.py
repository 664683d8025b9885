"""Tenants, their provider keys, usage and feedback.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
        sa.Column("token_prefix", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "provider_keys",
        sa.Column(
            "tenant_id",
            sa.Text,
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("hint", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_table(
        "usage",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column(
            "tenant_id",
            sa.Text,
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("key_source", sa.Text, nullable=False),
        sa.Column("stream", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("input_tokens_source", sa.Text, nullable=False),
        sa.Column("output_tokens_source", sa.Text, nullable=False),
        sa.Column("estimated", sa.Integer, nullable=False),
        sa.Column("priced", sa.Integer, nullable=False),
        sa.Column("cost_picodollars", sa.BigInteger),
        sa.Column("finish_reason", sa.Text),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.CheckConstraint(
            "(priced = 1) = (cost_picodollars IS NOT NULL)", name="usage_priced_cost"
        ),
    )
    op.create_index("usage_tenant_day", "usage", ["tenant_id", "day"])
    op.create_table(
        "feedback",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column(
            "tenant_id",
            sa.Text,
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("request_id", sa.Text),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("cell", sa.Text),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_index("feedback_tenant_model", "feedback", ["tenant_id", "provider", "model"])
