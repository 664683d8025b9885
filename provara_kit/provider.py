"""The interface every provider adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Self

from provara_kit.counters import TokenCounter
from provara_kit.streaming import ChatStream
from provara_kit.types import ChatRequest, ChatResponse

__all__ = ["Provider"]


class Provider(ABC):
    """An LLM provider behind the gateway.

    ``complete`` answers a request in one piece; ``complete_stream`` returns a
    :class:`ChatStream` of content events ending in one ``_provara`` meta event;
    ``discover_models`` (optional) lists the models the provider serves now, or returns
    ``None`` when it cannot. ``wire`` names the wire dialect the conformance suite scripts
    for this adapter (``openai-chat``, ``anthropic-messages`` or the adapter's own).

    ``supported_params`` names the request parameters the adapter carries to its wire
    (``None``: not declared, the fields :class:`~provara_kit.types.ChatRequest` names);
    ``unsupported_params`` the ones its wire cannot express, which it refuses with
    :class:`~provara_kit.errors.UnsupportedParameterError` instead of dropping them.

    ``token_counter`` (optional) counts the tokens the upstream did not report, better than
    ``ceil(chars / 4)``: a :class:`~provara_kit.counters.TokenCounter`, set by the adapter
    or on an instance by its operator.

    ``streaming`` is ``False`` for a provider whose stream is turned off
    (:func:`provara_kit.nostream.without_streaming`): its ``complete_stream`` is one plain
    completion yielded as a stream.
    """

    name: str
    wire: ClassVar[str] = "custom"
    default_models: tuple[str, ...] = ()
    supported_params: ClassVar[frozenset[str] | None] = None
    unsupported_params: ClassVar[frozenset[str]] = frozenset()
    streaming: bool = True
    token_counter: TokenCounter | None = None

    @abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer ``request`` in one piece."""

    @abstractmethod
    def complete_stream(self, request: ChatRequest) -> ChatStream:
        """Stream the answer; nothing is sent until the stream is first iterated."""

    async def discover_models(self) -> list[str] | None:
        """The model ids the provider serves now; ``None`` if it cannot list them."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, nothing to release here
        """Release connections. Safe to call more than once."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
