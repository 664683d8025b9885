"""The gateway's tables, and the migrations that create them.

``PRAGMA user_version`` records how many migrations ran; :func:`migrate` applies the
rest, each in its own transaction. Append new migrations; never edit a released one.

* ``tenants``: a bearer token is stored only as its SHA-256 digest.
* ``provider_keys``: a tenant's provider API keys as vault ciphertext (AES-256-GCM, bound
  to tenant id and key name) plus a 4-character hint for masked display.
* ``usage``: one row per answered request, cost in integer pico-dollars (``NULL`` when the
  model is unpriced, never 0), with where each token count came from. From version 4,
  also the method that produced each count (``upstream``, ``count-endpoint``,
  ``tokenizer``, ``chars/4``); older rows get the one their source implies.
* ``feedback``: quality samples (pinned traffic, users, the judge) for the router. From
  version 2, one sample per completion and source (``user``, ``judge``).
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token_sha256 TEXT NOT NULL UNIQUE,
        token_prefix TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE provider_keys (
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        provider TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        hint TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, name)
    );
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        day TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        key_source TEXT NOT NULL,
        stream INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        input_tokens_source TEXT NOT NULL,
        output_tokens_source TEXT NOT NULL,
        estimated INTEGER NOT NULL,
        priced INTEGER NOT NULL,
        cost_picodollars INTEGER,
        finish_reason TEXT,
        ttft_ms REAL,
        latency_ms REAL NOT NULL,
        CHECK (priced = (cost_picodollars IS NOT NULL))
    );
    CREATE INDEX usage_tenant_day ON usage (tenant_id, day);
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        request_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        cell TEXT,
        score REAL NOT NULL,
        source TEXT NOT NULL,
        comment TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX feedback_tenant_model ON feedback (tenant_id, provider, model);
    """,
    """
    CREATE UNIQUE INDEX feedback_request_source ON feedback (request_id, source);
    CREATE INDEX feedback_cell ON feedback (cell, provider, model);
    """,
    """
    ALTER TABLE usage ADD COLUMN cell TEXT;
    CREATE INDEX usage_request ON usage (request_id);
    """,
    """
    ALTER TABLE usage ADD COLUMN input_tokens_method TEXT;
    ALTER TABLE usage ADD COLUMN output_tokens_method TEXT;
    UPDATE usage SET
        input_tokens_method =
            CASE input_tokens_source WHEN 'upstream' THEN 'upstream' ELSE 'chars/4' END,
        output_tokens_method =
            CASE output_tokens_source WHEN 'upstream' THEN 'upstream' ELSE 'chars/4' END;
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the schema version.

    Each step re-reads the version inside its write transaction, so two processes opening
    a fresh database at once (``serve`` and ``tenants create``) do not both migrate.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"database schema version {version} is newer than this gateway knows "
                    f"({len(MIGRATIONS)}); upgrade provara-kit"
                )
            if version == len(MIGRATIONS):
                conn.execute("COMMIT")
                return version
            for statement in (s.strip() for s in MIGRATIONS[version].split(";")):
                if statement:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
