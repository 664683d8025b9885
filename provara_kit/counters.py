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

:func:`bundled_tokenizer` is an offline tokenizer whose vocabulary ships inside a package
(the ``tokenizer`` extra), so nothing is downloaded at run or test time; no adapter uses it
by default, since a provider's own tokenizer may differ from OpenAI's encodings.
"""

from __future__ import annotations

import importlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sized
from typing import Any, ClassVar, Final

from provara_kit.errors import ConfigurationError
from provara_kit.types import ChatRequest, CountMethod

__all__ = [
    "BUNDLED_ENCODINGS",
    "DEFAULT_COUNT_TIMEOUT",
    "CountMethod",
    "TokenCounter",
    "TokenizerCounter",
    "bundled_tokenizer",
]

DEFAULT_COUNT_TIMEOUT: Final = 5.0
"""Seconds the pipeline waits for one count before it falls back to ``chars / 4``."""
BUNDLED_ENCODINGS: Final = ("o200k_base", "cl100k_base")
"""The encodings :func:`bundled_tokenizer` counts with, vocabularies included."""


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

    encoding: str | None = None
    """The encoding's name, when known (:func:`bundled_tokenizer` sets it)."""

    def __repr__(self) -> str:
        if self.encoding is not None:
            return f"TokenizerCounter(encoding={self.encoding!r})"
        return f"TokenizerCounter({self._count!r})"

    async def count_input(self, request: ChatRequest) -> int:
        return self._count("\n".join(message.text() for message in request.messages))

    async def count_output(self, text: str, request: ChatRequest) -> int:
        return self._count(text)


def bundled_tokenizer(
    encoding: str = "o200k_base", *, timeout: float = DEFAULT_COUNT_TIMEOUT
) -> TokenizerCounter:
    """A :class:`TokenizerCounter` over OpenAI's ``encoding`` (``o200k_base``: GPT-4o and
    later; ``cl100k_base``: GPT-4, GPT-3.5), from the vocabulary the ``bpe-openai`` package
    ships (``pip install 'provara-kit[tokenizer]'``): nothing is fetched from the network.

    Special-token text in a prompt (``<|endoftext|>``) is counted as plain text. Raises
    :class:`~provara_kit.errors.ConfigurationError` for another encoding or when the
    package is missing.
    """
    if encoding not in BUNDLED_ENCODINGS:
        raise ConfigurationError(
            f"no bundled vocabulary for encoding {encoding!r}; bundled: "
            f"{', '.join(BUNDLED_ENCODINGS)} (or pass any tokenizer to TokenizerCounter)"
        )
    with warnings.catch_warnings():
        # bpe-openai reads its vocabularies with importlib.resources' legacy API.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            bpe: Any = importlib.import_module("bpe_openai")
        except ImportError:
            raise ConfigurationError(
                "the bundled tokenizer needs the 'tokenizer' extra: "
                "pip install 'provara-kit[tokenizer]'"
            ) from None
        encoder = bpe.get_encoding(encoding)

    def count(text: str) -> int:
        return len(encoder.encode(text, disallowed_special=()))

    counter = TokenizerCounter(count, timeout=timeout)
    counter.encoding = encoding
    return counter
