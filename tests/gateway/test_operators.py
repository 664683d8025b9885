"""Operator tokens: the ``operators`` commands, :class:`OperatorAuth`, and a revocation that
reaches every gateway on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from reference_gateway.api.errors import GatewayError
from reference_gateway.auth import hash_token
from reference_gateway.cli import main
from reference_gateway.operators import Operator, OperatorAuth, create_operator
from reference_gateway.store import Database, connect
from reference_gateway.store.operators import insert_operator
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.db import query, scalar
from tests.gateway.test_sync import eventually


def _create(database: str, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["operators", "create", name, "--database", database]) == 0
    return capsys.readouterr().out.strip()


def test_operators_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = str(tmp_path / "gw.db")
    assert main(["operators", "list", "--database", database]) == 0
    assert "no operators yet" in capsys.readouterr().err

    assert main(["operators", "create", "ops team", "--database", database]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("pvo_") and len(token) == 47
    assert "shown only this once" in err and token not in err
    stored = query(database, "SELECT name, token_sha256, token_prefix FROM operators")
    assert stored == [("ops team", hash_token(token), token[:8])]

    assert main(["operators", "create", "ops team", "--database", database]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["operators", "create", "bad/name", "--database", database]) == 1
    assert "must be 1-64 characters" in capsys.readouterr().err

    assert main(["operators", "list", "--database", database]) == 0
    listing = capsys.readouterr().out
    assert "ops team" in listing and token[:8] in listing and token not in listing

    assert main(["operators", "revoke", "ops team", "--database", database]) == 0
    assert "revoked operator 'ops team'" in capsys.readouterr().err
    assert main(["operators", "revoke", "ops team", "--database", database]) == 1
    assert "no active operator" in capsys.readouterr().err
    assert scalar(database, "SELECT revoked_at FROM operators") is not None
    kinds = query(database, "SELECT kind FROM changes ORDER BY id")
    assert kinds == [("operator-created",), ("operator-revoked",)]
    # Operators are not tenants: the tenants' listing does not show them.
    assert main(["tenants", "list", "--database", database]) == 0
    assert "ops team" not in capsys.readouterr().out


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        yield db
    finally:
        db.close()


async def _refused(auth: OperatorAuth, header: str | None) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
        await auth.authenticate(header)
    return raised.value


def test_operator_auth_answers_401_and_403(database: Database) -> None:
    with connect(database.url) as conn:
        operator, token = create_operator(conn, "alice")

    async def check() -> None:
        auth = OperatorAuth(database)
        assert await auth.authenticate(f"Bearer {token}") == operator
        assert await auth.authenticate(f"bearer  {token} ") == Operator(operator.id, "alice")
        missing = await _refused(auth, None)
        assert (missing.status, missing.code) == (401, "missing_operator_token")
        assert (await _refused(auth, f"Basic {token}")).status == 401
        wrong = await _refused(auth, "Bearer pvo_" + "x" * 43)
        assert (wrong.status, wrong.code) == (401, "invalid_operator_token")
        junk = await _refused(auth, "Bearer nonsense")
        assert junk.status == 401 and "nonsense" not in junk.message
        tenant = await _refused(auth, "Bearer pvk_" + "y" * 43)
        assert (tenant.status, tenant.code) == (403, "operator_only")

    asyncio.run(check())


def test_a_cached_operator_is_dropped_only_by_its_revocation(database: Database) -> None:
    with connect(database.url) as conn:
        operator, token = create_operator(conn, "bob")
        _, other = create_operator(conn, "carol")

    async def check() -> None:
        auth = OperatorAuth(database)
        await auth.authenticate(f"Bearer {token}")
        await auth.authenticate(f"Bearer {other}")
        assert main(["operators", "revoke", "bob", "--database", database.url]) == 0
        # The cache still holds it until the change is applied (as the sync does).
        assert await auth.authenticate(f"Bearer {token}") == operator
        auth.forget_operator(operator.id)
        assert (await _refused(auth, f"Bearer {token}")).status == 401
        assert (await auth.authenticate(f"Bearer {other}")).name == "carol"

    asyncio.run(check())


def test_an_unknown_token_is_remembered_until_an_operator_is_created(database: Database) -> None:
    async def check() -> None:
        auth = OperatorAuth(database)
        with connect(database.url) as conn:
            operator, token = create_operator(conn, "dave")
            conn.execute(sa.text("UPDATE operators SET token_sha256 = 'gone'"))
        assert (await _refused(auth, f"Bearer {token}")).status == 401
        with connect(database.url) as conn:
            conn.execute(
                sa.text("UPDATE operators SET token_sha256 = :h"),
                {"h": hash_token(token)},
            )
        # Remembered as unknown: the database is not asked again at once...
        assert (await _refused(auth, f"Bearer {token}")).status == 401
        # ...until a new operator is announced.
        auth.forget_unknown()
        assert await auth.authenticate(f"Bearer {token}") == operator

    asyncio.run(check())


def _authenticates(server: GatewayServer, token: str) -> bool:
    async def attempt() -> bool:
        try:
            await server.gateway.operators.authenticate(f"Bearer {token}")
        except GatewayError:
            return False
        return True

    return asyncio.run(attempt())


def test_a_revoked_operator_is_refused_by_every_gateway(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, database_url=store_url, sync_ms=50)
    with GatewayServer(settings) as first, GatewayServer(settings) as second:
        token = _create(store_url, "ops", capsys)
        for server in (first, second):  # both have the operator cached now
            assert _authenticates(server, token)
        assert main(["operators", "revoke", "ops", "--database", store_url]) == 0
        eventually(lambda: not _authenticates(first, token) and not _authenticates(second, token))
        for server in (first, second):  # the operator pages too
            page = httpx.get(
                f"{server.url}/dashboard/operator/tenants",
                headers={"authorization": f"Bearer {token}"},
            )
            assert page.status_code == 401 and 'id="tenants"' not in page.text
        # A new operator works everywhere, even where its token was just refused.
        fresh = "pvo_" + "z" * 43
        assert not _authenticates(second, fresh)
        with connect(store_url) as conn:
            insert_operator(conn, "op_new", "newcomer", hash_token(fresh), fresh[:8])
        eventually(lambda: _authenticates(first, fresh) and _authenticates(second, fresh))
