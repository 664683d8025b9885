"""Fixtures that run the real gateway: uvicorn on a free loopback port, in a thread.

``gateway`` is one server for the whole module set (started once, stopped at the end);
tests that need their own settings start a :class:`GatewayServer` themselves. Tenants are
created straight in the database, as ``provara-gateway tenants create`` does.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from provara_kit.provider import Provider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import ProviderSpec, Registry
from provara_kit.streaming import ChatStream
from provara_kit.testing import CannedReply, OpenAIChatDialect
from provara_kit.types import ChatRequest, ChatResponse
from provara_kit.vault import generate_master_key
from reference_gateway.app import create_app
from reference_gateway.auth import create_tenant
from reference_gateway.config import Settings
from reference_gateway.store import connect

OPERATOR_KEY = "sk-operator-acme-0123456789abcdef"
BOOM_KEY = "sk-boom-secret-9876543210fedcba"


def acme_upstream(request: httpx.Request) -> httpx.Response:
    """An OpenAI-compatible upstream that answers with the key it was sent."""
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    reply = CannedReply(chunks=(f"key={key}",), model="acme-large", usage="null")
    body = OpenAIChatDialect().render_completion(reply)
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def _acme(*, api_key: str | None, base_url: str | None, transport: Any) -> Provider:
    return OpenAICompatibleProvider(
        name="acme",
        base_url=base_url or "https://acme.test/v1",
        api_key=api_key,
        transport=httpx.MockTransport(acme_upstream),
        default_models=("acme-large",),
    )


class BoomProvider(Provider):
    """A provider with a bug: it raises an exception that quotes its API key."""

    name = "boom"

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raise RuntimeError(f"adapter bug while sending key {self._api_key}")

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        raise RuntimeError(f"adapter bug while sending key {self._api_key}")


def gateway_registry() -> Registry:
    """Two providers besides ``local``: ``acme`` (keyed, unpriced) and ``boom`` (broken)."""
    registry = Registry()
    registry.register(
        ProviderSpec(
            name="acme",
            factory=_acme,
            api_key_env="ACME_API_KEY",
            default_models=("acme-large",),
            wire="openai-chat",
        )
    )
    registry.register(
        ProviderSpec(
            name="boom",
            factory=lambda *, api_key, base_url, transport: BoomProvider(api_key),
            api_key_env="BOOM_API_KEY",
            default_models=("boom-1",),
        )
    )
    return registry


class GatewayServer:
    """The gateway served by uvicorn on a free loopback port from a background thread."""

    def __init__(self, settings: Settings, *, registry: Registry | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings, registry=registry or gateway_registry())
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    @property
    def database(self) -> str:
        """The database URL (SQLite or PostgreSQL)."""
        return self.settings.database_url

    def start(self) -> GatewayServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            raise RuntimeError("the gateway did not stop")
        self._sock.close()

    def tenant(self, name: str) -> str:
        """Create a tenant; returns its bearer token."""
        with connect(self.database) as conn:
            _, token = create_tenant(conn, name)
        return token

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{tmp / 'gateway.db'}",
        master_key=generate_master_key(),
        stream_timeout_ms=5_000,
        keepalive_ms=2_000,
        max_body_bytes=64 * 1024,
        usage_flush_ms=50,
        discover_models=False,
        retries=0,  # one attempt per model unless a test asks for retries
        environ={"BOOM_API_KEY": BOOM_KEY},
    )
    return replace(base, **overrides)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each store: a test using it runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with GatewayServer(make_settings(tmp_path_factory.mktemp("gateway"))) as server:
        yield server


_counter = iter(range(1_000_000))


@pytest.fixture
def token(gateway: GatewayServer) -> str:
    """A fresh tenant on the shared gateway."""
    return gateway.tenant(f"tenant-{next(_counter)}")


@pytest.fixture
def new_tenant(gateway: GatewayServer) -> Callable[[], str]:
    return lambda: gateway.tenant(f"tenant-{next(_counter)}")


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        yield client
