"""The store on both databases: the same schema, the same SQL, the same answers.

Every test here runs on SQLite and on a real PostgreSQL server the tests start themselves.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from provara_kit.types import ProvaraMeta
from reference_gateway.auth import create_tenant
from reference_gateway.cli import main
from reference_gateway.store import HEAD, Database, connect, create_engine, current_revision
from reference_gateway.store.changes import changes_after, last_change_id
from reference_gateway.store.engine import sqlite_path
from reference_gateway.store.feedback import feedback_totals, insert_feedback
from reference_gateway.store.keys import delete_key, insert_key, list_keys, replace_key
from reference_gateway.store.schema import migrate
from reference_gateway.store.tables import metadata
from reference_gateway.store.tenants import find_by_token_hash, list_tenants, revoke_tenant
from reference_gateway.store.usage import usage_rollup
from reference_gateway.sync import IdTail, Sync, snapshot
from reference_gateway.usage import UsageRecorder


def test_the_migrations_create_exactly_the_declared_schema(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        assert migrate(engine) == HEAD
        with engine.connect() as conn:
            assert current_revision(conn) == HEAD
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
        assert differences == []
        assert migrate(engine) == HEAD  # a second run changes nothing
    finally:
        engine.dispose()


def test_processes_migrating_at_once_migrate_once(store_url: str) -> None:
    errors: list[BaseException] = []

    def upgrade() -> None:
        engine = create_engine(store_url, pool_size=1)
        try:
            migrate(engine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with connect(store_url) as conn:
        assert current_revision(conn) == HEAD


def test_db_upgrade_command(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--database", store_url]) == 0
    assert f"upgraded from revision none to {HEAD}" in capsys.readouterr().err
    assert main(["db", "upgrade", "--database", store_url]) == 0
    assert "up to date" in capsys.readouterr().err


def test_tenants_keys_and_changes(store_url: str) -> None:
    with connect(store_url) as conn:
        start = last_change_id(conn)
        tenant, token = create_tenant(conn, "acme")
        assert insert_key(conn, tenant.id, "X_API_KEY", "x", "v1:c1", "abcd") is not None
        assert insert_key(conn, tenant.id, "X_API_KEY", "x", "v1:c2", "abcd") is None
        assert replace_key(conn, tenant.id, "X_API_KEY", "v1:c3", "wxyz") is not None
        assert replace_key(conn, tenant.id, "Y_API_KEY", "v1:c3", "wxyz") is None
        assert [k.ciphertext for k in list_keys(conn, tenant.id)] == ["v1:c3"]
        assert delete_key(conn, tenant.id, "X_API_KEY")
        assert not delete_key(conn, tenant.id, "X_API_KEY")
        kinds = [(c.kind, c.tenant_id) for c in changes_after(conn, start)]
        assert kinds == [
            ("tenant-created", tenant.id),
            ("keys", tenant.id),
            ("keys", tenant.id),
            ("keys", tenant.id),
        ]
    # A failed insert (the duplicate above) rolled back only itself.
    with connect(store_url) as conn:
        from reference_gateway.auth import hash_token

        assert find_by_token_hash(conn, hash_token(token)) == tenant
        assert revoke_tenant(conn, "acme") == tenant
        assert revoke_tenant(conn, "acme") is None
        assert find_by_token_hash(conn, hash_token(token)) is None
        (row,) = list_tenants(conn)
        assert row.revoked_at is not None


def _meta(cost: str | None, **values: Any) -> ProvaraMeta:
    fields: dict[str, Any] = {
        "provider": "local",
        "model": "echo",
        "input_tokens": 10,
        "output_tokens": 5,
        "input_tokens_source": "upstream",
        "output_tokens_source": "upstream",
        "cost_usd": None if cost is None else Decimal(cost),
        "priced": cost is not None,
        "finish_reason": "stop",
        "ttft_ms": None,
        "latency_ms": 1.0,
    }
    fields.update(values)
    return ProvaraMeta(**fields)


def test_usage_is_summed_exactly_on_both_stores(store_url: str) -> None:
    async def scenario() -> list[dict[str, Any]]:
        db = Database(store_url)
        tenant, _ = db.run_sync(create_tenant, "usage")
        recorder = UsageRecorder(db, flush_ms=60_000, flush_rows=10_000)
        recorder.start()
        try:
            await recorder.commit(
                request_id="r1",
                tenant_id=tenant.id,
                meta=_meta("0.75"),
                key_source="local",
                stream=False,
            )
            await asyncio.gather(
                *(
                    recorder.commit(
                        request_id=f"r{i}",
                        tenant_id=tenant.id,
                        meta=_meta("0.000001"),
                        key_source="local",
                        stream=True,
                    )
                    for i in range(2, 12)
                )
            )
            await recorder.commit(
                request_id="r-unpriced",
                tenant_id=tenant.id,
                meta=_meta(None, model="mystery"),
                key_source="local",
                stream=False,
            )
            return await db.run(usage_rollup, tenant.id)
        finally:
            await recorder.aclose()
            db.close()

    rollup = asyncio.run(scenario())
    by_model = {row["model"]: row for row in rollup}
    echo = by_model["echo"]
    assert echo["requests"] == 11 and echo["input_tokens"] == 110
    assert echo["cost_picodollars"] == 750_000_000_000 + 10 * 1_000_000
    assert isinstance(echo["cost_picodollars"], int)
    assert by_model["mystery"]["cost_picodollars"] is None  # unknown, never 0
    assert by_model["mystery"]["priced"] == 0


def test_feedback_once_per_source_and_totals_per_tenant(store_url: str) -> None:
    with connect(store_url) as conn:
        a, _ = create_tenant(conn, "a")
        b, _ = create_tenant(conn, "b")
        values = {"model": "local/echo", "cell": "chat/simple", "comment": None}
        first = insert_feedback(
            conn, tenant_id=a.id, request_id="c1", score=1.0, source="user", **values
        )
        assert first is not None
        again = insert_feedback(
            conn, tenant_id=a.id, request_id="c1", score=0.0, source="user", **values
        )
        assert again is None
        assert insert_feedback(
            conn, tenant_id=a.id, request_id="c1", score=0.5, source="judge", **values
        )
        assert insert_feedback(
            conn, tenant_id=b.id, request_id="c2", score=0.0, source="user", **values
        )
        totals = sorted(feedback_totals(conn))
    assert totals == sorted(
        [(a.id, "chat/simple", "local/echo", 2, 1.5), (b.id, "chat/simple", "local/echo", 1, 0.0)]
    )


def test_one_process_sees_what_another_changed(store_url: str) -> None:
    """Two Database objects stand for two gateway processes on one database."""

    async def scenario() -> tuple[list[Any], list[Any]]:
        here, there = Database(store_url), Database(store_url)
        try:
            seen_changes: list[Any] = []
            seen_samples: list[Any] = []
            start = await here.run(snapshot)
            sync = Sync(
                here,
                start,
                interval_ms=60_000,
                on_change=seen_changes.append,
                on_sample=seen_samples.append,
            )
            tenant, _ = await there.run(create_tenant, "elsewhere")
            await there.run(insert_key, tenant.id, "X_API_KEY", "x", "v1:c", "")
            await there.run(
                lambda conn: insert_feedback(
                    conn,
                    tenant_id=tenant.id,
                    request_id="c9",
                    model="local/echo",
                    cell="code/simple",
                    score=1.0,
                    source="user",
                    comment=None,
                )
            )
            # This process's own sample is not passed on again.
            await here.run(
                lambda conn: sync.insert_feedback(
                    conn,
                    tenant_id=tenant.id,
                    request_id="c10",
                    model="local/echo",
                    cell="code/simple",
                    score=0.0,
                    source="user",
                    comment=None,
                )
            )
            await sync.poll()
            await sync.poll()  # nothing twice
            return seen_changes, seen_samples
        finally:
            here.close()
            there.close()

    changes, samples = asyncio.run(scenario())
    assert [c.kind for c in changes] == ["tenant-created", "keys"]
    assert [(s.cell, s.model, s.score) for s in samples] == [("code/simple", "local/echo", 1.0)]


def test_a_database_newer_than_the_gateway_is_refused(store_url: str) -> None:
    with connect(store_url) as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    from reference_gateway.store import SchemaTooNewError

    with pytest.raises(SchemaTooNewError, match="newer than this gateway"):
        Database(store_url)


def test_id_tail_waits_for_a_late_id_then_gives_up_on_it() -> None:
    tail = IdTail(10, grace=5.0)
    assert tail.take([11, 13], now=0.0) == [11, 13]
    assert tail.after == 11  # 12 may still commit
    assert tail.take([13], now=1.0) == []  # read again, not passed on twice
    assert tail.take([12, 13], now=2.0) == [12]
    assert tail.after == 13
    assert tail.take([15], now=3.0) == [15]
    assert tail.after == 13
    assert tail.take([], now=9.0) == []  # 14 never came: rolled back
    assert tail.after == 15


def test_sqlite_writes_inline_unless_another_process_holds_the_lock(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'inline.db'}"

    async def scenario() -> None:
        db = Database(url)
        tenant, _ = db.run_sync(create_tenant, "inline")
        recorder = UsageRecorder(db, flush_ms=60_000, flush_rows=10_000)
        recorder.start()
        try:
            assert db.try_inline(lambda conn: 1) == (True, 1)
            other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process is writing
            assert db.try_inline(lambda conn: 1) == (False, None)  # no waiting on the loop
            waiting = recorder.commit(
                request_id="r-locked",
                tenant_id=tenant.id,
                meta=_meta("0.01"),
                key_source="local",
                stream=False,
            )
            await asyncio.sleep(0.3)
            assert not waiting.done()  # the database thread waits for the lock
            other.execute("COMMIT")
            other.close()
            await asyncio.wait_for(waiting, timeout=10)
            rows = await db.run(usage_rollup, tenant.id)
            assert [row["requests"] for row in rows] == [1]
        finally:
            await recorder.aclose()
            db.close()

    asyncio.run(scenario())


def test_a_new_sqlite_file_waits_for_a_writer_before_entering_wal(tmp_path: Path) -> None:
    # SQLite refuses a journal-mode change at once, without its busy handler, while another
    # connection writes: processes opening a new database together must wait, not fail.
    import sqlite3

    path = tmp_path / "fresh.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE held (i INTEGER)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO held VALUES (1)")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        engine.dispose()
        release.join()
        other.close()


def test_reads_take_no_write_lock_and_cannot_write(store_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        db = Database(store_url)
        try:
            await db.run(create_tenant, "reader")
            held = None
            if db.is_sqlite:  # another process writing: a read does not wait for it
                import sqlite3

                held = sqlite3.connect(sqlite_path(store_url), isolation_level=None)
                held.execute("BEGIN IMMEDIATE")
            try:
                names = await asyncio.wait_for(db.read(list_tenants), timeout=2)
                assert [row.name for row in names] == ["reader"]
            finally:
                if held is not None:
                    held.execute("ROLLBACK")
                    held.close()
            if not db.is_sqlite:  # the transaction is READ ONLY
                with pytest.raises(sa.exc.InternalError, match="read-only"):
                    await db.read(revoke_tenant, "reader")
            # The pool's connections write again after serving reads.
            for n in range(6):
                await db.read(list_tenants)
                await db.run(create_tenant, f"writer-{n}")
            assert len(await db.read(list_tenants)) == 7
        finally:
            db.close()

    asyncio.run(scenario())
