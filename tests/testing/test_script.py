"""The script values and the body that delivers them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from provara_kit.testing import (
    CannedReply,
    ErrorFault,
    Frame,
    ScriptedBody,
    StreamFaults,
    echo_reply,
    split_text,
)
from provara_kit.testing.script import Script, ScriptStep


def test_canned_reply() -> None:
    reply = CannedReply(chunks=["a", "b"])  # type: ignore[arg-type]
    assert reply.chunks == ("a", "b") and reply.text == "ab"
    assert CannedReply(chunks="whole").chunks == ("whole",)  # type: ignore[arg-type]
    assert reply.reported_tokens() == (12, 5)
    assert CannedReply(chunks=(), usage="partial").reported_tokens() == (12, None)
    assert CannedReply(chunks=(), usage="zero").reported_tokens() == (0, 0)
    assert CannedReply(chunks=(), usage="null").reported_tokens() == (None, None)
    with pytest.raises(ValueError, match="usage must be one of"):
        CannedReply(chunks=(), usage="missing")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not JSON"):
        CannedReply(chunks=(), tool_calls=(("id", "name", "{oops"),))


def test_faults_and_errors_validate() -> None:
    with pytest.raises(ValueError, match="split_bytes"):
        StreamFaults(split_bytes=0)
    with pytest.raises(ValueError, match="abort_after_bytes"):
        StreamFaults(abort_after_bytes=-1)
    with pytest.raises(ValueError, match="400-599"):
        ErrorFault(200)
    assert ErrorFault(429, retry_after=2.0).retry_after_header() == "2"
    assert ErrorFault(429, retry_after=1.5).retry_after_header() == "1.5"
    assert ErrorFault(503).retry_after_header() is None


def test_split_text_and_echo() -> None:
    assert split_text("") == ()
    assert split_text("one") == ("one",)
    assert split_text("a b c d e") == ("a b ", "c d ", "e")
    assert "".join(split_text("  spaced   words here ")) == "  spaced   words here "
    reply = echo_reply("system + hello", "hello", model="m")
    assert (reply.text, reply.input_tokens, reply.output_tokens, reply.model) == (
        "hello",
        4,
        2,
        "m",
    )


def test_script_queue() -> None:
    script: Script[ErrorFault] = Script(ScriptStep(reply=None))
    script.queue(error=ErrorFault(500))
    first, second = script.next(), script.next()
    assert first.error == ErrorFault(500) and first.reply is None
    assert second.error is None and script.pending == 0


def frames() -> list[Frame]:
    return [Frame(b"head|"), Frame(b"one|", 0), Frame(b"two|", 1), Frame(b"end|")]


async def read(body: ScriptedBody) -> list[bytes]:
    return [piece async for piece in body]


async def test_body_pieces_follow_frames_or_split_bytes() -> None:
    assert await read(ScriptedBody.from_frames(frames(), StreamFaults())) == [
        b"head|",
        b"one|",
        b"two|",
        b"end|",
    ]
    pieces = await read(ScriptedBody.from_frames(frames(), StreamFaults(split_bytes=6)))
    assert pieces == [b"head|o", b"ne|two", b"|end|"]


async def test_body_cut() -> None:
    clean = ScriptedBody.from_frames(
        frames(), StreamFaults(abort_after_bytes=7, abort_with_error=False)
    )
    assert await read(clean) == [b"head|", b"on"]
    dropped = ScriptedBody.from_frames(frames(), StreamFaults(abort_after_bytes=7))
    with pytest.raises(httpx.RemoteProtocolError, match="after 7 bytes"):
        await read(dropped)
    longer = ScriptedBody.from_frames(frames(), StreamFaults(abort_after_bytes=99))
    assert b"".join(await read(longer)) == b"head|one|two|end|"


@pytest.mark.parametrize(("chunk", "before"), [(0, 1), (1, 2), (5, 3)])
async def test_body_stall_position(chunk: int, before: int) -> None:
    faults = StreamFaults(stall_after_chunks=chunk, stall_seconds=10, split_bytes=2)
    body = ScriptedBody.from_frames(frames(), faults)
    delivered: list[bytes] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async for piece in body:
                delivered.append(piece)
    assert b"".join(delivered) == b"".join(f.data for f in frames()[:before])


async def test_body_close_runs_once() -> None:
    closed: list[int] = []
    body = ScriptedBody([b"x"], on_close=lambda: closed.append(1))
    await body.aclose()
    await body.aclose()
    assert closed == [1] and await read(body) == []
