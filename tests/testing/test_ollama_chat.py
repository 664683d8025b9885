"""The ollama-chat dialect: what it renders, and its reference readers on every variant."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings

from conformance.checks.outcome import replies
from provara_kit.providers.ollama import tool_call_id
from provara_kit.testing import DIALECTS, CannedReply, StreamFaults
from provara_kit.testing.conversation import Image, ToolCallRef
from provara_kit.testing.dialects.base import MISSING, StreamExpectation, WireDialect
from provara_kit.testing.dialects.ollama_chat import CREATED_AT, OllamaChatDialect

from .conftest import corpus_body

DIALECT = OllamaChatDialect()
VARIANTS = DIALECT.wire_variants()
REPLY = CannedReply(
    ("Olá", " 🍋"),
    reasoning=("Think",),
    tool_calls=(("call_a", "f", '{"x": [1, 2]}'), ("call_b", "g", "{}")),
    finish_reason="tool_calls",
    input_tokens=30,
    output_tokens=7,
)


def _read(dialect: WireDialect, body: bytes) -> StreamExpectation:
    reading = dialect.read_stream(body)
    assert reading is not None
    return reading


def _lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.split(b"\n") if line.strip()]


def test_it_is_registered_under_the_adapters_wire() -> None:
    assert isinstance(DIALECTS["ollama-chat"], OllamaChatDialect)
    assert DIALECT.stream_media_type({}) == "application/x-ndjson"
    assert DIALECT.is_stream_request({}) and not DIALECT.is_stream_request({"stream": False})


def test_a_stream_is_lines_ending_at_the_done_line() -> None:
    lines = _lines(b"".join(DIALECT.render_stream(REPLY)))
    assert all(item["done"] is False for item in lines[:-1])
    last = lines[-1]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert (last["prompt_eval_count"], last["eval_count"]) == (30, 7)
    calls = [c for item in lines for c in item["message"].get("tool_calls", ())]
    assert calls == [
        {"function": {"name": "f", "arguments": {"x": [1, 2]}}},
        {"function": {"name": "g", "arguments": {}}},
    ]


def test_the_reader_derives_the_ids_the_wire_leaves_out() -> None:
    reading = _read(DIALECT, b"".join(DIALECT.render_stream(REPLY)))
    assert reading.clean and reading.text == "Olá 🍋" and reading.reasoning == "Think"
    assert reading.tool_calls == (
        (tool_call_id(CREATED_AT, 0, "f"), "f", '{"x": [1, 2]}'),
        (tool_call_id(CREATED_AT, 1, "g"), "g", "{}"),
    )
    assert reading.finish_reason == "tool_calls"
    assert reading.model == "scripted-model" and reading.id is None


def test_newer_servers_send_the_ids() -> None:
    dialect = VARIANTS["newer servers: tool call ids, one line per call"]
    body = b"".join(dialect.render_stream(REPLY))
    assert [c for item in _lines(body) for c in item["message"].get("tool_calls", ())] == [
        {"id": "call_a", "function": {"index": 0, "name": "f", "arguments": {"x": [1, 2]}}},
        {"id": "call_b", "function": {"index": 1, "name": "g", "arguments": {}}},
    ]
    assert [c[0] for c in _read(dialect, body).tool_calls] == ["call_a", "call_b"]


def test_a_cached_prompt_has_no_input_count() -> None:
    dialect = VARIANTS["a cached prompt: no prompt_eval_count"]
    body = b"".join(dialect.render_stream(REPLY))
    assert "prompt_eval_count" not in _lines(body)[-1]
    reading = _read(dialect, body)
    assert (reading.input_tokens, reading.output_tokens) == (None, 7)
    whole = dialect.read_completion(dialect.render_completion(REPLY))
    assert whole is not None and (whole.input_tokens, whole.output_tokens) == (None, 7)


@pytest.mark.parametrize("label", sorted(VARIANTS))
def test_every_variant_reads_the_same_streamed_and_whole(label: str) -> None:
    dialect = VARIANTS[label]
    cached = label.startswith("a cached prompt")

    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(reply=replies(dialect, "model-x"))
    def agree(reply: CannedReply) -> None:
        streamed = _read(dialect, b"".join(dialect.render_stream(reply)))
        whole = dialect.read_completion(dialect.render_completion(reply))
        assert whole is not None
        assert (streamed.text, streamed.reasoning) == (reply.text, reply.reasoning_text)
        assert streamed.finish_reason == dialect.expected_finish_reason(reply)
        assert [c[1:] for c in streamed.tool_calls] == [
            (name, json.dumps(json.loads(args))) for _, name, args in reply.tool_calls
        ]
        assert whole.tool_calls == streamed.tool_calls
        reported = reply.reported_tokens()
        if cached:
            reported = (None, reported[1])
        for reading in (streamed, whole):
            assert (reading.input_tokens, reading.output_tokens) == reported

    agree()


def test_faults_keep_alives_error_lines_and_no_done_line() -> None:
    reply = CannedReply(("a", "b"))
    empty = b"".join(DIALECT.render_stream(reply, StreamFaults(empty_chunks=True)))
    assert b"\n\n" in empty and _read(DIALECT, empty).text == "ab"
    failed = b"".join(DIALECT.render_stream(reply, StreamFaults(error_event_after=1)))
    assert _lines(failed)[-1] == {"error": "an error was encountered while running the model"}
    assert not _read(DIALECT, failed).clean
    cut = b"".join(DIALECT.render_stream(reply, StreamFaults(omit_terminal=True)))
    assert not _read(DIALECT, cut).clean
    assert not _read(DIALECT, cut + b'{"done": tr').clean


def test_every_framing_reads_the_same() -> None:
    plain = _read(DIALECT, b"".join(DIALECT.render_stream(REPLY)))
    for framing in DIALECT.framings():
        framed = framing.apply(DIALECT.stream_frames(REPLY, StreamFaults()))
        assert _read(DIALECT, b"".join(f.data for f in framed)) == plain, framing.label


def test_the_reader_agrees_with_the_recordings() -> None:
    body = corpus_body("ollama/extracted/chat-stream-ndjson-chunked.raw-http.i0.dechunked.ndjson")
    reading = _read(DIALECT, body)
    assert reading.clean and reading.text == "Okay, here we go!\n\n1, 2, 3, 4, 5\n"
    assert (reading.input_tokens, reading.output_tokens, reading.finish_reason) == (16, 22, "stop")
    truncated = _read(DIALECT, body[:-40])
    assert not truncated.clean


def test_errors_and_the_model_list() -> None:
    assert json.loads(DIALECT.render_error(404, 'model "x" not found')) == {
        "error": 'model "x" not found'
    }
    listing = json.loads(DIALECT.render_models(["gemma3:1b", "qwen3"]))
    assert [(m["name"], m["model"]) for m in listing["models"]] == [
        ("gemma3:1b", "gemma3:1b"),
        ("qwen3", "qwen3"),
    ]


def test_requests_read_back_in_openai_terms() -> None:
    body = {
        "model": "m",
        "stream": False,
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "Look", "images": ["iVBORw0KGgoAAA"]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}}],
            },
            {"role": "tool", "content": "42", "tool_call_id": "c1", "tool_name": "f"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "options": {"num_predict": 9, "stop": ["END"], "temperature": 0.5},
        "format": "json",
    }
    assert DIALECT.read_param(body, "max_tokens") == 9
    assert DIALECT.read_param(body, "temperature") == 0.5
    assert DIALECT.read_param(body, "seed") is MISSING
    assert DIALECT.read_param(body, "response_format") == {"type": "json_object"}
    assert DIALECT.read_param(body, "system") == "S"
    conversation = DIALECT.read_conversation(body)
    assert conversation.system == ("S",)
    user, assistant, tool = conversation.turns
    assert user.parts == ("Look", Image("base64", "iVBORw0KGgoAAA", "image/png"))
    assert assistant.tool_calls == (ToolCallRef("c1", "f", {"a": 1}),)
    assert tool.tool_call_id == "c1"
    assert (conversation.tool_choice, conversation.max_tokens, conversation.stop) == (
        "auto",
        9,
        ("END",),
    )
    assert DIALECT.validate_request(body) == []


def test_what_ollama_refuses() -> None:
    problems = DIALECT.validate_request(
        {
            "messages": [
                {"role": "developer", "content": "x"},
                {"role": "user", "content": "x", "images": ["https://x.test/a.png"]},
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}],
                },
            ],
            "format": "yaml",
        }
    )
    assert len(problems) == 5
    assert problems[0] == "model is required"
