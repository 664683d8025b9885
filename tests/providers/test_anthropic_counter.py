"""Anthropic's count endpoint as the adapter's token counter: what it sends, what it
reads, and when the pipeline asks it."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
import pytest
import respx

from provara_kit.errors import AuthenticationError, MalformedResponseError
from provara_kit.providers.anthropic import (
    ANTHROPIC_VERSION,
    AnthropicProvider,
    AnthropicTokenCounter,
)
from provara_kit.testing import CannedReply, ErrorFault, ScriptedUpstream
from provara_kit.testing.dialects.base import stand_in_token_count
from provara_kit.types import ChatRequest

API_KEY = "sk-ant-api03-COUNTKEY-abcdefghijklmnopqrstuvwxyz-0123456789"
MODEL = "claude-test-1"
REQUEST = ChatRequest(
    model=MODEL,
    max_tokens=50,
    temperature=0.2,
    messages=[
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "Count the lemons."},
    ],
    tools=[
        {
            "type": "function",
            "function": {"name": "tally", "parameters": {"type": "object", "properties": {}}},
        }
    ],
)
TOOLS = [{"name": "tally", "input_schema": {"type": "object", "properties": {}}}]


def scripted(**fields: Any) -> tuple[AnthropicProvider, ScriptedUpstream]:
    upstream = ScriptedUpstream(
        "anthropic-messages", expected_api_key=API_KEY, validate=True, **fields
    )
    provider = AnthropicProvider(
        api_key=API_KEY, base_url="https://api.test/v1", transport=upstream, pricing={}
    )
    return provider, upstream


def counts(upstream: ScriptedUpstream) -> list[Any]:
    return [r for r in upstream.requests if r.path.endswith("/messages/count_tokens")]


def expected_input(messages: int = 1) -> int:
    tools = json.dumps(TOOLS)
    return stand_in_token_count("Be exact." + "Count the lemons." + tools) + 3 * messages


async def test_the_counter_counts_the_messages_request_on_the_count_endpoint() -> None:
    provider, upstream = scripted()
    counter = provider.token_counter
    assert isinstance(counter, AnthropicTokenCounter) and counter.method == "count-endpoint"
    assert await counter.count_input(REQUEST) == expected_input()
    (sent,) = counts(upstream)
    assert sent.method == "POST" and sent.authorized is True
    assert sent.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert sent.body == {
        "model": MODEL,
        "system": "Be exact.",
        "messages": [{"role": "user", "content": "Count the lemons."}],
        "tools": TOOLS,
    }
    assert API_KEY not in repr(counter)
    await provider.aclose()


async def test_output_is_what_an_assistant_turn_adds() -> None:
    provider, upstream = scripted()
    assert provider.token_counter is not None
    # "Three lemons, in all." is 6 stand-in tokens; a turn adds 3.
    assert await provider.token_counter.count_output("Three lemons, in all.  ", REQUEST) == 9
    bodies = [r.body for r in counts(upstream)]
    assert {"role": "assistant", "content": "Three lemons, in all."} in [
        b["messages"][-1] for b in bodies
    ]
    assert await provider.token_counter.count_output("  \n", REQUEST) == 0
    assert len(counts(upstream)) == 2  # nothing sent for an empty answer
    await provider.aclose()


@pytest.mark.parametrize("usage", ["null", "absent"])
async def test_missing_usage_is_counted_by_the_endpoint(usage: Any) -> None:
    provider, _upstream = scripted(reply=CannedReply(("Three", " lemons."), usage=usage))
    for response in (
        await provider.complete(REQUEST),
        await provider.complete_stream(REQUEST).collect(),
    ):
        assert (response.usage.input_tokens, response.usage.output_tokens) == (
            expected_input(),
            stand_in_token_count("Three lemons.") + 3,
        )
        assert response.meta.input_tokens_source == "estimated"
        assert (response.meta.input_tokens_method, response.meta.output_tokens_method) == (
            "count-endpoint",
            "count-endpoint",
        )
    await provider.aclose()


@pytest.mark.parametrize("usage", ["present", "zero", "cumulative"])
async def test_reported_usage_sends_no_count_request(usage: Any) -> None:
    provider, upstream = scripted(reply=CannedReply(("Hi",), usage=usage))
    await provider.complete(REQUEST)
    await provider.complete_stream(REQUEST).collect()
    assert counts(upstream) == []
    await provider.aclose()


async def test_a_failing_count_endpoint_falls_back_to_chars_over_4() -> None:
    provider, upstream = scripted(
        reply=CannedReply(("Three", " lemons."), usage="null"),
        count_error=ErrorFault(529, "Overloaded"),
    )
    response = await provider.complete_stream(REQUEST).collect()
    assert response.text == "Three lemons."
    assert (response.meta.input_tokens_method, response.meta.output_tokens_method) == (
        "chars/4",
        "chars/4",
    )
    assert response.meta.output_tokens == 4  # ceil(13 / 4)
    assert len(counts(upstream)) == 3  # input, and output's two counts
    await provider.aclose()


async def test_the_count_endpoint_errors_are_typed_and_scrubbed() -> None:
    provider, _ = scripted(count_error=ErrorFault(401, f"bad key {API_KEY}"))
    assert provider.token_counter is not None
    with pytest.raises(AuthenticationError) as caught:
        await provider.token_counter.count_input(REQUEST)
    assert API_KEY not in str(caught.value)
    await provider.aclose()


async def test_the_scripted_count_endpoint_refuses_completion_fields() -> None:
    provider, _upstream = scripted()
    response = await provider.client.post(
        "/messages/count_tokens",
        json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400
    assert "max_tokens: Extra inputs are not permitted" in response.text
    await provider.aclose()


class NoCounting(AnthropicProvider):
    count_tokens_path: ClassVar[str | None] = None


def test_an_endpoint_without_counting_has_no_counter() -> None:
    assert NoCounting(api_key=API_KEY).token_counter is None


# -- against respx (the default transport) --------------------------------------------------


@respx.mock(base_url="https://api.anthropic.com/v1", assert_all_called=True)
async def test_count_request_on_the_wire(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/messages/count_tokens").mock(
        return_value=httpx.Response(200, json={"input_tokens": 42})
    )
    async with AnthropicProvider(api_key=API_KEY) as provider:
        assert provider.token_counter is not None
        assert await provider.token_counter.count_input(REQUEST) == 42
    sent = route.calls.last.request
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert sent.headers["content-type"] == "application/json"
    body = json.loads(sent.content)
    assert sorted(body) == ["messages", "model", "system", "tools"]
    assert "max_tokens" not in body and "temperature" not in body and "stream" not in body


@pytest.mark.parametrize(
    "answer",
    [{"tokens": 3}, {"input_tokens": "3"}, {"input_tokens": True}, [1]],
    ids=["no field", "string", "bool", "list"],
)
@respx.mock(base_url="https://api.anthropic.com/v1")
async def test_an_answer_without_a_count_is_malformed(
    answer: Any, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("/messages/count_tokens").mock(return_value=httpx.Response(200, json=answer))
    async with AnthropicProvider(api_key=API_KEY) as provider:
        assert provider.token_counter is not None
        with pytest.raises(MalformedResponseError, match="input_tokens"):
            await provider.token_counter.count_input(REQUEST)


@respx.mock(base_url="https://api.anthropic.com/v1")
async def test_a_stream_without_usage_counts_after_its_content(
    respx_mock: respx.MockRouter,
) -> None:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
    ]
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    respx_mock.post("/messages").mock(
        return_value=httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
    )
    answers = iter([11, 11, 14])
    count = respx_mock.post("/messages/count_tokens").mock(
        side_effect=lambda request: httpx.Response(200, json={"input_tokens": next(answers)})
    )
    async with AnthropicProvider(api_key=API_KEY) as provider:
        response = await provider.complete_stream(REQUEST).collect()
    assert response.text == "Hi" and count.call_count == 3
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 3)
    assert response.usage.output_tokens_method == "count-endpoint"
