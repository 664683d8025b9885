"""The Ollama adapter: request mapping, NDJSON streams, errors, keyless use, real recordings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import pytest

from provara_kit.errors import (
    AuthenticationError,
    MalformedResponseError,
    NotFoundError,
    StreamAbortedError,
    UnsupportedParameterError,
    UpstreamServerError,
)
from provara_kit.providers.ollama import DEFAULT_BASE_URL, OllamaProvider, tool_call_id
from provara_kit.registry import default_registry
from provara_kit.types import (
    ChatRequest,
    ProvaraMeta,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from tests.wire_corpus import corpus_dir, read_recording

KEY = "ollama-cloud-TESTKEY-0123456789abcdef"
MODEL = "gemma3:1b"
CREATED = "2025-08-20T13:48:24.316155Z"

Handler = Callable[[httpx.Request], httpx.Response]


# -- helpers ------------------------------------------------------------------------------


class Pieces(httpx.AsyncByteStream):
    """A body delivered in the given pieces."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self.pieces = list(pieces)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


class Recorder:
    """Answers every request with ``reply`` and keeps the requests."""

    def __init__(self, reply: Handler) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    @property
    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


def line(content: str = "", **fields: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, **fields.pop("message", {})}
    return {"model": MODEL, "created_at": CREATED, "message": message, "done": False, **fields}


def final(reason: str = "stop", **counts: Any) -> dict[str, Any]:
    counts = counts or {"prompt_eval_count": 16, "eval_count": 22}
    return line(done=True, done_reason=reason, total_duration=171946792, **counts)


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in lines)


def stream_of(*pieces: bytes, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/x-ndjson"}
        return httpx.Response(status, headers=headers, stream=Pieces(pieces))

    return handler


def json_reply(body: Any, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return handler


def provider(handler: Handler, **kwargs: Any) -> OllamaProvider:
    kwargs.setdefault("stream_timeout", 10.0)
    return OllamaProvider(transport=httpx.MockTransport(handler), **kwargs)


def request(**fields: Any) -> ChatRequest:
    data: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    data.update(fields)
    return ChatRequest.model_validate(data)


async def drain(adapter: OllamaProvider, chat: ChatRequest | None = None) -> list[StreamEvent]:
    async with adapter.complete_stream(chat or request()) as stream:
        return [event async for event in stream]


def meta_of(events: list[StreamEvent]) -> ProvaraMeta:
    metas = [e for e in events if isinstance(e, ProvaraMeta)]
    assert len(metas) == 1 and events[-1] is metas[0]
    return metas[0]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- requests -----------------------------------------------------------------------------


async def test_keyless_by_default_no_authorization_header() -> None:
    recorder = Recorder(json_reply(final() | {"message": {"role": "assistant", "content": "ok"}}))
    async with provider(recorder) as adapter:
        await adapter.complete(request())
    sent = recorder.requests[-1]
    assert "authorization" not in sent.headers
    assert str(sent.url) == f"{DEFAULT_BASE_URL}/api/chat"
    assert "<missing>" in repr(adapter)


async def test_a_configured_key_is_sent_as_bearer_and_never_shown() -> None:
    recorder = Recorder(json_reply({"error": f"unauthorized {KEY}"}, status=401))
    async with provider(recorder, api_key=KEY, base_url="https://ollama.com") as adapter:
        with pytest.raises(AuthenticationError) as caught:
            await adapter.complete(request())
    assert recorder.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    assert str(recorder.requests[-1].url) == "https://ollama.com/api/chat"
    assert KEY not in str(caught.value) and KEY not in repr(adapter)


async def test_payload_maps_sampling_limits_format_and_think() -> None:
    recorder = Recorder(json_reply(final() | {"message": {"role": "assistant", "content": "ok"}}))
    chat = request(
        messages=[
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": "Hi"},
        ],
        max_tokens=50,
        temperature=0.0,
        stop="END",
        top_p=0.5,
        top_k=3,
        seed=0,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        response_format={"type": "json_object"},
        reasoning_effort="high",
        keep_alive="10m",
    )
    async with provider(recorder) as adapter:
        await adapter.complete(chat)
    body = recorder.payload
    assert body["stream"] is False
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert body["options"] == {
        "num_predict": 50,
        "temperature": 0.0,
        "stop": ["END"],
        "top_p": 0.5,
        "top_k": 3,
        "seed": 0,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
    }
    assert body["format"] == "json"
    assert body["think"] == "high"
    assert "keep_alive" not in body  # the operator's setting, on the server


async def test_json_schema_format_and_max_completion_tokens() -> None:
    recorder = Recorder(json_reply(final() | {"message": {"role": "assistant", "content": "{}"}}))
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    chat = request(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        max_completion_tokens=7,
        think=False,
    )
    async with provider(recorder) as adapter:
        await adapter.complete(chat)
    assert recorder.payload["format"] == schema
    assert recorder.payload["options"] == {"num_predict": 7}
    assert recorder.payload["think"] is False


async def test_stream_flag_is_always_explicit() -> None:
    recorder = Recorder(stream_of(ndjson(line("Hi"), final())))
    async with provider(recorder) as adapter:
        await drain(adapter, request(stream=False))
    assert recorder.payload["stream"] is True


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"user": "u-1"}, "user"),
        ({"metadata": {"a": "b"}}, "metadata"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        (
            {"tool_choice": "required", "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tool_choice",
        ),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ],
)
async def test_what_the_wire_cannot_express_is_refused(fields: dict[str, Any], param: str) -> None:
    recorder = Recorder(json_reply({}))
    async with provider(recorder) as adapter:
        with pytest.raises(UnsupportedParameterError, match=param):
            await adapter.complete(request(**fields))
    assert recorder.requests == []


