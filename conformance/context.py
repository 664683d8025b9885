"""What a check works with: the target, a scripted upstream around it, and soft assertions."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from conformance.replay import RecordingTransport
from conformance.target import ConformanceTarget
from provara_kit.errors import ProviderError
from provara_kit.provider import Provider
from provara_kit.testing import (
    DEFAULT_REPLY,
    CannedReply,
    ErrorFault,
    ScriptedUpstream,
    StreamFaults,
    WireDialect,
)
from provara_kit.types import ChatRequest, ProvaraMeta, StreamEvent, TextDelta

__all__ = [
    "FAKE_KEY",
    "CheckContext",
    "CheckSkipped",
    "Findings",
    "StreamOutcome",
    "attempt",
    "run_stream",
]

FAKE_KEY = "sk-conformance-7f3a9c2e41b84d06a5e1c9d2b7f04e83"
"""The key every scripted check uses; it must never surface in an error, a repr or a log."""


class CheckSkipped(Exception):
    """The check cannot run here (no key for a live run, nothing to check); says why."""


class Findings:
    """Soft assertions: a check records every failing case, then fails once with all."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def expect(self, condition: object, problem: str) -> bool:
        if not condition:
            self.problems.append(problem)
        return bool(condition)

    def fail(self, problem: str) -> None:
        self.problems.append(problem)

    def raise_if_any(self) -> None:
        if self.problems:
            raise AssertionError("; ".join(self.problems))


@dataclass
class StreamOutcome:
    """Everything a stream yielded, and how it ended."""

    events: list[StreamEvent] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def metas(self) -> list[ProvaraMeta]:
        return [e for e in self.events if isinstance(e, ProvaraMeta)]

    @property
    def content(self) -> list[StreamEvent]:
        return [e for e in self.events if not isinstance(e, ProvaraMeta)]

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))


async def attempt(provider: Provider, request: ChatRequest, mode: str) -> Exception | None:
    """Send ``request`` as ``mode`` (``complete`` or ``stream``, drained); the exception it
    ended with, whatever it is, or ``None``."""
    try:
        if mode == "complete":
            await provider.complete(request)
        else:
            async with provider.complete_stream(request) as stream:
                async for _event in stream:
                    pass
    except Exception as exc:  # judged by the caller, whatever it is
        return exc
    return None


async def run_stream(provider: Provider, request: ChatRequest) -> StreamOutcome:
    """Drain a stream, keeping what it yielded and the error it ended with."""
    outcome = StreamOutcome()
    try:
        async with provider.complete_stream(request) as stream:
            async for event in stream:
                outcome.events.append(event)
    except ProviderError as exc:
        outcome.error = exc
    return outcome


@dataclass
class CheckContext:
    """The target under test and helpers to script its upstream."""

    target: ConformanceTarget
    live: bool = False
    record: bool = False
    recordings: list[RecordingTransport] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.target.model

    @property
    def streaming(self) -> bool:
        """False when the target is checked with its streaming turned off."""
        return self.target.streaming

    def needs_streaming(self, why: str) -> None:
        """Skip, saying ``why``, when the target's streaming is off."""
        if not self.target.streaming:
            raise CheckSkipped(f"streaming is off for {self.target.name}: {why}")

    def request(
        self,
        text: str = "Say hello.",
        *,
        system: str | None = "You are terse.",
        model: str | None = None,
        **extra: Any,
    ) -> ChatRequest:
        messages: list[dict[str, Any]] = []
        if system is not None:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": text})
        return ChatRequest(model=model or self.model, messages=messages, **extra)

    def reply(self, chunks: Sequence[str] = DEFAULT_REPLY.chunks, **fields: Any) -> CannedReply:
        fields.setdefault("model", self.model)
        return CannedReply(chunks=tuple(chunks), **fields)

    @asynccontextmanager
    async def scripted(
        self,
        *,
        reply: CannedReply | None = None,
        faults: StreamFaults | None = None,
        error: ErrorFault | None = None,
        models: Sequence[str] | None = None,
        stream_timeout_ms: int | None = None,
        dialect: WireDialect | None = None,
        wrap: Callable[[ScriptedUpstream], httpx.AsyncBaseTransport] | None = None,
    ) -> AsyncIterator[tuple[Provider, ScriptedUpstream]]:
        """The target wired to a scripted upstream speaking its dialect (or ``dialect``,
        one of its :meth:`~provara_kit.testing.WireDialect.wire_variants`); ``wrap`` puts
        a transport of the check's own between them (to rewrite what the upstream says)."""
        upstream = ScriptedUpstream(
            dialect or self.target.dialect,
            reply=reply or self.reply(),
            faults=faults,
            error=error,
            models=models,
            expected_api_key=FAKE_KEY,
            validate=True,
        )
        provider = self.target.build(
            api_key=FAKE_KEY,
            transport=upstream if wrap is None else wrap(upstream),
            stream_timeout_ms=stream_timeout_ms,
        )
        try:
            yield provider, upstream
        finally:
            await provider.aclose()

    def live_key(self) -> str:
        """The real API key from the environment, or skip saying which variable to set."""
        env = self.target.api_key_env
        key = os.environ.get(env) if env else None
        if not key:
            raise CheckSkipped(
                f"--live needs a key for {self.target.name}: set {env or 'its API key variable'}"
            )
        return key

    def live_provider(self, *, api_key: str | None = None) -> Provider:
        """The target against the real API; with ``--record`` its exchanges are kept."""
        key = api_key or self.live_key()
        transport: RecordingTransport | None = None
        if self.record:
            transport = RecordingTransport(secrets=(key,))
            self.recordings.append(transport)
        provider = self.target.build(api_key=key, transport=transport, live=True)
        if transport is not None:
            # Recorded paths are the endpoints': the base URL's own path is the deployment's.
            transport.base_path = urlsplit(str(getattr(provider, "base_url", "") or "")).path
        return provider

    def save_recordings(self, check_id: str, folder: Path) -> list[Path]:
        """Write what ``--record`` kept as fixtures named after the check."""
        saved = []
        for number, recording in enumerate(self.recordings, 1):
            path = recording.save(folder, f"{check_id}-{number}", provider=self.target.name)
            if path is not None:
                saved.append(path)
        return saved
