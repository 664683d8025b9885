"""ScriptedProvider: a provider with no HTTP whose streams obey the real pipeline's rules."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from provara_kit.errors import (
    BadRequestError,
    ProviderConnectionError,
    RateLimitError,
    StreamAbortedError,
    StreamTimeoutError,
)
from provara_kit.provider import Provider
from provara_kit.testing import (
    DEFAULT_REPLY,
    CannedReply,
    ErrorFault,
    ScriptedProvider,
    ScriptedUpstream,
    StreamFaults,
)
from provara_kit.types import ProvaraMeta, TextDelta, ToolCallDelta

from .conftest import REQUEST, drain, make_adapter, metas

REPLY = CannedReply(chunks=("One", " two", " three"), finish_reason="length")


def texts(events: list[Any]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def test_is_a_provider() -> None:
    provider = ScriptedProvider()
    assert isinstance(provider, Provider) and provider.name == "scripted"
    assert repr(provider) == "ScriptedProvider(name='scripted')"


async def test_complete_and_stream_play_the_reply() -> None:
    provider = ScriptedProvider("fake", reply=REPLY, pricing={})
    response = await provider.complete(REQUEST)
    events, error = await drain(provider.complete_stream(REQUEST))
    assert error is None and texts(events) == list(REPLY.chunks)
    assert len(metas(events)) == 1 and isinstance(events[-1], ProvaraMeta)
    meta = events[-1]
    for found in (response.meta, meta):
        assert (found.provider, found.model, found.finish_reason) == (
            "fake",
            "test-model",
            "length",
        )
        assert (found.input_tokens, found.output_tokens, found.priced) == (12, 5, False)
        assert found.response_id == "resp_scripted"
    assert response.text == "One two three"
    assert provider.requests == [REQUEST, REQUEST]


@pytest.mark.parametrize("wire", ["openai-chat", "anthropic-messages"])
@pytest.mark.parametrize("usage", ["present", "null", "partial", "zero"])
async def test_same_result_as_an_adapter_on_the_wire(wire: str, usage: Any) -> None:
    reply = CannedReply(
        chunks=("Same", " answer"), usage=usage, tool_calls=(("c", "f", '{"a":1}'),)
    )
    direct = await ScriptedProvider(reply=reply, pricing={}).complete_stream(REQUEST).collect()
    async with make_adapter(ScriptedUpstream(wire, reply=reply), wire) as adapter:
        adapter.token_counter = None  # the scripted provider has none: both count chars/4
        wired = await adapter.complete_stream(REQUEST).collect()
    assert (direct.text, direct.finish_reason, direct.usage) == (
        wired.text,
        wired.finish_reason,
        wired.usage,
    )
    assert [(c.id, c.name, c.arguments) for c in direct.tool_calls] == [("c", "f", '{"a":1}')]


async def test_tool_calls_stream_as_deltas() -> None:
    reply = CannedReply(chunks=(), finish_reason="tool_calls", tool_calls=(("c1", "f", "{}"),))
    events, _ = await drain(ScriptedProvider(reply=reply).complete_stream(REQUEST))
    assert [type(e) for e in events] == [ToolCallDelta, ToolCallDelta, ProvaraMeta]
    assert (await ScriptedProvider(reply=reply).complete(REQUEST)).tool_calls[0].name == "f"


async def test_echo() -> None:
    provider = ScriptedProvider(reply=None)
    response = await provider.complete_stream(REQUEST).collect()
    assert response.text == "Say hello to the nice people"
    assert response.meta.extra == {}
    assert response.usage.input_tokens == math.ceil(
        len("Be brief.Say hello to the nice people") / 4
    )


async def test_empty_chunks_are_filtered() -> None:
    provider = ScriptedProvider(reply=REPLY, faults=StreamFaults(empty_chunks=True))
    events, error = await drain(provider.complete_stream(REQUEST))
    assert error is None and texts(events) == list(REPLY.chunks)
    assert len(events) == len(REPLY.chunks) + 1


@pytest.mark.parametrize(
    ("faults", "error_type", "shown"),
    [
        (StreamFaults(omit_terminal=True), StreamAbortedError, 3),
        (StreamFaults(error_event_after=2), StreamAbortedError, 2),
        (StreamFaults(error_event_after=0), StreamAbortedError, 0),
        (StreamFaults(abort_after_bytes=5), StreamAbortedError, 2),  # "One" + " t"
        (StreamFaults(abort_after_bytes=5, abort_with_error=False), StreamAbortedError, 2),
        (StreamFaults(abort_after_bytes=100), StreamAbortedError, 3),  # cut before the finish
        (StreamFaults(stall_after_chunks=1, stall_seconds=5), StreamTimeoutError, 1),
    ],
)
async def test_faults_end_without_meta(
    faults: StreamFaults, error_type: type[Exception], shown: int
) -> None:
    provider = ScriptedProvider(reply=REPLY, faults=faults, stream_timeout=0.05)
    started = time.perf_counter()
    events, error = await drain(provider.complete_stream(REQUEST))
    assert time.perf_counter() - started < 1
    assert isinstance(error, error_type) and metas(events) == []
    assert len(texts(events)) == shown
    assert "".join(texts(events)) == "One two three"[: len("".join(texts(events)))]
    assert (provider.opened_streams, provider.closed_streams) == (1, 1)


async def test_errors() -> None:
    provider = ScriptedProvider(error=ErrorFault(429, "slow down", retry_after=3))
    with pytest.raises(RateLimitError) as caught:
        await provider.complete(REQUEST)
    assert caught.value.retry_after == 3.0 and caught.value.provider == "scripted"
    events, error = await drain(provider.complete_stream(REQUEST))
    assert isinstance(error, RateLimitError) and events == []

    failing = ScriptedProvider(error=ProviderConnectionError("refused", provider="x"))
    for _ in range(2):
        with pytest.raises(ProviderConnectionError, match="refused"):
            await failing.complete(REQUEST)


async def test_queue_and_models() -> None:
    provider = ScriptedProvider(reply=REPLY, models=["a", "b"])
    provider.queue(error=ErrorFault(400, "bad"))
    provider.queue(reply=None, faults=StreamFaults(empty_chunks=True))
    with pytest.raises(BadRequestError):
        await provider.complete(REQUEST)
    assert (await provider.complete_stream(REQUEST).collect()).text.startswith("Say hello")
    assert (await provider.complete(REQUEST)).text == REPLY.text
    assert await provider.discover_models() == ["a", "b"]
    assert provider.default_models == ("a", "b")
    assert await ScriptedProvider(models=None).discover_models() is None


async def test_nothing_happens_until_iterated_and_early_stop_closes() -> None:
    provider = ScriptedProvider(reply=DEFAULT_REPLY)
    stream = provider.complete_stream(REQUEST)
    assert provider.requests == []
    async with stream:
        async for _ in stream:
            break
    assert (provider.opened_streams, provider.closed_streams, provider.open_streams) == (1, 1, 0)
