"""Usage and cost: recorded off the hot path, in batches, and nothing lost at shutdown."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from provara_kit.types import ProvaraMeta
from reference_gateway.auth import create_tenant
from reference_gateway.store import HEAD, Database, connect, current_revision
from reference_gateway.store.usage import usage_for_tenant
from reference_gateway.usage import Attempted, UsageRecorder
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.db import scalar, tenant_id
from tests.gateway.legacy_schema import legacy_database

MESSAGES = [{"role": "user", "content": "count me"}]


def rows(database: str, token: str) -> list[dict[str, Any]]:
    owner = tenant_id(database, token)
    with connect(database) as conn:
        return usage_for_tenant(conn, owner)


def count(database: str) -> int:
    return int(scalar(database, "SELECT count(*) FROM usage"))


def test_usage_is_flushed_at_shutdown_with_cost_and_flags(tmp_path: Path, store_url: str) -> None:
    settings = make_settings(
        tmp_path,
        database_url=store_url,
        usage_flush_ms=600_000,
        usage_flush_rows=10_000,
        usage_durable=False,
    )
    server = GatewayServer(settings).start()
    try:
        alice, bob = server.tenant("alice"), server.tenant("bob")
        with httpx.Client(base_url=server.url) as http:
            http.post(
                "/api/provider-keys",
                json={"name": "ACME_API_KEY", "value": "sk-alice-acme-000000000000"},
                headers={"authorization": f"Bearer {alice}"},
            )
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=alice, max_retries=0) as sdk:
            sdk.chat.completions.create(model="local/echo", messages=MESSAGES)
            list(
                sdk.chat.completions.create(
                    model="local/echo-anthropic", messages=MESSAGES, stream=True
                )
            )
            sdk.chat.completions.create(model="acme/acme-large", messages=MESSAGES)
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=bob, max_retries=0) as sdk:
            for _ in range(3):
                sdk.chat.completions.create(model="local/echo", messages=MESSAGES)
        assert server.gateway.usage.pending == 6
        assert count(server.database) == 0  # nothing written on the request path
    finally:
        server.stop()

    alice_rows = rows(server.database, alice)
    bob_rows = rows(server.database, bob)
    assert len(alice_rows) == 3 and len(bob_rows) == 3
    echo, echo_stream, acme = alice_rows
    assert (echo["provider"], echo["model"], echo["stream"]) == ("local", "echo", 0)
    assert echo["priced"] == 1 and echo["cost_picodollars"] == 0  # free, and known to be
    assert echo["estimated"] == 0 and echo["input_tokens_source"] == "upstream"
    assert echo["key_source"] == "local" and echo["request_id"].startswith("chatcmpl-")
    assert echo["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert (echo_stream["model"], echo_stream["stream"]) == ("echo-anthropic", 1)
    assert echo_stream["ttft_ms"] is not None
    # acme is unpriced and reports no usage: flagged, never $0.
    assert (acme["provider"], acme["key_source"]) == ("acme", "tenant")
    assert acme["priced"] == 0 and acme["cost_picodollars"] is None
    assert acme["estimated"] == 1
    assert acme["input_tokens_source"] == acme["output_tokens_source"] == "estimated"
    assert acme["input_tokens"] == 2  # ceil(len("count me") / 4)
    assert acme["input_tokens_method"] == acme["output_tokens_method"] == "chars/4"
    assert echo["input_tokens_method"] == echo["output_tokens_method"] == "upstream"
    assert {row["request_id"] for row in alice_rows}.isdisjoint(r["request_id"] for r in bob_rows)


def test_usage_is_written_in_batches_while_running(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, usage_flush_ms=600_000, usage_flush_rows=4, usage_durable=False
    )
    with GatewayServer(settings) as server:
        token = server.tenant("batch")
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0) as sdk:
            for _ in range(5):
                sdk.chat.completions.create(model="local/echo", messages=MESSAGES)
            deadline = time.monotonic() + 5
            while count(server.database) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert count(server.database) == 4  # one batch of 4; one row still queued
            assert server.gateway.usage.pending == 1
    assert count(server.database) == 5


def test_a_completion_is_answered_only_once_its_usage_row_is_committed(
    tmp_path: Path, store_url: str
) -> None:
    # No background flush would run during the test: only the commit before answering.
    settings = make_settings(
        tmp_path, database_url=store_url, usage_flush_ms=600_000, usage_flush_rows=10_000
    )
    with GatewayServer(settings) as server:
        token = server.tenant("durable")
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers) as http:
            for stream in (False, True):
                response = http.post(
                    "/v1/chat/completions",
                    json={"model": "local/echo", "messages": MESSAGES, "stream": stream},
                )
                assert response.status_code == 200
                if stream:
                    assert response.text.rstrip().endswith("data: [DONE]")
                completion_id = response.headers["x-request-id"]
                stored = scalar(
                    server.database,
                    "SELECT count(*) FROM usage WHERE request_id = :id",
                    id=completion_id,
                )
                assert stored == 1, f"{'streamed' if stream else 'plain'} completion unrecorded"


def test_a_completion_whose_usage_cannot_be_recorded_is_not_delivered(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reference_gateway.usage as usage_module

    settings = make_settings(
        tmp_path, database_url=store_url, usage_flush_ms=600_000, usage_flush_rows=10_000
    )
    with GatewayServer(settings) as server:
        token = server.tenant("unrecorded")
        headers = {"authorization": f"Bearer {token}"}
        real_write = usage_module._write

        def broken_write(conn: Any, items: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(usage_module, "_write", broken_write)
        with httpx.Client(base_url=server.url, headers=headers) as http:
            plain = http.post(
                "/v1/chat/completions", json={"model": "local/echo", "messages": MESSAGES}
            )
            assert plain.status_code == 503
            assert plain.json()["error"]["code"] == "usage_not_recorded"
            assert "count me" not in plain.text  # the answer was withheld
            streamed = http.post(
                "/v1/chat/completions",
                json={"model": "local/echo", "messages": MESSAGES, "stream": True},
            )
            assert streamed.status_code == 200  # content had started: the end is an error
            assert "usage_not_recorded" in streamed.text
            assert "[DONE]" not in streamed.text
            monkeypatch.setattr(usage_module, "_write", real_write)
        # Kept, and written once the store works again: the upstream was paid for.
    assert count(server.database) == 2


def test_usage_flushes_on_its_interval(gateway: GatewayServer, token: str) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk:
        sdk.chat.completions.create(model="local/echo", messages=MESSAGES)
    deadline = time.monotonic() + 5
    while not rows(gateway.database, token) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(rows(gateway.database, token)) == 1


def test_a_stream_aborted_after_its_first_byte_is_one_estimated_row(
    gateway: GatewayServer, token: str
) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0) as sdk,
        pytest.raises(openai.APIError),
    ):
        list(
            sdk.chat.completions.create(
                model="local/echo",
                messages=MESSAGES,
                stream=True,
                extra_headers={"x-provara-local-fault": "abort"},
            )
        )
    deadline = time.monotonic() + 5
    while not rows(gateway.database, token) and time.monotonic() < deadline:
        time.sleep(0.02)
    (row,) = rows(gateway.database, token)
    assert (row["status"], row["error"], row["attempt"]) == (200, "stream_aborted", 0)
    assert row["estimated"] == 1
    assert row["input_tokens_source"] == row["output_tokens_source"] == "estimated"
    assert row["output_tokens"] > 0  # the first chunk reached the client
    assert (row["priced"], row["cost_picodollars"]) == (1, 0)  # local is free, and priced
    assert row["requested_model"] == "local/echo"


def test_a_version_2_database_migrates_and_keeps_its_usage(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    old = legacy_database(path, 2)
    old.execute(
        "INSERT INTO tenants (id, name, token_sha256, token_prefix, created_at) "
        "VALUES ('t1', 'old', 'h', 'pvk_old0', '2026-01-01')"
    )
    old.execute(
        "INSERT INTO usage (request_id, tenant_id, created_at, day, provider, model, "
        "key_source, stream, input_tokens, output_tokens, input_tokens_source, "
        "output_tokens_source, estimated, priced, cost_picodollars, finish_reason, ttft_ms, "
        "latency_ms) VALUES ('chatcmpl-old', 't1', '2026-01-01T00:00:00.000+00:00', "
        "'2026-01-01', 'local', 'echo', 'operator', 0, 1, 2, 'upstream', 'upstream', 0, 1, 5, "
        "'stop', NULL, 1.0)"
    )
    old.close()
    with connect(path) as conn:
        assert current_revision(conn) == HEAD
        (row,) = usage_for_tenant(conn, "t1")
        assert (row["request_id"], row["cost_picodollars"], row["cell"]) == (
            "chatcmpl-old",
            5,
            None,
        )


def test_a_version_3_database_gets_the_methods_its_sources_imply(tmp_path: Path) -> None:
    path = str(tmp_path / "v3.db")
    old = legacy_database(path, 3)
    old.execute(
        "INSERT INTO tenants (id, name, token_sha256, token_prefix, created_at) "
        "VALUES ('t1', 'old', 'h', 'pvk_old0', '2026-01-01')"
    )
    for request_id, source in (("r-up", "upstream"), ("r-est", "estimated")):
        old.execute(
            "INSERT INTO usage (request_id, tenant_id, created_at, day, provider, model, "
            "key_source, stream, input_tokens, output_tokens, input_tokens_source, "
            "output_tokens_source, estimated, priced, cost_picodollars, finish_reason, "
            "ttft_ms, latency_ms) VALUES (?, 't1', '2026-01-01T00:00:00.000+00:00', "
            "'2026-01-01', 'local', 'echo', 'operator', 0, 1, 2, 'upstream', ?, 0, 1, 5, "
            "'stop', NULL, 1.0)",
            (request_id, source),
        )
    old.close()
    with connect(path) as conn:
        assert current_revision(conn) == HEAD
        methods = {
            row["request_id"]: (row["input_tokens_method"], row["output_tokens_method"])
            for row in usage_for_tenant(conn, "t1")
        }
        assert methods == {"r-up": ("upstream", "upstream"), "r-est": ("upstream", "chars/4")}


def test_failed_attempts_land_with_or_before_the_served_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def meta(model: str, tokens: int) -> ProvaraMeta:
        return ProvaraMeta(
            provider="local",
            model=model,
            input_tokens=tokens,
            output_tokens=tokens,
            input_tokens_source="upstream",
            output_tokens_source="upstream",
            cost_usd=Decimal(0),
            priced=True,
            finish_reason=None,
            ttft_ms=None,
            latency_ms=1.0,
        )

    import reference_gateway.usage as usage_module

    transactions: list[list[tuple[int, str | None]]] = []
    real_write = usage_module._write

    def write(conn: Any, items: list[Any]) -> None:
        transactions.append([(item[7].attempt, item[7].error) for item in items])
        real_write(conn, items)

    monkeypatch.setattr(usage_module, "_write", write)

    async def scenario() -> list[dict[str, Any]]:
        db = Database(f"sqlite:///{tmp_path / 'attempts.db'}")
        tenant, _ = db.run_sync(create_tenant, "attempts")
        # A long interval: only the served row's commit writes anything.
        recorder = UsageRecorder(db, flush_ms=60_000, flush_rows=10_000)
        recorder.start()
        try:
            for number in (0, 1):
                recorder.record(
                    request_id="r1",
                    tenant_id=tenant.id,
                    meta=meta("echo", 0),
                    key_source="local",
                    stream=False,
                    attempt=Attempted(503, "upstream_error", number, "local/echo", None),
                )
            await recorder.commit(
                request_id="r1",
                tenant_id=tenant.id,
                meta=meta("echo-anthropic", 7),
                key_source="local",
                stream=False,
                cell="chat/simple",
                attempt=Attempted(200, None, 2, "local/echo", "wxyz"),
            )
            return await db.run(usage_for_tenant, tenant.id)
        finally:
            await recorder.aclose()
            db.close()

    stored = asyncio.run(scenario())
    assert transactions == [[(0, "upstream_error"), (1, "upstream_error"), (2, None)]]
    assert [(r["attempt"], r["status"], r["error"], r["key_hint"]) for r in stored] == [
        (0, 503, "upstream_error", None),
        (1, 503, "upstream_error", None),
        (2, 200, None, "wxyz"),
    ]
    assert {r["requested_model"] for r in stored} == {"local/echo"}
