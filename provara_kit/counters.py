"""Token counters: how an adapter counts what the upstream did not report.

When a response carries no usage (or only part of it), the pipeline asks the adapter's
:class:`TokenCounter` for each missing count, after the last content event and before the
meta, and falls back to ``ceil(chars / 4)`` when there is no counter or it fails (raises,
runs past :attr:`TokenCounter.timeout`, or answers something that is not a count). A count
the upstream reported, a real ``0`` included, is never replaced and the counter is not
called for it.

An adapter attaches a counter as :attr:`provara_kit.Provider.token_counter` (an attribute,
so an operator can also set one on any provider instance)::

    provider.token_counter = TokenizerCounter.from_encode(encoding.encode)

Two kinds exist, named by :attr:`TokenCounter.method`: ``"count-endpoint"`` (the provider's
own counting API, e.g. Anthropic's ``POST /v1/messages/count_tokens``) and
``"tokenizer"`` (counting offline). The meta names the method beside the source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sized
from typing import ClassVar, Final

from provara_kit.types import ChatRequest, CountMethod

__all__ = ["DEFAULT_COUNT_TIMEOUT", "CountMethod", "TokenCounter", "TokenizerCounter"]

DEFAULT_COUNT_TIMEOUT: Final = 5.0
"""Seconds the pipeline waits for one count before it falls back to ``chars / 4``."""


class TokenCounter(ABC):
    """Counts tokens for a request and for the text a model produced.

    Subclasses set :attr:`method` and implement both coroutines; each returns a
    non-negative ``int`` or raises. The pipeline bounds every call by :attr:`timeout` and
    treats any exception, a timeout or a value that is not a count as "no count" (it logs
    the failure and uses ``chars / 4``), so a counter need not guard against its own
    errors.
    """

    method: ClassVar[CountMethod]
    """``"count-endpoint"`` or ``"tokenizer"``: reported in the meta as the count's method."""
    timeout: float = DEFAULT_COUNT_TIMEOUT
    """Seconds one call may take before its count falls back to ``chars / 4``."""

    @abstractmethod
    async def count_input(self, request: ChatRequest) -> int:
        """Tokens the request's prompt counts as billed input."""

    @abstractmethod
    async def count_output(self, text: str, request: ChatRequest) -> int:
        """Tokens ``text`` counts as output: the answer's text, reasoning and tool calls
        (names and arguments) joined, for ``request``."""


class TokenizerCounter(TokenCounter):
    """A tokenizer that works offline, from any ``Callable[[str], int]``.

    Input is the text of every message, one per line; output is the produced text. The
    callable runs in the event loop: pass a fast one (tiktoken's and Hugging Face
    ``tokenizers``' encoders are). For an encoder that returns the tokens
    (``tiktoken.get_encoding("o200k_base").encode``), use :meth:`from_encode`.
    """

    method: ClassVar[CountMethod] = "tokenizer"

    def __init__(self, count: Callable[[str], int], *, timeout: float = DEFAULT_COUNT_TIMEOUT):
        """Count with ``count(text) -> int``; ``timeout`` bounds each call's wait."""
        if not callable(count):
            raise TypeError(f"count must be a callable str -> int, got {type(count).__name__}")
        self._count = count
        self.timeout = timeout

    @classmethod
    def from_encode(
        cls, encode: Callable[[str], Sized], *, timeout: float = DEFAULT_COUNT_TIMEOUT
    ) -> TokenizerCounter:
        """A counter that counts the tokens ``encode(text)`` returns."""
        return cls(lambda text: len(encode(text)), timeout=timeout)

    def __repr__(self) -> str:
        return f"TokenizerCounter({self._count!r})"

    async def count_input(self, request: ChatRequest) -> int:
        return self._count("\n".join(message.text() for message in request.messages))

    async def count_output(self, text: str, request: ChatRequest) -> int:
        return self._count(text)
