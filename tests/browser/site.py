"""The gateway the browser tests drive, and the usage real requests leave in it.

Providers: ``local`` (free), ``acme`` (unpriced; its upstream reports no usage, so tokens
are estimated), ``boom`` (broken) and ``zenith`` (priced at :data:`ZENITH_PRICE`, its
upstream reports :data:`ZENITH_TOKENS`). ``local/echo`` falls back to ``zenith/zenith-pro``.
Tenant ``acme-corp`` stores its own ACME key and sends:

* three ``local/echo`` completions, graded 1, 1 and 0 (the router page), one streamed,
  one ``auto``;
* one ``local/echo`` whose first attempt gets a 503 (retried once, then served) and one
  whose every attempt does (retried once, then served by ``zenith/zenith-pro``, its
  fallback);
* ``zenith/zenith-pro`` three times, moved 2, 5 and 5 days back;
* ``acme/acme-large`` twice, moved :data:`BACKDATED_DAYS` back;
* ``boom/boom-1`` once (it fails).

Tenant ``globex`` sends one ``local/echo-anthropic`` and must never show to ``acme-corp``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from provara_kit.pricing import MODEL_PRICING
from provara_kit.provider import Provider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import ProviderSpec, Registry
from provara_kit.testing import CannedReply, OpenAIChatDialect
from reference_gateway.local import FAULT_HEADER
from reference_gateway.operators import create_operator
from reference_gateway.store import connect
from tests.gateway.conftest import BOOM_KEY, GatewayServer, gateway_registry, make_settings
from tests.gateway.db import tenant_id

__all__ = ["BACKDATED_DAYS", "ZENITH_PRICE", "ZENITH_TOKENS", "Site", "serve_site"]

ACME_KEY = "sk-acme-tenant-key-4f2a"
ZENITH_KEY = "sk-zenith-operator-key-77aa"
ZENITH_PRICE = (Decimal("3"), Decimal("15"))
"""USD per 1M input and output tokens of ``zenith/zenith-pro``."""
ZENITH_TOKENS = (1_200, 400)
"""The input and output tokens the ``zenith`` upstream reports for every answer."""
BACKDATED_DAYS = 10
"""The tenant's ``acme`` usage is moved this many days back, for the date filters."""


@dataclass(frozen=True)
class Site:
    """The seeded gateway: ``token`` is tenant ``acme-corp``'s, ``other_token`` tenant
    ``globex``'s, ``operator_token`` operator ``ops``'s (made as ``provara-gateway
    operators create`` makes it); ``retried`` and ``fell_back`` are the request ids of the
    two ``local/echo`` requests that met a 503."""

    server: GatewayServer
    tenant: str
    token: str
    other_token: str
    operator_token: str
    today: dt.date
    backdated: dt.date
    retried: str
    fell_back: str

    @property
    def url(self) -> str:
        return self.server.url


