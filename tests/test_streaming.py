from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from provara_kit.errors import ConfigurationError, StreamAbortedError, StreamTimeoutError
from provara_kit.streaming import (
    ChatStream,
    Finish,
    KeepAlive,
    ResponseStarted,
    StreamDone,
    UpstreamEvent,
    UsageUpdate,
    normalize_batches,
    normalize_stream,
    stream_timeout_from_env,
)
from provara_kit.types import (
    ChatRequest,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)

REQUEST = ChatRequest(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi"}])


class Upstream:
    """An upstream event iterator that records whether it was closed."""

    def __init__(self, events: list[UpstreamEvent | BaseException], delay: float = 0) -> None:
        self.events = events
        self.delay = delay
        self.closed = False

    async def _gen(self) -> AsyncIterator[UpstreamEvent]:
        try:
            for event in self.events:
                if self.delay:
                    await asyncio.sleep(self.delay)
                if isinstance(event, BaseException):
                    raise event
                yield event
        finally:
            self.closed = True

    def stream(self, **kwargs: object) -> ChatStream:
        return ChatStream(
            normalize_stream(
                self._gen(),
                provider="openai",
                request=REQUEST,
                stream_timeout=kwargs.get("timeout", 5.0),  # type: ignore[arg-type]
            )
        )


async def drain(stream: ChatStream) -> list[StreamEvent]:
    return [event async for event in stream]


async def test_clean_stream_yields_content_then_one_meta_last() -> None:
    upstream = Upstream(
        [
            ResponseStarted(id="r1", model="gpt-4o-mini-2024-07-18"),
            TextDelta(""),
            KeepAlive(),
            TextDelta("Hel"),
            ToolCallDelta(index=0),
            TextDelta(""),
            ReasoningDelta(""),
            TextDelta("lo"),
            Finish("stop"),
            UsageUpdate(input_tokens=9, output_tokens=2),
            StreamDone(),
        ]
    )
    events = await drain(upstream.stream())
    assert events[:-1] == [TextDelta("Hel"), TextDelta("lo")]
    meta = events[-1]
    assert isinstance(meta, ProvaraMeta)
    assert (meta.provider, meta.model, meta.finish_reason) == ("openai", "gpt-4o-mini", "stop")
    assert (meta.input_tokens, meta.output_tokens) == (9, 2)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("upstream", "upstream")
    assert meta.response_id == "r1"
    assert meta.extra == {"upstream_model": "gpt-4o-mini-2024-07-18"}
    assert meta.priced and meta.cost_usd is not None and meta.cost_usd > 0
    assert meta.ttft_ms is not None and meta.latency_ms >= meta.ttft_ms
    assert upstream.closed


async def test_usage_updates_set_not_add() -> None:
    upstream = Upstream(
        [
            UsageUpdate(input_tokens=10, output_tokens=1),
            TextDelta("x"),
            UsageUpdate(output_tokens=10),
            UsageUpdate(output_tokens=25),
            StreamDone(),
        ]
    )
    meta = (await drain(upstream.stream()))[-1]
    assert isinstance(meta, ProvaraMeta)
    assert (meta.input_tokens, meta.output_tokens) == (10, 25)


async def test_missing_usage_is_estimated_per_field() -> None:
    upstream = Upstream([TextDelta("12345"), UsageUpdate(output_tokens=0), StreamDone()])
    meta = (await drain(upstream.stream()))[-1]
    assert isinstance(meta, ProvaraMeta)
    assert (meta.input_tokens, meta.input_tokens_source) == (2, "estimated")  # "Say hi"
    assert (meta.output_tokens, meta.output_tokens_source) == (0, "upstream")


async def test_unpriced_model_has_no_cost_not_zero() -> None:
    request = REQUEST.model_copy(update={"model": "no-such-model"})

    async def gen() -> AsyncIterator[UpstreamEvent]:
        yield TextDelta("a")
        yield StreamDone()

    events = [
        e
        async for e in normalize_stream(
            gen(), provider="openai", request=request, stream_timeout=None
        )
    ]
    meta = events[-1]
    assert isinstance(meta, ProvaraMeta)
    assert meta.priced is False and meta.cost_usd is None
    assert meta.to_dict()["cost_usd"] is None


async def test_cost_matches_pricing_table_exactly() -> None:
    pricing = {"openai/gpt-4o-mini": ("0.15", "0.60")}

    async def gen() -> AsyncIterator[UpstreamEvent]:
        yield TextDelta("a")
        yield UsageUpdate(input_tokens=1000, output_tokens=2000)
        yield StreamDone()

    events = [
        e
        async for e in normalize_stream(
            gen(), provider="openai", request=REQUEST, stream_timeout=None, pricing=pricing
        )
    ]
    meta = events[-1]
    assert isinstance(meta, ProvaraMeta)
    assert meta.cost_usd == Decimal("0.00135")
    assert meta.to_dict()["cost_usd"] == "0.00135"


@pytest.mark.parametrize(
    "failure",
    [
        [],  # body ended, no terminal marker
        [StreamAbortedError("upstream error event")],
        [httpx.ReadError("reset")],
        [httpx.RemoteProtocolError("incomplete chunked read")],
        [ValueError("not json")],
    ],
)
async def test_unfinished_stream_aborts_without_meta(
    failure: list[UpstreamEvent | BaseException],
) -> None:
    upstream = Upstream([TextDelta("partial"), Finish("stop"), *failure])
    seen: list[StreamEvent] = []
    with pytest.raises(StreamAbortedError):
        async for event in upstream.stream():
            seen.append(event)
    assert seen == [TextDelta("partial")]
    assert upstream.closed


async def test_stall_raises_stream_timeout() -> None:
    upstream = Upstream([TextDelta("a"), TextDelta("b"), StreamDone()], delay=0.2)
    with pytest.raises(StreamTimeoutError):
        await drain(upstream.stream(timeout=0.05))
    assert upstream.closed


async def test_keepalives_reset_the_idle_timer() -> None:
    events: list[UpstreamEvent | BaseException] = [KeepAlive()] * 6
    upstream = Upstream([*events, TextDelta("late"), StreamDone()], delay=0.03)
    result = await drain(upstream.stream(timeout=0.1))
    assert result[0] == TextDelta("late")


async def test_httpx_read_timeout_is_stream_timeout() -> None:
    upstream = Upstream([TextDelta("a"), httpx.ReadTimeout("slow")])
    with pytest.raises(StreamTimeoutError):
        await drain(upstream.stream())


async def test_early_stop_closes_upstream() -> None:
    upstream = Upstream([TextDelta("a"), TextDelta("b"), StreamDone()])
    async with upstream.stream() as stream:
        async for _ in stream:
            break
    assert upstream.closed


async def test_collect_builds_response_and_tool_calls() -> None:
    upstream = Upstream(
        [
            ReasoningDelta("think"),
            TextDelta("Hi"),
            ToolCallDelta(index=0, id="call_1", name="get"),
            ToolCallDelta(index=0, arguments='{"a":'),
            ToolCallDelta(index=0, arguments="1}"),
            Finish("tool_calls"),
            StreamDone(),
        ]
    )
    response = await upstream.stream().collect()
    assert response.text == "Hi" and response.reasoning == "think"
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_1", "get", '{"a":1}')
    ]
    assert response.meta.output_tokens_source == "estimated"


