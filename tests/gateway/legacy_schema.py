"""The schema as SQLite databases had it before the store moved to Alembic: one script per
``PRAGMA user_version``, 1 to 4. Tests build such databases and check they upgrade."""

from __future__ import annotations

import sqlite3

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


def legacy_database(path: str, version: int) -> sqlite3.Connection:
    """A SQLite database at ``path`` as a gateway of schema ``version`` left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {number}")
    return conn