async def test_tool_choice_auto_and_parallel_calls_pass_as_ollama_does_both() -> None:
    recorder = Recorder(json_reply(final() | {"message": {"role": "assistant", "content": ""}}))
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    async with provider(recorder) as adapter:
        await adapter.complete(request(tools=[tool], tool_choice="auto", parallel_tool_calls=True))
    body = recorder.payload
    assert body["tools"] == [tool]
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


async def test_tool_calls_results_and_images_map_to_the_wire() -> None:
    recorder = Recorder(json_reply(final() | {"message": {"role": "assistant", "content": "ok"}}))
    chat = request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"q": "ü"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        ]
    )
    async with provider(recorder) as adapter:
        await adapter.complete(chat)
    user, assistant, tool = recorder.payload["messages"]
    assert user == {"role": "user", "content": "What is this?", "images": ["iVBORw0K"]}
    assert assistant["tool_calls"] == [
        {"id": "call_1", "function": {"name": "look", "arguments": {"q": "ü"}}}
    ]
    assert tool == {
        "role": "tool",
        "content": "a cat",
        "tool_call_id": "call_1",
        "tool_name": "look",
    }


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}], "inline only"),
        ([{"type": "image_url", "image_url": {}}], "url"),
        ([{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}], "base64"),
        ([{"type": "input_audio", "input_audio": {}}], "input_audio"),
    ],
)
async def test_content_the_wire_cannot_carry_is_a_clear_error(content: Any, match: str) -> None:
    recorder = Recorder(json_reply({}))
    async with provider(recorder) as adapter:
        with pytest.raises(ValueError, match=match):
            await adapter.complete(request(messages=[{"role": "user", "content": content}]))
        with pytest.raises(ValueError, match=match):
            adapter.complete_stream(request(messages=[{"role": "user", "content": content}]))
    assert recorder.requests == []


# -- whole answers ------------------------------------------------------------------------


async def test_complete_reads_text_thinking_tool_calls_and_counts() -> None:
    body = final() | {
        "message": {
            "role": "assistant",
            "content": "",
            "thinking": "Let me look.",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Lisbon"}}},
                {"id": "call_given", "function": {"name": "get_time", "arguments": {}}},
            ],
        }
    }
    async with provider(json_reply(body)) as adapter:
        response = await adapter.complete(request())
    assert response.reasoning == "Let me look."
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        (tool_call_id(CREATED, 0, "get_weather"), "get_weather", '{"city": "Lisbon"}'),
        ("call_given", "get_time", "{}"),
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (16, 22)
    assert response.meta.extra == {}  # the model it named is the one asked for


def test_derived_ids_are_stable_and_distinct() -> None:
    first = tool_call_id(CREATED, 0, "f")
    assert first == tool_call_id(CREATED, 0, "f")
    assert first.startswith("call_")
    assert len({first, tool_call_id(CREATED, 1, "f"), tool_call_id("other", 0, "f")}) == 3


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "stop"), ("length", "length"), ("load", "stop"), ("unload", "stop"), ("new", "new")],
)
async def test_done_reasons_are_normalized(reason: str, expected: str) -> None:
    body = final(reason) | {"message": {"role": "assistant", "content": "x"}}
    async with provider(json_reply(body)) as adapter:
        assert (await adapter.complete(request())).finish_reason == expected


async def test_a_cached_prompt_count_is_missing_not_zero() -> None:
    body = final(eval_count=3) | {"message": {"role": "assistant", "content": "Hello there"}}
    async with provider(json_reply(body)) as adapter:
        usage = (await adapter.complete(request())).usage
    assert usage.input_tokens_source == "estimated" and usage.input_tokens == 1
    assert (usage.output_tokens, usage.output_tokens_source) == (3, "upstream")


