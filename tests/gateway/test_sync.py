"""Two gateways on one database behave as one: feedback, the router and revocation.

Both gateways run in this process (each with its own database connections, caches and
router), on each store; the subprocess tests in ``test_processes.py`` cover real
processes and ``--workers``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from reference_gateway.auth import hash_token, new_token
from reference_gateway.cli import main
from reference_gateway.store import connect
from reference_gateway.store.tenants import insert_tenant
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.db import tenant_id

MESSAGES = [{"role": "user", "content": "hello there"}]
CELL = {"x-provara-cell": "math/simple"}


def eventually(check: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait until ``check()`` holds (the sync interval is 50 ms here), failing after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the other gateway never saw the change")
        time.sleep(0.02)


@pytest.fixture
def pair(tmp_path: Path, store_url: str) -> Iterator[tuple[GatewayServer, GatewayServer]]:
    settings = make_settings(tmp_path, database_url=store_url, sync_ms=50, router_seed=7)
    with GatewayServer(settings) as first, GatewayServer(settings) as second:
        yield first, second


def test_feedback_through_one_gateway_teaches_the_other(
    pair: tuple[GatewayServer, GatewayServer],
) -> None:
    first, second = pair
    token = first.tenant("shared")
    owner = tenant_id(first.database, token)
    headers = {"authorization": f"Bearer {token}", **CELL}
    with httpx.Client(headers=headers, timeout=10) as http:
        completion = http.post(
            f"{first.url}/v1/chat/completions",
            json={"model": "local/echo-anthropic", "messages": MESSAGES},
        )
        assert completion.status_code == 200
        # Graded through the gateway that did not serve it: found through its usage row.
        graded = http.post(
            f"{second.url}/v1/feedback",
            json={"completion_id": completion.json()["id"], "score": 0.25},
        )
        assert graded.status_code == 201, graded.text
    model = "local/echo-anthropic"

    def learned(server: GatewayServer) -> tuple[int, float]:
        samples = server.gateway.router.samples(owner, "math/simple").get(model)
        return (0, 0.0) if samples is None else (samples.n, samples.total)

    eventually(lambda: learned(first) == learned(second))
    assert learned(first) == learned(second) == (1, 0.25)  # once: not lost, not twice
    router = first.gateway.router, second.gateway.router
    assert router[0].posterior(owner, "math/simple", model) == router[1].posterior(
        owner, "math/simple", model
    )


def test_a_revoked_tenant_is_refused_by_every_gateway(
    pair: tuple[GatewayServer, GatewayServer],
) -> None:
    first, second = pair
    token = first.tenant("leaving")
    body = {"model": "local/echo", "messages": MESSAGES}
    auth = {"authorization": f"Bearer {token}"}
    for server in pair:  # both have the tenant cached now
        assert httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=auth).is_success
    assert main(["tenants", "revoke", "leaving", "--database", first.database]) == 0

    def refused(server: GatewayServer) -> bool:
        answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=auth)
        return answer.status_code == 401

    eventually(lambda: refused(first) and refused(second))
    page = httpx.get(f"{second.url}/dashboard/usage", headers=auth)
    assert "Sign in with your gateway token" in page.text  # no session any more


def test_a_new_tenant_works_on_a_gateway_that_had_refused_its_token(
    pair: tuple[GatewayServer, GatewayServer],
) -> None:
    first, second = pair
    body = {"model": "local/echo", "messages": MESSAGES}
    token = new_token()
    auth = {"authorization": f"Bearer {token}"}
    # The second gateway remembers the token as unknown (for 5 s, to spare the database
    # junk traffic); a tenant created meanwhile must clear that on every gateway.
    refused = httpx.post(f"{second.url}/v1/chat/completions", json=body, headers=auth)
    assert refused.status_code == 401
    with connect(first.database) as conn:
        insert_tenant(conn, "ten_newcomer", "newcomer", hash_token(token), token[:8])
    eventually(
        lambda: httpx.post(f"{second.url}/v1/chat/completions", json=body, headers=auth).is_success,
        within=2.0,
    )


def test_on_postgresql_a_change_wakes_every_gateway_without_waiting_for_a_poll(
    tmp_path: Path, postgres_url: str
) -> None:
    # Polls a minute apart: only LISTEN/NOTIFY can carry the revocation in time.
    settings = make_settings(tmp_path, database_url=postgres_url, sync_ms=60_000)
    with GatewayServer(settings) as first, GatewayServer(settings) as second:
        token = first.tenant("notified")
        body = {"model": "local/echo", "messages": MESSAGES}
        auth = {"authorization": f"Bearer {token}"}
        for server in (first, second):
            eventually(
                lambda server=server: (
                    httpx.post(  # type: ignore[misc]
                        f"{server.url}/v1/chat/completions", json=body, headers=auth
                    ).is_success
                )
            )
        assert main(["tenants", "revoke", "notified", "--database", postgres_url]) == 0
        for server in (first, second):
            eventually(
                lambda server=server: (
                    httpx.post(  # type: ignore[misc]
                        f"{server.url}/v1/chat/completions", json=body, headers=auth
                    ).status_code
                    == 401
                ),
                within=3.0,
            )
