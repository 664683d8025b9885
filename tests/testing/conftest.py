"""Shared helpers for the test-double tests: adapters wired to a scripted upstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.base import HTTPProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.streaming import ChatStream
from provara_kit.testing import ScriptedUpstream
from provara_kit.types import ChatRequest, ProvaraMeta, StreamEvent

API_KEY = "sk-scripted-0123456789abcdef"
BASE_URL = "https://upstream.test/v1"
WIRES = ("openai-chat", "anthropic-messages")
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "wire-corpus"

REQUEST = ChatRequest(
    model="test-model",
    messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello to the nice people"},
    ],
)


def make_adapter(upstream: Any, wire: str, **options: Any) -> HTTPProvider:
    """The SDK's adapter for ``wire``, talking to ``upstream`` (a transport)."""
    options.setdefault("pricing", {})
    options.setdefault("stream_timeout", 5.0)
    if wire == "openai-chat":
        return OpenAICompatibleProvider(
            name="acme", base_url=BASE_URL, api_key=API_KEY, transport=upstream, **options
        )
    return AnthropicProvider(api_key=API_KEY, base_url=BASE_URL, transport=upstream, **options)


@pytest.fixture(params=WIRES)
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def adapter_for(wire: str) -> Callable[..., HTTPProvider]:
    """``adapter_for(upstream, **options)``: the adapter of the current wire."""

    def build(upstream: ScriptedUpstream, **options: Any) -> HTTPProvider:
        return make_adapter(upstream, wire, **options)

    return build


async def drain(stream: ChatStream) -> tuple[list[StreamEvent], BaseException | None]:
    """Every event a stream yields, and the error that ended it (``None``: clean end)."""
    events: list[StreamEvent] = []
    try:
        async with stream:
            async for event in stream:
                events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def metas(events: list[StreamEvent]) -> list[ProvaraMeta]:
    return [e for e in events if isinstance(e, ProvaraMeta)]


def corpus_body(relative: str) -> bytes:
    """A recorded body from the wire corpus (the body part of a ``.http`` response)."""
    path = CORPUS / relative
    if not path.exists():
        pytest.skip(f"wire corpus file not found: {path}")
    data = path.read_bytes()
    if path.suffix == ".http":
        data = data.split(b"\r\n\r\n", 1)[1]
    return data
