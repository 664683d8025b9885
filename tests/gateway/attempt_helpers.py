"""Shared pieces of the retry and fallback tests: a gateway whose waits are recorded, not
slept, an observer that keeps what it is told, and readers for answers and usage rows."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from provara_kit.errors import UnsupportedParameterError
from provara_kit.provider import Provider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import ProviderSpec, Registry
from provara_kit.streaming import ChatStream
from provara_kit.testing import ScriptedUpstream
from provara_kit.types import ChatRequest, ChatResponse, TextDelta
from reference_gateway.outcome import Attempt, Outcome
from reference_gateway.store import connect
from reference_gateway.store.usage import usage_for_tenant
from tests.gateway.conftest import GatewayServer, gateway_registry, make_settings
from tests.gateway.db import tenant_id

MESSAGES = [{"role": "user", "content": "try, try again"}]
TEXT = "try, try again"
FAULT = "x-provara-local-fault"
FALLBACKS = {
    "local/echo": ("acme/acme-large", "local/echo-anthropic"),
    "dead/dead-1": ("local/echo",),
}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class GlitchProvider(Provider):
    """Bugs: ``g-1`` streams one word, then something that is no stream event (after the
    first byte); ``g-2`` raises before its first event; ``complete`` always raises."""

    name = "glitch"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raise NotImplementedError

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        async def events() -> AsyncGenerator[Any, None]:
            if request.model == "g-2":
                raise RuntimeError("a bug before the first event")
            yield TextDelta(text="half")
            yield object()

        return ChatStream(events())


class PickyProvider(Provider):
    """Refuses every request before sending it, as an adapter refuses a parameter its wire
    cannot carry (``UnsupportedParameterError``, a ``ValueError``)."""

    name = "picky"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raise UnsupportedParameterError("picky cannot take 'messages' with a system turn")

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        raise UnsupportedParameterError("picky cannot take 'messages' with a system turn")


PRICY_PRICE = (1_000, 2_000)
"""USD per million input and output tokens of ``pricy/p-1``: dear, so costs show."""


def registry_with_a_dead_provider(pricy: ScriptedUpstream | None = None) -> Registry:
    """The test registry plus ``dead``: keyless, unpriced, at a port that refuses; and,
    given its scripted upstream, ``pricy``: keyless, priced at :data:`PRICY_PRICE`."""
    registry = gateway_registry()
    registry.register(
        ProviderSpec(
            name="glitch",
            factory=lambda *, api_key, base_url, transport: GlitchProvider(),
            api_key_env=None,
            default_models=("g-1", "g-2"),
        )
    )
    registry.register(
        ProviderSpec(
            name="picky",
            factory=lambda *, api_key, base_url, transport: PickyProvider(),
            api_key_env=None,
            default_models=("k-1",),
        )
    )
    if pricy is not None:
        registry.register(
            ProviderSpec(
                name="pricy",
                factory=lambda *, api_key, base_url, transport: OpenAICompatibleProvider(
                    name="pricy",
                    base_url="https://pricy.test/v1",
                    api_key=None,
                    transport=pricy,
                    default_models=("p-1",),
                    pricing={"pricy/p-1": PRICY_PRICE},
                ),
                api_key_env=None,
                default_models=("p-1",),
                wire="openai-chat",
            )
        )
    port = closed_port()
    registry.register(
        ProviderSpec(
            name="dead",
            factory=lambda *, api_key, base_url, transport: OpenAICompatibleProvider(
                name="dead",
                base_url=f"http://127.0.0.1:{port}/v1",
                api_key=None,
                transport=transport,
                default_models=("dead-1",),
            ),
            api_key_env=None,
            default_models=("dead-1",),
            wire="openai-chat",
        )
    )
    return registry


class Sleeps:
    """The retry policy's sleep: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Recorder:
    """An observer keeping every attempt and outcome it is given."""

    attempts: list[tuple[str, Attempt]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def attempt_done(self, attempt: Attempt, *, request_id: str, tenant_id: str) -> None:
        self.attempts.append((request_id, attempt))

    def request_done(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


def start_gateway(
    tmp: Path, *, pricy: ScriptedUpstream | None = None, **overrides: Any
) -> tuple[GatewayServer, Sleeps]:
    options: dict[str, Any] = {"retries": 2, "fallbacks": FALLBACKS, "keepalive_ms": 100}
    options.update(overrides)
    server = GatewayServer(
        make_settings(tmp, **options), registry=registry_with_a_dead_provider(pricy)
    )
    sleeps = Sleeps()
    server.gateway.retry.sleep = sleeps
    return server.start(), sleeps


def post(
    server: GatewayServer,
    token: str,
    model: str = "local/echo",
    *,
    fault: str | None = None,
    stream: bool = False,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"}
    if fault is not None:
        headers[FAULT] = fault
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, "stream": stream},
        headers=headers,
        timeout=15,
    )


def events(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``data:`` events of an SSE body, ``[DONE]`` left out."""
    found = []
    for line in response.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            found.append(orjson.loads(line[6:]))
    return found


def streamed_text(response: httpx.Response) -> str:
    return "".join(
        event["choices"][0]["delta"].get("content") or ""
        for event in events(response)
        if event.get("choices")
    )


def meta_of(response: httpx.Response) -> dict[str, Any]:
    """The ``provara`` object of an answer, streamed or not."""
    if response.headers["content-type"].startswith("text/event-stream"):
        (meta,) = [event["provara"] for event in events(response) if "provara" in event]
        return dict(meta)
    return dict(response.json()["provara"])


def usage_rows(
    server: GatewayServer, token: str, request_id: str, count: int
) -> list[dict[str, Any]]:
    """The request's usage rows by attempt, waiting (briefly) until ``count`` are in."""
    tenant = tenant_id(server.database, token)
    deadline = time.monotonic() + 5
    while True:
        with connect(server.database) as conn:
            rows = [r for r in usage_for_tenant(conn, tenant) if r["request_id"] == request_id]
        if len(rows) >= count or time.monotonic() > deadline:
            return sorted(rows, key=lambda r: r["attempt"])
        time.sleep(0.02)
