"""Token counters the ``token-fallback`` check installs on an adapter to watch its pipeline.

A :class:`ProbeCounter` answers fixed counts, raises, answers nonsense or never answers,
and records each call with how many content events the client had been handed by then
(:class:`Progress`), so the check sees a counter asked too early, too often or for the
wrong side. :func:`spy_on` wraps an adapter's own counter the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from provara_kit.counters import TokenCounter
from provara_kit.types import ChatRequest, CountMethod

__all__ = [
    "Behaviour",
    "CounterCall",
    "EndpointProbe",
    "ProbeCounter",
    "Progress",
    "ask",
    "spy_on",
]

Behaviour = Literal["answer", "raise", "nonsense", "hang"]
PROBE_TIMEOUT = 0.05
"""A probe's :attr:`~provara_kit.counters.TokenCounter.timeout`: a hanging probe costs
the pipeline this long before it falls back."""


class CounterFailure(RuntimeError):
    """What a failing probe raises."""


@dataclass
class Progress:
    """How many content events the client has been handed so far."""

    content: int = 0


@dataclass(frozen=True)
class CounterCall:
    """One call of a counter: which side, and the content events handed out before it."""

    side: Literal["input", "output"]
    content_seen: int
    text: str | None = None


@dataclass
class _Recorder:
    progress: Progress
    calls: list[CounterCall] = field(default_factory=list)

    def note(self, side: Literal["input", "output"], text: str | None = None) -> None:
        self.calls.append(CounterCall(side, self.progress.content, text))


class ProbeCounter(TokenCounter):
    """Counts ``input_count`` / ``output_count`` (``behaviour="answer"``), or raises,
    answers values that are not counts, or never answers."""

    method: ClassVar[CountMethod] = "tokenizer"

    def __init__(
        self,
        progress: Progress,
        *,
        input_count: int = 0,
        output_count: int = 0,
        behaviour: Behaviour = "answer",
    ) -> None:
        self.recorder = _Recorder(progress)
        self.input_count = input_count
        self.output_count = output_count
        self.behaviour = behaviour
        self.timeout = PROBE_TIMEOUT

    @property
    def calls(self) -> list[CounterCall]:
        return self.recorder.calls

    async def _answer(self, count: int, nonsense: Any) -> int:
        if self.behaviour == "raise":
            raise CounterFailure("the probe counter fails on purpose")
        if self.behaviour == "hang":
            await asyncio.Event().wait()
        if self.behaviour == "nonsense":
            answer: int = nonsense
            return answer
        return count

    async def count_input(self, request: ChatRequest) -> int:
        self.recorder.note("input")
        return await self._answer(self.input_count, -7)

    async def count_output(self, text: str, request: ChatRequest) -> int:
        self.recorder.note("output", text)
        return await self._answer(self.output_count, "12")


class EndpointProbe(ProbeCounter):
    """A :class:`ProbeCounter` that names itself a count endpoint."""

    method: ClassVar[CountMethod] = "count-endpoint"


class _Spy(TokenCounter):
    """Delegates to an adapter's own counter, recording each call."""

    def __init__(self, inner: TokenCounter, progress: Progress) -> None:
        self.inner = inner
        self.recorder = _Recorder(progress)
        self.timeout = inner.timeout

    @property
    def calls(self) -> list[CounterCall]:
        return self.recorder.calls

    async def count_input(self, request: ChatRequest) -> int:
        self.recorder.note("input")
        return await self.inner.count_input(request)

    async def count_output(self, text: str, request: ChatRequest) -> int:
        self.recorder.note("output", text)
        return await self.inner.count_output(text, request)


class _EndpointSpy(_Spy):
    method: ClassVar[CountMethod] = "count-endpoint"


class _TokenizerSpy(_Spy):
    method: ClassVar[CountMethod] = "tokenizer"


_SPIES: dict[str, Callable[[TokenCounter, Progress], _Spy]] = {
    "count-endpoint": _EndpointSpy,
    "tokenizer": _TokenizerSpy,
}


def spy_on(inner: TokenCounter, progress: Progress) -> _Spy:
    """``inner``, with the same method and timeout, recording its calls."""
    try:
        return _SPIES[inner.method](inner, progress)
    except (KeyError, AttributeError):
        raise TypeError(
            f"{type(inner).__name__}.method must be 'count-endpoint' or 'tokenizer', got "
            f"{getattr(inner, 'method', None)!r}"
        ) from None


async def ask(call: Callable[[], Awaitable[int]], seconds: float) -> int | str:
    """What a counter answers within ``seconds`` if it is a count, else what went wrong."""
    try:
        async with asyncio.timeout(seconds):
            value = await call()
    except TimeoutError:
        return f"no answer within its timeout of {seconds} s"
    except Exception as exc:  # reported by the check, whatever it is
        return f"{type(exc).__name__}: {exc}"
    if type(value) is int and value >= 0:
        return value
    return f"answered {value!r}, not a count"
