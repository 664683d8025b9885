"""A response body delivered piece by piece, with the delivery faults of :class:`StreamFaults`.

:class:`ScriptedBody` is an ``httpx.AsyncByteStream`` (an httpx transport returns it as the
response stream) and a plain async iterator of bytes (an ASGI app sends its pieces).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from itertools import pairwise

import httpx

from provara_kit.testing.dialects.base import Frame
from provara_kit.testing.script import StreamFaults

__all__ = ["ScriptedBody"]


class ScriptedBody(httpx.AsyncByteStream):
    """Yields ``pieces`` in order, sleeping ``stall_seconds`` before piece ``stall_before``
    (``len(pieces)``: before the end), then raises ``httpx.RemoteProtocolError`` if
    ``cut_after`` is set (the connection dropped after that many bytes).

    ``on_close`` runs once, on the first :meth:`aclose`.
    """

    def __init__(
        self,
        pieces: Sequence[bytes],
        *,
        stall_before: int | None = None,
        stall_seconds: float = 0.0,
        cut_after: int | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.pieces = tuple(pieces)
        self.stall_before = stall_before
        self.stall_seconds = stall_seconds
        self.cut_after = cut_after
        self._on_close = on_close
        self._next = 0
        self._stalled = False
        self.closed = False
        self.finished = False

    @classmethod
    def from_frames(
        cls,
        frames: Sequence[Frame],
        faults: StreamFaults,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> ScriptedBody:
        """The body of a rendered stream with ``faults``' delivery faults applied: the cut
        (``abort_after_bytes``), the stall and the re-chunking (``split_bytes``)."""
        body = b"".join(frame.data for frame in frames)
        starts: list[int] = []
        offset = 0
        for frame in frames:
            starts.append(offset)
            offset += len(frame.data)

        stall_at: int | None = None
        if faults.hold_open:
            stall_at = len(body)
        elif faults.stall_after_chunks is not None:
            stall_at = _stall_offset(frames, starts, faults.stall_after_chunks, len(body))

        cut_after: int | None = None
        if faults.abort_after_bytes is not None and faults.abort_after_bytes < len(body):
            body = body[: faults.abort_after_bytes]
            if faults.abort_with_error:
                cut_after = len(body)

        if faults.split_bytes is not None:
            cuts = set(range(0, len(body), faults.split_bytes))
        else:
            cuts = set(starts)
        cuts.add(0)
        if stall_at is not None:
            cuts.add(stall_at)
        bounds = [*sorted(c for c in cuts if c < len(body)), len(body)]
        pieces = [body[a:b] for a, b in pairwise(bounds)]

        stall_before: int | None = None
        if stall_at is not None and stall_at <= len(body):
            stall_before = bounds.index(stall_at)
        return cls(
            pieces,
            stall_before=stall_before,
            stall_seconds=faults.stall_seconds,
            cut_after=cut_after,
            on_close=on_close,
        )

    def __aiter__(self) -> ScriptedBody:
        return self

    async def __anext__(self) -> bytes:
        if self.closed or self.finished:
            raise StopAsyncIteration
        index = self._next
        if index == self.stall_before and not self._stalled:
            self._stalled = True
            await asyncio.sleep(self.stall_seconds)
        if index < len(self.pieces):
            self._next += 1
            return self.pieces[index]
        self.finished = True
        if self.cut_after is not None:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                f"(scripted abort after {self.cut_after} bytes)"
            )
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._on_close is not None:
            self._on_close()


def _stall_offset(frames: Sequence[Frame], starts: Sequence[int], chunk: int, end: int) -> int:
    """Byte offset of the frame carrying content chunk ``chunk`` (or what follows the last
    content frame before it)."""
    after_last = 0
    for frame, start in zip(frames, starts, strict=True):
        if frame.chunk == chunk:
            return start
        if frame.chunk is not None:
            after_last = start + len(frame.data)
    return min(after_last, end)
