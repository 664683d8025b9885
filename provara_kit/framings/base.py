"""What a stream framing is: how a streamed body's bytes are cut into frames.

An adapter declares its wire's framing (:attr:`HTTPProvider.framing
<provara_kit.providers.base.HTTPProvider.framing>`); the shared plumbing feeds every network
read to the framing's decoder and hands the frames it completed to the adapter's mapping,
whatever the framing. A decoder is incremental and knows nothing of JSON schemas or
events: only where one frame ends and the next begins, and whether the body ended cleanly.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

__all__ = ["FrameDecoder", "Framing"]

F = TypeVar("F")


class FrameDecoder(Protocol[F]):
    """An incremental decoder: :meth:`feed` it network reads, then call :meth:`end`.

    ``feed`` returns the frames a read completed, in order (``[]`` for bytes that completed
    none: a partial frame or a keep-alive). It raises ``ValueError`` for bytes the framing
    cannot carry (a corrupt binary frame). ``end`` returns what the end of the body
    completed and sets ``truncated`` when the body stopped inside a frame.

    ``closed`` turns true once the bytes fed complete the body by the framing's own rule
    (a streamed JSON array's ``]``): the plumbing then stops reading, calls ``end`` and
    closes the response, whether or not the server closes the connection. It stays false
    for a framing with no such rule (SSE, NDJSON, where only the end of the body or the
    wire's own terminal marker ends a stream). A decoder without the attribute is read to
    the end of the body.
    """

    truncated: bool
    closed: bool

    def feed(self, chunk: bytes) -> list[F]: ...

    def end(self) -> list[F]: ...


class Framing(Generic[F]):
    """A named framing: its media type and a factory of decoders (one per stream)."""

    name: str
    media_type: str

    def __init__(self, name: str, media_type: str, decoder: type[FrameDecoder[F]]) -> None:
        self.name = name
        self.media_type = media_type
        self._decoder = decoder

    def decoder(self) -> FrameDecoder[F]:
        """A fresh decoder for one stream."""
        return self._decoder()

    def __repr__(self) -> str:
        return f"Framing({self.name!r})"
