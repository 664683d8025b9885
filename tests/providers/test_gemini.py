"""GeminiProvider: the wire corpus read back exactly, request mapping, both stream framings,
errors, truncated streams, model discovery, and the key kept out of URLs, errors and reprs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from provara_kit.errors import (
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    StreamAbortedError,
    UnsupportedParameterError,
)
from provara_kit.framings import JSON_ARRAY, SSE
from provara_kit.providers.gemini import GeminiProvider
from provara_kit.providers.gemini_mapping import SKIP_SIGNATURE, call_id
from provara_kit.testing import CannedReply, ScriptedUpstream, StreamFaults
from provara_kit.testing.dialects.gemini import GeminiDialect
from provara_kit.types import ChatRequest, ChatResponse, ReasoningDelta, ToolCallDelta
from tests.wire_corpus import corpus_dir, read_recording

KEY = "AIzaSy-test-key-0123456789abcdef"
BASE = "https://generativelanguage.googleapis.com/v1beta"


def _request(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return ChatRequest(model=fields.pop("model", "gemini-2.5-flash"), **fields)


def _serving(path: Path) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    recording = read_recording(path)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(recording.status, headers=recording.headers, content=recording.body)

    return httpx.MockTransport(handler), seen


def _corpus(name: str) -> Path:
    return corpus_dir() / "gemini" / "extracted" / name


def _provider(transport: httpx.AsyncBaseTransport, **options: Any) -> GeminiProvider:
    return GeminiProvider(api_key=KEY, transport=transport, **options)


async def _complete(name: str) -> ChatResponse:
    transport, _ = _serving(_corpus(name))
    async with _provider(transport) as provider:
        return await provider.complete(_request())


async def _stream(name: str, framing: str) -> ChatResponse:
    transport, seen = _serving(_corpus(name))
    async with (
        _provider(transport, stream_framing=framing) as provider,
        provider.complete_stream(_request()) as stream,
    ):
        response = await stream.collect()
    assert seen[0].url.path.endswith(":streamGenerateContent")
    return response


# -- the wire corpus, read exactly ---------------------------------------------------------


async def test_corpus_sse_stream_with_crlf() -> None:
    response = await _stream("native-stream-sse-crlf.pydantic-ai.i0.sse", "sse")
    assert response.text == "The capital of France is Paris.\n"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (13, 8)
    assert response.usage.input_tokens_source == "upstream"
    assert response.finish_reason == "stop"
    assert response.id == "w1peaMz6INOvnvgPgYfPiQY"
    assert response.meta.extra.get("upstream_model", "gemini-2.0-flash-exp") == (
        "gemini-2.0-flash-exp"
    )


async def test_corpus_function_call_with_thought_signature_bills_thoughts_as_output() -> None:
    name = "native-stream-function-call-thought-signature.pydantic-ai.i0.sse"
    response = await _stream(name, "sse")
    assert response.text == ""
    [call] = response.tool_calls
    assert (call.name, call.arguments) == ("get_country", "{}")
    assert call.id == call_id("QUVVadTSNJ6_qtsPvN7J8Q0", 0, "get_country")
    assert response.finish_reason == "tool_calls"  # STOP after a function call
    assert (response.usage.input_tokens, response.usage.output_tokens) == (29, 10 + 202)


async def test_corpus_stream_whose_last_report_wins() -> None:
    name = "native-stream-function-call-thought-signature.pydantic-ai.i1.sse"
    response = await _stream(name, "sse")
    assert response.text == "The capital of Mexico is Mexico City."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (257, 8)
    assert response.finish_reason == "stop"


async def test_corpus_json_array_stream() -> None:
    response = await _stream("native-stream-json-array.raw-http.i0.http", "json-array")
    assert len(response.text) == 2580
    assert response.text.startswith("Clementine, a calico with a perpetually grumpy face")
    assert response.text.endswith("perhaps, she wasn't quite as grumpy as she thought she was.\n")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (8, 578)
    assert response.finish_reason == "stop"  # finishReason 1, an integer enum
    assert response.id == "VB-jaN_BCZuThMIPnryvyAg"


async def test_corpus_json_array_stream_after_a_function_call() -> None:
    name = "native-function-call-then-stream-enum-int.raw-http.i1.http"
    response = await _stream(name, "json-array")
    assert response.text == "15 * 7 is 105.\n"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (33, 12)
    assert response.finish_reason == "stop"


async def test_corpus_function_call_completion_with_integer_enums() -> None:
    response = await _complete("native-function-call-then-stream-enum-int.raw-http.i0.http")
    [call] = response.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("calculate", {"expression": "15 * 7"})
    assert call.id == call_id("aB-jaLOqDrDi7M8PhcnpkQU", 0, "calculate")
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 7)


async def test_corpus_completion_with_integer_enums() -> None:
    response = await _complete("native-nonstream-enum-int.raw-http.i0.http")
    assert response.text == "The capital of France is **Paris**.\n"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 9)
    assert response.finish_reason == "stop"
    assert response.id == "Sx-jaI-JN6bFnsEPv9TJkQU"


@pytest.mark.parametrize(("interaction", "thoughts"), [(1, 42), (2, 51)])
async def test_corpus_cached_content_counts_as_input_and_thoughts_as_output(
    interaction: int, thoughts: int
) -> None:
    name = f"native-nonstream-cached-content-tokens.pydantic-ai.i{interaction}.reserialized.json"
    response = await _complete(name)
    assert response.text == "Paris."
    # promptTokenCount (3520) already holds the 3512 cached tokens.
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3520, 2 + thoughts)
    assert response.finish_reason == "stop"


async def test_corpus_safety_blocked_answer_is_a_content_filter_finish() -> None:
    response = await _complete("native-nonstream-safety-blocked.pydantic-ai.i0.reserialized.json")
    assert response.text == ""
    assert response.tool_calls == []
    assert response.finish_reason == "content_filter"
    assert response.usage.input_tokens == 14
    # No candidatesTokenCount: not reported, so counted (an empty answer is 0 tokens).
    assert (response.usage.output_tokens, response.usage.output_tokens_source) == (0, "estimated")


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("error-400-api-key-invalid.mirascope.i0.json", BadRequestError, "API key not valid"),
        ("error-403-permission-denied.raw-http.i0.http", PermissionDeniedError, "unregistered"),
        ("error-404-model-not-found.pydantic-ai.i0.reserialized.json", NotFoundError, "not found"),
        ("error-429-resource-exhausted.crewai.i0.json", RateLimitError, "Resource exhausted"),
    ],
)
async def test_corpus_errors_are_typed(name: str, error: type[ProviderError], words: str) -> None:
    transport, _ = _serving(_corpus(name))
    async with _provider(transport) as provider:
        with pytest.raises(error, match=words) as raised:
            await provider.complete(_request())
        with pytest.raises(error):
            async with provider.complete_stream(_request()) as stream:
                await stream.collect()
    assert raised.value.retryable is (error is RateLimitError)


# -- requests ------------------------------------------------------------------------------


def _body(request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    return GeminiProvider(api_key=KEY)._build_payload(request, stream=stream)


def test_messages_map_to_system_instruction_and_contents() -> None:
    request = _request(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "Weather in Lisbon and Porto?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"c": "L"}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"c": "P"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "21C"},
            {"role": "tool", "tool_call_id": "c2", "content": "19C"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "And this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                ],
            },
        ]
    )
    body = _body(request)
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse.\n\nUse metric units."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Lisbon and Porto?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {"functionCall": {"id": "c1", "name": "w", "args": {"c": "L"}}},
                {"functionCall": {"id": "c2", "name": "w", "args": {"c": "P"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "c1", "name": "w", "response": {"content": "21C"}}},
                {"functionResponse": {"id": "c2", "name": "w", "response": {"content": "19C"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"text": "And this?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}},
            ],
        },
    ]
    assert GeminiDialect().validate_request(body) == []


def test_gemini_3_function_calls_carry_the_documented_skip_signature() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "c2"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a"},
        {"role": "tool", "tool_call_id": "c2", "content": "b"},
    ]
    parts = _body(_request(model="gemini-3.1-pro-preview", messages=messages))["contents"][1]
    assert [p.get("thoughtSignature") for p in parts["parts"]] == [SKIP_SIGNATURE, None]
    older = _body(_request(model="gemini-2.5-flash", messages=messages))["contents"][1]
    assert all("thoughtSignature" not in p for p in older["parts"])


def test_tools_choice_and_generation_config() -> None:
    tool: dict[str, Any] = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    body = _body(
        _request(
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            temperature=0.0,
            max_tokens=77,
            stop="END",
            top_p=0.5,
            top_k=3,
            seed=0,
            presence_penalty=0.1,
            frequency_penalty=0.2,
            response_format={"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
            reasoning_effort="none",
        )
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "The weather.",
                    "parametersJsonSchema": tool["function"]["parameters"],
                }
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert body["generationConfig"] == {
        "temperature": 0.0,
        "topP": 0.5,
        "topK": 3,
        "seed": 0,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "maxOutputTokens": 77,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"thinkingBudget": 0},
    }
    thinking = _body(_request(reasoning_effort="high"))["generationConfig"]["thinkingConfig"]
    assert thinking == {"thinkingLevel": "high", "includeThoughts": True}
    assert _body(_request(max_completion_tokens=9))["generationConfig"] == {"maxOutputTokens": 9}
    assert _body(_request(response_format={"type": "json_object"}))["generationConfig"] == {
        "responseMimeType": "application/json"
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"user": "tenant-7"},
        {"metadata": {"user_id": "tenant-7"}},
        {"logprobs": True},
        {"logit_bias": {"1": -100}},
        {"parallel_tool_calls": False},
        {"n": 2},
    ],
)
async def test_what_the_wire_cannot_express_is_refused_before_sending(
    fields: dict[str, Any],
) -> None:
    upstream = ScriptedUpstream(GeminiDialect())
    async with _provider(upstream) as provider:
        with pytest.raises(UnsupportedParameterError, match=next(iter(fields))):
            await provider.complete(_request(**fields))
    assert not upstream.requests


async def test_parallel_tool_calls_true_is_what_gemini_does_anyway() -> None:
    upstream = ScriptedUpstream(GeminiDialect())
    async with _provider(upstream) as provider:
        await provider.complete(_request(parallel_tool_calls=True))
    assert "parallel_tool_calls" not in upstream.last_request.body


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([{"role": "tool", "tool_call_id": "nope", "content": "x"}], "function's name"),
        ([{"role": "tool", "content": "x"}], "tool_call_id"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            "image_url.url",
        ),
    ],
)
def test_requests_that_cannot_be_mapped_are_refused_clearly(
    messages: list[dict[str, Any]], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        _body(_request(messages=messages))


@pytest.mark.parametrize(
    ("framing", "path", "query"),
    [
        ("sse", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", b"alt=sse"),
        ("json-array", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", b""),
    ],
)
async def test_urls_carry_the_model_and_the_stream_never_the_key(
    framing: str, path: str, query: bytes
) -> None:
    upstream = ScriptedUpstream(GeminiDialect(stream_framing=framing), expected_api_key=KEY)  # type: ignore[arg-type]
    seen: list[httpx.Request] = []

    async def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return await upstream.handle_async_request(request)

    class Spy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await spy(request)

    async with _provider(Spy(), stream_framing=framing) as provider:
        await provider.complete(_request())
        async with provider.complete_stream(_request()) as stream:
            response = await stream.collect()
    assert response.text == "Hello from the scripted upstream."
    assert seen[0].url.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert (seen[1].url.path, seen[1].url.query) == (path, query)
    for request in seen:
        assert request.headers["x-goog-api-key"] == KEY
        assert KEY not in str(request.url)
    assert all(r.authorized for r in upstream.requests)


# -- both framings, one instance each ------------------------------------------------------


def test_the_framing_is_per_instance() -> None:
    sse = GeminiProvider(api_key=KEY)
    array = GeminiProvider(api_key=KEY, stream_framing="json-array")
    assert (sse.framing, array.framing, GeminiProvider.framing) == (SSE, JSON_ARRAY, SSE)
    with pytest.raises(ValueError, match="stream_framing"):
        GeminiProvider(api_key=KEY, stream_framing="ndjson")  # type: ignore[arg-type]


REPLY = CannedReply(
    ("Olá", " 🍋", " world"),
    reasoning=("Think", "ing."),
    tool_calls=(("call_x", "get_weather", '{"city": "Lisbon"}'),),
    finish_reason="tool_calls",
    input_tokens=40,
    output_tokens=30,
    reasoning_tokens=10,
    usage="cumulative",
)


async def _play(
    framing: str, faults: StreamFaults | None = None, reply: CannedReply = REPLY
) -> tuple[list[Any], ChatResponse | None, Exception | None]:
    upstream = ScriptedUpstream(
        GeminiDialect(stream_framing=framing),  # type: ignore[arg-type]
        reply=reply,
        faults=faults,
    )
    events: list[Any] = []
    try:
        async with (
            _provider(upstream, stream_framing=framing) as provider,
            provider.complete_stream(_request()) as stream,
        ):
            async for event in stream:
                events.append(event)
    except ProviderError as exc:
        return events, None, exc
    return events, None, None


@pytest.mark.parametrize("framing", ["sse", "json-array"])
@pytest.mark.parametrize("split", [None, 1, 5])
async def test_both_framings_stream_the_same_answer(framing: str, split: int | None) -> None:
    events, _, error = await _play(framing, StreamFaults(split_bytes=split))
    assert error is None
    text = "".join(e.text for e in events if type(e).__name__ == "TextDelta")
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    meta = events[-1]
    assert (text, reasoning) == ("Olá 🍋 world", "Thinking.")
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        (call_id("resp_scripted", 0, "get_weather"), "get_weather", '{"city": "Lisbon"}')
    ]
    assert (meta.input_tokens, meta.output_tokens, meta.finish_reason) == (40, 30, "tool_calls")


@pytest.mark.parametrize("framing", ["sse", "json-array"])
@pytest.mark.parametrize(
    "faults",
    [
        StreamFaults(omit_terminal=True),
        StreamFaults(error_event_after=1),
        StreamFaults(abort_after_bytes=60, abort_with_error=False),
        StreamFaults(abort_after_bytes=60),
    ],
    ids=["no finish", "error chunk", "clean EOF mid-chunk", "dropped"],
)
async def test_broken_streams_abort_without_a_meta(framing: str, faults: StreamFaults) -> None:
    events, _, error = await _play(framing, faults)
    assert isinstance(error, StreamAbortedError)
    assert not any(type(e).__name__ == "ProvaraMeta" for e in events)


async def test_an_unclosed_array_is_truncated_even_after_a_finish() -> None:
    body = GeminiDialect(stream_framing="json-array").render_stream(REPLY)
    assert body[-1] == b"]"
    transport = httpx.MockTransport(
        lambda _: httpx.Response(
            200, headers={"content-type": "application/json"}, content=b"".join(body[:-1])
        )
    )
    async with _provider(transport, stream_framing="json-array") as provider:
        with pytest.raises(StreamAbortedError, match="truncated"):
            async with provider.complete_stream(_request()) as stream:
                await stream.collect()


def _whole(body: bytes, content_type: str = "application/json") -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda _: httpx.Response(200, headers={"content-type": content_type}, content=body)
    )


BLOCKED = {
    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
    "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "blocked-1",
}


async def test_a_blocked_prompt_is_a_content_filter_finish_not_a_crash() -> None:
    async with _provider(_whole(json.dumps(BLOCKED).encode())) as provider:
        response = await provider.complete(_request())
    assert (response.text, response.finish_reason, response.usage.input_tokens) == (
        "",
        "content_filter",
        9,
    )
    body = f"data: {json.dumps(BLOCKED)}\r\n\r\n".encode()
    async with (
        _provider(_whole(body, "text/event-stream")) as provider,
        provider.complete_stream(_request()) as stream,
    ):
        streamed = await stream.collect()
    assert (streamed.text, streamed.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("OTHER", "stop"),
        (3, "content_filter"),
        ("SOMETHING_NEW", "something_new"),
    ],
)
async def test_finish_reasons(reason: Any, expected: str) -> None:
    answer = {
        "candidates": [
            {"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": reason}
        ]
    }
    async with _provider(_whole(json.dumps(answer).encode())) as provider:
        response = await provider.complete(_request())
    assert response.finish_reason == expected


async def test_every_part_of_the_first_candidate_is_read() -> None:
    answer = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "Hm.", "thought": True},
                        {"text": "One, "},
                        {"text": "two."},
                        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "given"}},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
            },
            {"content": {"parts": [{"text": "another candidate"}]}, "finishReason": "STOP"},
        ],
        "usageMetadata": {
            "promptTokenCount": 5,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 6,
        },
    }
    async with _provider(_whole(json.dumps(answer).encode())) as provider:
        response = await provider.complete(_request())
    assert (response.text, response.reasoning) == ("One, two.", "Hm.")
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("given", "f", '{"a": 1}')
    ]
    assert (response.finish_reason, response.usage.output_tokens) == ("tool_calls", 10)


# -- errors and the key --------------------------------------------------------------------


async def test_the_key_stays_out_of_errors_and_reprs() -> None:
    echo = {
        "error": {"code": 400, "message": f"API key {KEY} not valid", "status": "INVALID_ARGUMENT"}
    }
    transport = httpx.MockTransport(lambda _: httpx.Response(400, json=echo))
    provider = _provider(transport)
    assert KEY not in repr(provider)
    with pytest.raises(BadRequestError) as raised:
        await provider.complete(_request())
    assert KEY not in str(raised.value) and "not valid" in str(raised.value)
    stream_error = f"data: {json.dumps(echo)}\n\n".encode()
    provider = _provider(_whole(stream_error, "text/event-stream"))
    with pytest.raises(StreamAbortedError) as aborted:
        async with provider.complete_stream(_request()) as stream:
            await stream.collect()
    assert KEY not in str(aborted.value) and "not valid" in str(aborted.value)


async def test_an_error_element_inside_a_json_array_aborts() -> None:
    body = b'[{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]},\n{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}\n]'
    async with _provider(_whole(body), stream_framing="json-array") as provider:
        with pytest.raises(StreamAbortedError, match="overloaded"):
            async with provider.complete_stream(_request()) as stream:
                await stream.collect()


async def test_a_200_error_body_is_not_an_answer() -> None:
    body = json.dumps({"error": {"code": 500, "message": "boom", "status": "INTERNAL"}})
    async with _provider(_whole(body.encode())) as provider:
        with pytest.raises(ProviderError, match="boom"):
            await provider.complete(_request())


# -- discovery -----------------------------------------------------------------------------


async def test_discovery_reads_every_page_and_only_generating_models() -> None:
    ids = [f"gemini-test-{i}" for i in range(7)]
    upstream = ScriptedUpstream(GeminiDialect(), models=ids, models_page_size=3)
    async with _provider(upstream) as provider:
        assert await provider.discover_models() == ids
    pages = [r for r in upstream.requests if r.path.endswith("/models")]
    assert len(pages) == 3
    assert "pageToken=page-3" in pages[1].query and "key=" not in pages[1].query


async def test_discovery_of_a_body_with_no_model_list_is_malformed() -> None:
    upstream = ScriptedUpstream(GeminiDialect(), models=[], models_body=b'{"kind": "x"}')
    async with _provider(upstream) as provider:
        with pytest.raises(ProviderError, match="unexpected body shape"):
            await provider.discover_models()


# -- the token counter ---------------------------------------------------------------------


async def test_the_counter_asks_count_tokens_with_the_request_and_reads_the_corpus() -> None:
    transport, seen = _serving(_corpus("count-tokens.pydantic-ai.i0.json"))
    request = _request(
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
        max_tokens=5,
    )
    async with _provider(transport) as provider:
        counter = provider.token_counter
        assert counter is not None and counter.method == "count-endpoint"
        assert await counter.count_input(request) == 12
        assert await counter.count_output("Hello there", request) == 12
        assert await counter.count_output("", request) == 0
    first, second = seen
    assert first.url.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert first.headers["x-goog-api-key"] == KEY and KEY not in str(first.url)
    assert json.loads(first.content) == {
        "generateContentRequest": {
            "model": "models/gemini-2.5-flash",
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "systemInstruction": {"parts": [{"text": "Be terse."}]},
        }
    }
    assert json.loads(second.content) == {
        "contents": [{"role": "model", "parts": [{"text": "Hello there"}]}]
    }
    assert GeminiDialect().validate_count_request(json.loads(first.content)) == []


async def test_missing_usage_is_counted_by_the_endpoint() -> None:
    upstream = ScriptedUpstream(
        GeminiDialect(), reply=CannedReply(("Hello", " there"), usage="null"), validate=True
    )
    request = _request(messages=[{"role": "user", "content": "Count these words, please."}])
    async with _provider(upstream) as provider:
        async with provider.complete_stream(request) as stream:
            response = await stream.collect()
        completed = await provider.complete(request)
    for answer in (response, completed):
        assert answer.meta.input_tokens_method == "count-endpoint"
        assert answer.meta.output_tokens_method == "count-endpoint"
        assert (answer.usage.input_tokens, answer.usage.output_tokens) == (6, 2)
        assert answer.usage.input_tokens_source == "estimated"
    counts = [r for r in upstream.requests if r.path.endswith(":countTokens")]
    assert len(counts) == 4


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b'{"totalTokens": 7}', 7),
        (b'{"promptTokensDetails": []}', 0),  # a zero count is left out
        (b'{"kind": "something else"}', ProviderError),
    ],
)
async def test_count_answers(answer: bytes, expected: int | type[Exception]) -> None:
    async with _provider(_whole(answer)) as provider:
        counter = provider.token_counter
        assert counter is not None
        if isinstance(expected, int):
            assert await counter.count_input(_request()) == expected
        else:
            with pytest.raises(expected):
                await counter.count_input(_request())