def test_stream_timeout_from_env() -> None:
    assert stream_timeout_from_env({}) == 60.0
    assert stream_timeout_from_env({"PROVARA_STREAM_TIMEOUT_MS": "2500"}) == 2.5
    for bad in ("abc", "0", "-5"):
        with pytest.raises(ConfigurationError, match="PROVARA_STREAM_TIMEOUT_MS"):
            stream_timeout_from_env({"PROVARA_STREAM_TIMEOUT_MS": bad})


async def test_a_slow_consumer_is_not_an_idle_upstream() -> None:
    # Events the upstream already has are handed over without a timer: only waiting on
    # the upstream counts against the idle limit, never the consumer's own pace.
    upstream = Upstream([TextDelta("a"), TextDelta("b"), StreamDone()])
    seen: list[StreamEvent] = []
    async for event in upstream.stream(timeout=0.02):
        seen.append(event)
        await asyncio.sleep(0.05)
    assert seen[:2] == [TextDelta("a"), TextDelta("b")]


async def test_cancelling_a_waiting_consumer_closes_the_upstream() -> None:
    upstream = Upstream([TextDelta("a"), StreamDone()], delay=10)
    task = asyncio.ensure_future(drain(upstream.stream(timeout=5.0)))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert upstream.closed


# -- batches ---------------------------------------------------------------------------


def batched(steps: list[list[UpstreamEvent] | BaseException]) -> ChatStream:
    async def gen() -> AsyncIterator[list[UpstreamEvent]]:
        for step in steps:
            await asyncio.sleep(0)
            if isinstance(step, BaseException):
                raise step
            yield step

    return ChatStream.from_batches(
        normalize_batches(gen(), provider="openai", request=REQUEST, stream_timeout=5.0)
    )


async def test_a_step_leaves_as_one_batch_and_the_meta_ends_the_last() -> None:
    stream = batched(
        [
            [ResponseStarted(id="r1", model="m"), TextDelta(""), TextDelta("Hel"), TextDelta("lo")],
            [KeepAlive()],
            [TextDelta("!"), Finish("stop"), UsageUpdate(3, 2), StreamDone(), TextDelta("late")],
        ]
    )
    async with stream:
        first = await stream.next_batch()
        last = await stream.next_batch()
        with pytest.raises(StopAsyncIteration):
            await stream.next_batch()
    assert first == [TextDelta("Hel"), TextDelta("lo")]  # no empty event, no keep-alive batch
    assert last[0] == TextDelta("!")
    assert isinstance(last[-1], ProvaraMeta) and len(last) == 2  # nothing after StreamDone
    assert stream.meta is last[-1]
    assert (stream.meta.input_tokens, stream.meta.output_tokens) == (3, 2)
    assert stream.meta.response_id == "r1"


async def test_anext_and_next_batch_share_one_buffer() -> None:
    stream = batched([[TextDelta("a"), TextDelta("b"), TextDelta("c")], [StreamDone()]])
    async with stream:
        assert await stream.__anext__() == TextDelta("a")
        assert await stream.next_batch() == [TextDelta("b"), TextDelta("c")]
        rest = [event async for event in stream]
    assert len(rest) == 1 and isinstance(rest[0], ProvaraMeta)


async def test_a_failing_step_after_content_aborts_without_meta() -> None:
    stream = batched([[TextDelta("partial")], ValueError("bad chunk")])
    seen: list[StreamEvent] = []
    with pytest.raises(StreamAbortedError, match="malformed"):
        async with stream:
            async for event in stream:
                seen.append(event)
    assert seen == [TextDelta("partial")]
    assert stream.meta is None


async def test_collect_works_on_batches() -> None:
    stream = batched([[TextDelta("Hi "), TextDelta("there")], [Finish("stop"), StreamDone()]])
    response = await stream.collect()
    assert response.text == "Hi there"
    assert response.finish_reason == "stop"
