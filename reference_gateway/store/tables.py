"""The gateway's tables as SQLAlchemy Core objects, the one schema for SQLite and PostgreSQL.

The migrations in ``store/migrations`` create exactly these; a test compares the two.

* ``tenants``: a bearer token is stored only as its SHA-256 digest; ``revoked_at`` is set
  by ``tenants revoke`` (the token stops working, the tenant's history stays).
* ``provider_keys``: a tenant's provider API keys as vault ciphertext (AES-256-GCM, bound
  to tenant id and key name) plus a 4-character hint for masked display.
* ``usage``: one row per attempt at a request (a retry or a fallback is a row of its own,
  ``attempt`` counting from 0), cost in integer pico-dollars (``NULL`` when the model is
  unpriced, never 0), with where each token count came from and the method that produced
  it (``upstream``, ``count-endpoint``, ``tokenizer``, ``chars/4``); ``status`` is the
  attempt's HTTP status and ``error`` its error code (``NULL`` when it succeeded);
  ``requested_model`` is what the client asked for, ``key_hint`` the hint of the tenant's
  stored key that served it (``NULL`` for the operator's key).
* ``operators``: operator sign-in tokens (made by the CLI), stored as SHA-256 digests.
* ``feedback``: quality samples (pinned traffic, users, the judge) for the router, one per
  completion and source (``user``, ``judge``).
* ``changes``: one row per change every gateway process must see (a key added, rotated or
  deleted, a tenant created or revoked); each process reads the rows after the last one it
  saw.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "changes",
    "feedback",
    "metadata",
    "operators",
    "provider_keys",
    "tenants",
    "usage",
]

metadata = sa.MetaData()

# SQLite's rowid alias must be declared INTEGER; PostgreSQL's ids are 64-bit identities.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
    sa.Column("token_prefix", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.Text),
)

provider_keys = sa.Table(
    "provider_keys",
    metadata,
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

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column(
        "tenant_id", sa.Text, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
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
    sa.Column("cell", sa.Text),
    sa.Column("input_tokens_method", sa.Text),
    sa.Column("output_tokens_method", sa.Text),
    sa.Column("status", sa.Integer, nullable=False, server_default="200"),
    sa.Column("error", sa.Text),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("requested_model", sa.Text),
    sa.Column("key_hint", sa.Text),
    sa.CheckConstraint("(priced = 1) = (cost_picodollars IS NOT NULL)", name="usage_priced_cost"),
    sa.Index("usage_tenant_day", "tenant_id", "day"),
    sa.Index("usage_request", "request_id"),
    sa.Index("usage_created", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column(
        "tenant_id", sa.Text, sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("request_id", sa.Text),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("cell", sa.Text),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Index("feedback_tenant_model", "tenant_id", "provider", "model"),
    sa.Index("feedback_request_source", "request_id", "source", unique=True),
    sa.Index("feedback_cell", "cell", "provider", "model"),
)

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
    sa.Column("token_prefix", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.Text),
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
)
