"""Streaming off: the switch (registration, ``<NAME>_STREAMING``) and the stream it serves."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import httpx
import pytest

from provara_kit import registry as registry_module
from provara_kit.accounting import ParsedCompletion, finish_completion
from provara_kit.errors import (
    ConfigurationError,
    MalformedResponseError,
    RateLimitError,
    StreamAbortedError,
)
from provara_kit.nostream import (
    stream_from_completion,
    streaming_env_var,
    streaming_setting,
    without_streaming,
)
from provara_kit.provider import Provider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import ProviderSpec, Registry
from provara_kit.streaming import ChatStream
from provara_kit.testing import (
    CannedReply,
    ErrorFault,
    ScriptedProvider,
    ScriptedUpstream,
    get_dialect,
)
from provara_kit.types import (
    ChatRequest,
    ChatResponse,
    ProvaraMeta,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)

REQUEST = ChatRequest(model="scripted-model", messages=[{"role": "user", "content": "Hi there"}])
PRICING = {"fixed/scripted-model": ("3", "15"), "scripted/scripted-model": ("3", "15")}


class Fixed(Provider):
    """Answers every request with one whole answer; counts its calls."""

    def __init__(self, parsed: ParsedCompletion) -> None:
        self.name = "fixed"
        self.parsed = parsed
        self.completions = 0
        self.streams = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.completions += 1
        return finish_completion(
            dataclasses.replace(self.parsed),
            provider=self.name,
            request=request,
            started=time.perf_counter(),
            pricing=PRICING,
        )

    def complete_stream(self, request: ChatRequest) -> ChatStream:
        self.streams += 1
        raise AssertionError("the provider's own stream must not be used")


def _answer(**fields: Any) -> ParsedCompletion:
    values: dict[str, Any] = {
        "text": "The weather:",
        "finish_reason": "tool_calls",
        "input_tokens": 21,
        "output_tokens": 9,
        "id": "resp_7",
        "model": "scripted-model-2025-01-01",
        "reasoning": "Check the forecast.",
        "tool_calls": [
            ToolCall(id="call_a", name="get_weather", arguments='{"city": "Lisbon"}'),
            ToolCall(id="call_b", name="get_time", arguments=""),
        ],
    }
    values.update(fields)
    return ParsedCompletion(**values)


# -- the switch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", False),
        ("1", True),
        ("false", False),
        ("TRUE", True),
        ("No", False),
        ("yes", True),
        (" off ", False),
        ("On", True),
        ("", True),
    ],
)
def test_streaming_setting_reads_yes_and_no_in_any_case(raw: str, expected: bool) -> None:
    assert streaming_setting("acme", True, {"ACME_STREAMING": raw}) is expected


def test_streaming_setting_defaults_and_names_its_variable() -> None:
    assert streaming_env_var("my-prov_2") == "MY_PROV_2_STREAMING"
    assert streaming_setting("acme", False, {}) is False
    assert streaming_setting("acme", True, {}) is True
    assert streaming_setting("acme", False, {"ACME_STREAMING": "1"}) is True


@pytest.mark.parametrize("raw", ["2", "disabled", "nope", "0 1"])
def test_a_bad_streaming_value_is_a_configuration_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"MY_PROV_STREAMING must be 0 or 1") as info:
        streaming_setting("my-prov", True, {"MY_PROV_STREAMING": raw})
    assert repr(raw) in str(info.value)


def test_registration_and_environment_decide_what_create_builds() -> None:
    registry = Registry()
    spec = registry.register(
        "quiet", lambda **_: ScriptedProvider("quiet"), api_key_env=None, streaming=False
    )
    assert spec.streaming is False and spec.streaming_env == "QUIET_STREAMING"
    assert registry.create("quiet", environ={}).streaming is False
    assert registry.create("quiet", environ={"QUIET_STREAMING": "on"}).streaming is True
    path_a = registry.register_openai_compatible(
        name="acme", api_key_env="ACME_API_KEY", default_base_url="https://acme.test/v1"
    )
    assert path_a.streaming is True
    assert registry.create("acme", environ={}).streaming is True
    assert registry.create("acme", environ={"ACME_STREAMING": "0"}).streaming is False
    with pytest.raises(ConfigurationError, match="ACME_STREAMING"):
        registry.create("acme", environ={"ACME_STREAMING": "maybe"})
    off = registry.register_openai_compatible(
        name="acme", api_key_env="ACME_API_KEY", default_base_url="https://x", streaming=False
    )
    assert off.streaming is False and registry.create("acme", environ={}).streaming is False


def test_an_adapter_package_keeps_its_streaming_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    class Point:
        name = "pkg"
        value = "pkg:SPEC"
        dist = type("Dist", (), {"name": "provara-provider-pkg"})()

        def load(self) -> ProviderSpec:
            return ProviderSpec(
                name="pkg", factory=lambda **_: ScriptedProvider("pkg"), streaming=False
            )

    monkeypatch.setattr(registry_module, "entry_points", lambda group: [Point()])
    registry = Registry()
    assert registry.load_entry_points() == ["pkg"]
    assert registry.get("pkg").source == "entry-point:provara-provider-pkg"
    assert registry.create("pkg", environ={}).streaming is False


# -- the stream ---------------------------------------------------------------------------


async def test_the_stream_is_the_completion_content_then_its_meta() -> None:
    provider = without_streaming(Fixed(_answer()))
    expected = await provider.complete(REQUEST)
    async with provider.complete_stream(REQUEST) as stream:
        events = [event async for event in stream]
    assert events[:-1] == [
        ReasoningDelta("Check the forecast."),
        TextDelta("The weather:"),
        ToolCallDelta(index=0, id="call_a", name="get_weather", arguments='{"city": "Lisbon"}'),
        ToolCallDelta(index=1, id="call_b", name="get_time", arguments=""),
    ]
    meta = events[-1]
    assert isinstance(meta, ProvaraMeta) and stream.meta is meta
    kept = (
        *("provider", "model", "input_tokens", "output_tokens", "input_tokens_source"),
        *("output_tokens_source", "cost_usd", "priced", "finish_reason", "response_id"),
    )
    for name in (*kept, "extra"):
        assert getattr(meta, name) == getattr(expected.meta, name), name
    assert meta.priced and meta.cost_usd is not None
    assert meta.ttft_ms is not None and 0 <= meta.ttft_ms <= meta.latency_ms
    assert provider.completions == 2 and provider.streams == 0


async def test_nothing_empty_is_yielded_and_usage_fallback_is_the_completions() -> None:
    answer = _answer(
        text="",
        reasoning="",
        input_tokens=None,
        output_tokens=0,
        tool_calls=[ToolCall(), ToolCall(id="call_z", name="noop")],
    )
    provider = without_streaming(Fixed(answer))
    async with provider.complete_stream(REQUEST) as stream:
        batch = await stream.next_batch()
        with pytest.raises(StopAsyncIteration):
            await stream.next_batch()
    assert batch[:-1] == [ToolCallDelta(index=1, id="call_z", name="noop")]
    meta = batch[-1]
    assert isinstance(meta, ProvaraMeta)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("estimated", "upstream")
    assert meta.output_tokens == 0


async def test_an_answer_with_no_content_has_no_time_to_first_token() -> None:
    stream = stream_from_completion(Fixed(_answer(text="", reasoning="", tool_calls=[])), REQUEST)
    events = [event async for event in stream]
    assert len(events) == 1 and isinstance(events[0], ProvaraMeta)
    assert events[0].ttft_ms is None


async def test_collect_gives_the_completion() -> None:
    provider = without_streaming(Fixed(_answer()))
    collected = await provider.complete_stream(REQUEST).collect()
    completed = await provider.complete(REQUEST)
    assert collected.model_dump(exclude={"meta"}) == completed.model_dump(exclude={"meta"})


async def test_nothing_is_sent_until_the_stream_is_read() -> None:
    provider = without_streaming(Fixed(_answer()))
    stream = provider.complete_stream(REQUEST)
    await stream.aclose()
    async with provider.complete_stream(REQUEST):
        pass
    assert provider.completions == 0


async def test_an_upstream_error_is_the_completions_typed_error_before_any_event() -> None:
    provider = without_streaming(
        ScriptedProvider(error=ErrorFault(429, message="slow down", retry_after=7))
    )
    events: list[object] = []
    with pytest.raises(RateLimitError) as info:
        async with provider.complete_stream(REQUEST) as stream:
            async for event in stream:
                events.append(event)
    assert not isinstance(info.value, StreamAbortedError)
    assert info.value.retry_after == 7 and "slow down" in str(info.value)
    assert events == [] and provider.open_streams == 0


async def test_a_path_a_provider_sends_a_plain_completion() -> None:
    reply = CannedReply(("Hel", "lo"), model="gpt-x", input_tokens=5, output_tokens=2)
    upstream = ScriptedUpstream(get_dialect("openai-chat"), reply=reply, expected_api_key="k")
    registry = Registry()
    registry.register_openai_compatible(
        name="acme", api_key_env="ACME_API_KEY", default_base_url="https://acme.test/v1"
    )
    request = REQUEST.model_copy(update={"model": "gpt-x"})
    async with registry.create(
        "acme", api_key="k", transport=upstream, environ={"ACME_STREAMING": "false"}
    ) as provider:
        response = await provider.complete_stream(request).collect()
    assert isinstance(provider, OpenAICompatibleProvider) and provider.streaming is False
    assert response.text == "Hello" and (
        response.usage.input_tokens,
        response.usage.output_tokens,
    ) == (5, 2)
    assert len(upstream.requests) == 1
    assert not get_dialect("openai-chat").is_stream_request(upstream.requests[0].view)


class CollectsItsStream(ScriptedProvider):
    """An adapter whose ``complete`` is its own stream, collected."""

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await self.complete_stream(request).collect()


async def test_a_complete_built_on_the_stream_does_not_recurse() -> None:
    provider = without_streaming(CollectsItsStream(reply=CannedReply(("a", "b"))))
    response = await provider.complete_stream(REQUEST).collect()
    assert response.text == "ab" and provider.opened_streams == 1


async def test_without_streaming_is_idempotent_and_respects_an_adapters_own_choice() -> None:
    provider = ScriptedProvider()
    assert without_streaming(without_streaming(provider)) is provider
    assert provider.streaming is False

    class OwnsIt(Fixed):
        streaming = False

    own = OwnsIt(_answer())
    assert without_streaming(own) is own
    with pytest.raises(AssertionError, match="own stream"):
        own.complete_stream(REQUEST)


async def test_a_stream_body_answering_the_completion_quotes_no_key_fragment() -> None:
    """With streaming off a misbehaving upstream may still answer with a stream body: the
    error quotes its start, scrubbed before it is cut (a key across the cut leaks no part)."""
    key = "sk-live-0123456789abcdefghijklmnopqrstuv"
    for offset in range(150, 210, 7):
        body = b"x" * offset + f'data: {{"error": "bad key {key}"}}\n\n'.encode()
        transport = httpx.MockTransport(
            lambda request, body=body: httpx.Response(200, content=body)
        )
        provider = without_streaming(
            OpenAICompatibleProvider(
                name="acme", base_url="https://acme.test/v1", api_key=key, transport=transport
            )
        )
        with pytest.raises(MalformedResponseError) as info:
            await provider.complete_stream(REQUEST).collect()
        text = str(info.value)
        assert not any(key[i : i + 8] in text for i in range(len(key) - 7)), (offset, text)


async def test_model_discovery_reports_an_unreadable_setting_and_goes_on() -> None:
    registry = Registry()
    registry.register("good", lambda **_: ScriptedProvider("good", models=["g-1"]))
    registry.register("shaky", lambda **_: ScriptedProvider("shaky", models=["s-1"]))
    report = await registry.refresh_models(environ={"SHAKY_STREAMING": "sometimes"})
    assert report.results["good"].status == "ok" and registry.models["good"] == ("g-1",)
    shaky = report.results["shaky"]
    assert shaky.status == "error" and "SHAKY_STREAMING must be 0 or 1" in (shaky.error or "")


class Waits(Fixed):
    """Answers only when released; says whether its completion was cancelled."""

    def __init__(self) -> None:
        super().__init__(_answer())
        self.started = asyncio.Event()
        self.cancelled = False

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("never released")  # pragma: no cover


async def test_a_consumer_that_goes_away_cancels_the_completion() -> None:
    provider = without_streaming(Waits())
    stream = provider.complete_stream(REQUEST)
    reader = asyncio.ensure_future(stream.next_batch())
    await provider.started.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await stream.aclose()
    assert provider.cancelled
    # Nothing was left marked: had it been, the provider's own stream (which raises) would
    # serve the next request.
    async with provider.complete_stream(REQUEST) as again:
        assert isinstance(again, ChatStream)