async def test_error_statuses_carry_ollamas_message() -> None:
    message = 'model "nope" not found, try pulling it first'
    async with provider(json_reply({"error": message}, status=404)) as adapter:
        with pytest.raises(NotFoundError, match="try pulling it first"):
            await adapter.complete(request())
        with pytest.raises(NotFoundError, match="try pulling it first"):
            await drain(adapter)
    async with provider(json_reply({"error": "boom"}, status=500)) as adapter:
        with pytest.raises(UpstreamServerError, match="boom"):
            await adapter.complete(request())


async def test_an_error_object_with_status_200_is_malformed() -> None:
    async with provider(json_reply({"error": "something went wrong"})) as adapter:
        with pytest.raises(MalformedResponseError, match="something went wrong"):
            await adapter.complete(request())


# -- streams ------------------------------------------------------------------------------


async def test_stream_reads_text_thinking_calls_and_the_done_line() -> None:
    body = ndjson(
        line(message={"thinking": "Hmm."}),
        line("Hel"),
        line(""),
        line("lo"),
        line(message={"tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}),
        final(),
    )
    async with provider(stream_of(body)) as adapter:
        events = await drain(adapter)
    assert [type(e) for e in events if not isinstance(e, ProvaraMeta)] == [
        ReasoningDelta,
        TextDelta,
        TextDelta,
        ToolCallDelta,
    ]
    call = next(e for e in events if isinstance(e, ToolCallDelta))
    assert (call.index, call.id, call.name, call.arguments) == (
        0,
        tool_call_id(CREATED, 0, "f"),
        "f",
        '{"a": 1}',
    )
    meta = meta_of(events)
    assert text_of(events) == "Hello"
    assert (meta.input_tokens, meta.output_tokens, meta.finish_reason) == (16, 22, "tool_calls")


async def test_keep_alive_blank_lines_and_crlf_carry_nothing() -> None:
    body = b"\n" + ndjson(line("a")).replace(b"\n", b"\r\n") + b"\n\n" + ndjson(final())
    async with provider(stream_of(body)) as adapter:
        events = await drain(adapter)
    assert text_of(events) == "a" and meta_of(events).output_tokens == 22


async def test_a_last_line_without_its_newline_still_ends_the_stream() -> None:
    body = ndjson(line("a")) + json.dumps(final()).encode()
    async with provider(stream_of(body)) as adapter:
        events = await drain(adapter)
    assert meta_of(events).finish_reason == "stop"


async def test_lines_split_anywhere_read_the_same() -> None:
    body = ndjson(line("Olá 🍋"), line(" world"), final("length"))
    for size in (1, 2, 7):
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        async with provider(stream_of(*pieces)) as adapter:
            events = await drain(adapter)
        assert text_of(events) == "Olá 🍋 world" and meta_of(events).finish_reason == "length"


@pytest.mark.parametrize(
    "body",
    [
        ndjson(line("a"), line("b")),  # no done line: the server went away
        ndjson(line("a")) + json.dumps(final()).encode()[:40],  # cut inside the done line
        ndjson(line("a")) + b'{"model":"gemma3:1b","message":{"content":"b',  # cut mid-line
    ],
    ids=["no done line", "cut inside the done line", "cut mid-line"],
)
async def test_a_body_that_ends_without_the_done_line_is_an_abort(body: bytes) -> None:
    events: list[StreamEvent] = []
    async with provider(stream_of(body)) as adapter:
        with pytest.raises(StreamAbortedError):
            async with adapter.complete_stream(request()) as stream:
                async for event in stream:
                    events.append(event)
    assert not any(isinstance(e, ProvaraMeta) for e in events)


async def test_an_error_line_aborts_with_its_message() -> None:
    body = ndjson(line("a")) + b'{"error":"an error was encountered while running the model"}\n'
    async with provider(stream_of(body), api_key=KEY) as adapter:
        with pytest.raises(StreamAbortedError, match="while running the model"):
            await drain(adapter)


async def test_nothing_after_the_done_line_is_read() -> None:
    body = ndjson(line("a"), final()) + b"not json at all\n"
    async with provider(stream_of(body)) as adapter:
        events = await drain(adapter)
    assert text_of(events) == "a"


# -- discovery and the registry -----------------------------------------------------------


async def test_models_come_from_api_tags() -> None:
    tags = {"models": [{"name": "gemma3:1b", "model": "gemma3:1b"}, {"name": "qwen3:8b"}, {}]}
    recorder = Recorder(json_reply(tags))
    async with provider(recorder) as adapter:
        assert await adapter.discover_models() == ["gemma3:1b", "qwen3:8b"]
    assert recorder.requests[-1].url.path == "/api/tags"
    async with provider(json_reply({"error": "unauthorized"})) as adapter:
        with pytest.raises(MalformedResponseError, match="unauthorized"):
            await adapter.discover_models()
    async with provider(json_reply([1, 2])) as adapter:
        with pytest.raises(MalformedResponseError, match="no model list"):
            await adapter.discover_models()


async def test_registered_keyless_and_refreshed_without_a_key() -> None:
    registry = default_registry(plugins=False)
    spec = registry.get("ollama")
    assert (spec.api_key_env, spec.base_url_env, spec.api_key_required) == (
        "OLLAMA_API_KEY",
        "OLLAMA_BASE_URL",
        False,
    )
    built = registry.create("ollama", environ={"OLLAMA_BASE_URL": "http://gpu-box:11434"})
    assert isinstance(built, OllamaProvider) and built.base_url == "http://gpu-box:11434"
    await built.aclose()
    tags = {"models": [{"name": "gemma3:1b", "model": "gemma3:1b"}]}
    adapter = provider(json_reply(tags))
    report = await registry.refresh_models({"ollama": adapter})
    assert report.results["ollama"].models == ("gemma3:1b",)
    await adapter.aclose()


# -- real recordings ----------------------------------------------------------------------

RECORDED_STREAMS = {
    "chat-stream-2024.openllmetry.i0.ndjson": (
        "Why did the OpenTelemetry agent go to therapy?\n\nBecause it was feeling traced out "
        "and needed some instrumentation in its life!\n\n(Sorry, I know it's a bit of a "
        "stretch, but I hope it brought a smile to your face!)",
        (17, 50),
        "stop",
        "llama3",
    ),
    "chat-stream-done-reason-length-utf8.raw-http.i0.http": (
        "Hello there! I\u2019m doing well, thanks for asking. As an AI, I don\u2019t really *feel* in "
        "the same way humans do, but I\u2019m functioning perfectly and ready to help you with "
        "whatever you need. 😊 ",
        (15, 50),
        "length",
        "gemma3:1b",
    ),
    "chat-stream-ndjson-chunked.raw-http.i0.http": (
        "Okay, here we go!\n\n1, 2, 3, 4, 5\n",
        (16, 22),
        "stop",
        "gemma3:1b",
    ),
    "pull-stream-then-chat-emoji.raw-http.i1.http": (
        "Hello there! How can I help you today? 😊",
        (11, 12),
        "stop",
        "gemma3:1b",
    ),
}


def _recorded_body(name: str) -> bytes:
    path = corpus_dir() / "ollama" / "extracted" / name
    if path.suffix == ".http":
        recording = read_recording(path)
        assert recording.content_type == "application/x-ndjson"
        return recording.body
    return path.read_bytes()


@pytest.mark.parametrize("name", sorted(RECORDED_STREAMS))
@pytest.mark.parametrize("size", [None, 5])
async def test_recorded_streams_read_exactly(name: str, size: int | None) -> None:
    text, (input_tokens, output_tokens), reason, model = RECORDED_STREAMS[name]
    body = _recorded_body(name)
    pieces = [body] if size is None else [body[i : i + size] for i in range(0, len(body), size)]
    async with provider(stream_of(*pieces)) as adapter:
        events = await drain(adapter, request(model=model))
    meta = meta_of(events)
    assert text_of(events) == text
    assert all(e.text for e in events if isinstance(e, TextDelta))
    assert (meta.input_tokens, meta.output_tokens) == (input_tokens, output_tokens)
    assert (meta.input_tokens_source, meta.output_tokens_source) == ("upstream", "upstream")
    assert meta.finish_reason == reason


@pytest.mark.parametrize("name", sorted(RECORDED_STREAMS))
async def test_recorded_streams_cut_before_their_last_line_abort(name: str) -> None:
    body = _recorded_body(name)
    cut = body.rstrip(b"\n").rfind(b"\n") + 1  # the start of the done line
    async with provider(stream_of(body[: cut + 30])) as adapter:
        with pytest.raises(StreamAbortedError):
            await drain(adapter)


async def test_recorded_whole_answer_reads_exactly() -> None:
    path = corpus_dir() / "ollama" / "extracted" / "chat-nonstream.openllmetry.i0.json"
    body = json.loads(path.read_bytes())
    async with provider(json_reply(body)) as adapter:
        response = await adapter.complete(request(model="llama3"))
    assert response.text.startswith("A joke about OpenTelemetry!\n\nWhy did the OpenTelemetry")
    assert response.text.endswith("I hope it brings a smile to your face!)")
    assert len(response.text) == 256
    assert (response.usage.input_tokens, response.usage.output_tokens) == (17, 66)
    assert response.finish_reason == "stop"


def test_non_chat_recordings_are_not_replayed_as_chat() -> None:
    from conformance.target import ConformanceTarget

    corpus_dir()
    names = [f.name for f in ConformanceTarget.from_registry("ollama").recorded_fixtures()]
    assert sorted(names) == sorted([*RECORDED_STREAMS, "chat-nonstream.openllmetry.i0.json"])