def _zenith_upstream(request: httpx.Request) -> httpx.Response:
    """An OpenAI-compatible upstream that reports its usage."""
    reply = CannedReply(
        chunks=("Zenith answers.",),
        model="zenith-pro",
        input_tokens=ZENITH_TOKENS[0],
        output_tokens=ZENITH_TOKENS[1],
    )
    body = OpenAIChatDialect().render_completion(reply)
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def _zenith(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
    return OpenAICompatibleProvider(
        name="zenith",
        base_url=base_url or "https://zenith.test/v1",
        api_key=api_key,
        transport=httpx.MockTransport(_zenith_upstream),
        default_models=("zenith-pro",),
    )


def _registry() -> Registry:
    registry = gateway_registry()
    registry.register(
        ProviderSpec(
            name="zenith",
            factory=_zenith,
            api_key_env="ZENITH_API_KEY",
            default_models=("zenith-pro",),
            wire="openai-chat",
        )
    )
    return registry


def _chat(
    client: httpx.Client,
    token: str,
    model: str,
    text: str,
    *,
    fault: str | None = None,
    stream: bool = False,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    if fault is not None:
        headers[FAULT_HEADER] = fault
    return client.post(
        "/v1/chat/completions",
        headers=headers,
        json={"model": model, "messages": [{"role": "user", "content": text}], "stream": stream},
    )


def _move(conn: sa.Connection, tenant: str, where: str, day: dt.date, **params: str) -> int:
    """Move the tenant's usage rows matching ``where`` to ``day``; how many moved."""
    moved = conn.execute(
        sa.text(
            f"UPDATE usage SET day = :day, created_at = :created "
            f"WHERE tenant_id = :tenant AND {where}"
        ),
        {
            "day": day.isoformat(),
            "created": f"{day.isoformat()}T09:30:00.000+00:00",
            "tenant": tenant,
            **params,
        },
    )
    return int(moved.rowcount)


def _seed(server: GatewayServer) -> Site:
    token = server.tenant("acme-corp")
    other = server.tenant("globex")
    bearer = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        added = client.post(
            "/api/provider-keys", headers=bearer, json={"name": "ACME_API_KEY", "value": ACME_KEY}
        )
        assert added.status_code == 201, added.text
        for index, score in enumerate((1, 1, 0)):
            answer = _chat(client, token, "local/echo", f"hello {index} " * 20)
            feedback = {"completion_id": answer.json()["id"], "score": score}
            assert client.post("/v1/feedback", headers=bearer, json=feedback).status_code == 201
        _chat(client, token, "local/echo", "a streamed hello", stream=True)
        _chat(client, token, "auto", "which model am I routed to?")
        retried = _chat(client, token, "local/echo", "once more", fault="status=503;times=1")
        fell_back = _chat(client, token, "local/echo", "anyone there?", fault="status=503")
        assert retried.status_code == fell_back.status_code == 200, fell_back.text
        zenith = [
            _chat(client, token, "zenith/zenith-pro", f"a long question {index}")
            for index in range(3)
        ]
        for index in range(2):
            _chat(client, token, "acme/acme-large", f"question {index}")
        _chat(client, token, "boom/boom-1", "this provider is broken")
        _chat(client, other, "local/echo-anthropic", "another tenant's request")
        # The usage page flushes the usage buffer before it reads.
        assert client.get("/dashboard/usage", headers=bearer).status_code == 200
    today = dt.datetime.now(dt.UTC).date()
    backdated = today - dt.timedelta(days=BACKDATED_DAYS)
    tenant = tenant_id(server.database, token)
    with connect(server.database) as conn:
        moved = _move(conn, tenant, "requested_model = 'acme/acme-large'", backdated)
        assert moved == 2, "the acme requests left no usage rows"
        for response, days in zip(zenith, (2, 5, 5), strict=True):
            request_id = response.headers["x-request-id"]
            day = today - dt.timedelta(days=days)
            assert _move(conn, tenant, "request_id = :id", day, id=request_id) == 1
        _, operator_token = create_operator(conn, "ops")
    return Site(
        server=server,
        tenant="acme-corp",
        token=token,
        other_token=other,
        operator_token=operator_token,
        today=today,
        backdated=backdated,
        retried=retried.headers["x-request-id"],
        fell_back=fell_back.headers["x-request-id"],
    )


@contextmanager
def serve_site(folder: Path) -> Iterator[Site]:
    """The seeded gateway, serving until the block ends; ``zenith/zenith-pro``'s price is
    in :data:`MODEL_PRICING` only meanwhile."""
    settings = make_settings(
        folder,
        environ={"BOOM_API_KEY": BOOM_KEY, "ZENITH_API_KEY": ZENITH_KEY},
        fallbacks={"local/echo": ("zenith/zenith-pro",)},
        retries=1,
        retry_backoff_ms=5,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(MODEL_PRICING, "zenith/zenith-pro", ZENITH_PRICE)
        with GatewayServer(settings, registry=_registry()) as server:
            yield _seed(server)
