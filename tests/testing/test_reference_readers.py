"""The dialects' reference readers read back exactly what the dialects render.

The conformance suite holds adapters against these readers, so a reader that misreads a
dimension (reasoning, a fragmented tool call, cached tokens, a wire finish reason) would
pass a broken adapter or fail a good one. Generated replies cover every dimension.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from conformance.checks.outcome import replies
from conformance.outcome import expected_from_reply
from provara_kit.testing import DIALECTS, CannedReply, StreamFaults, WireDialect
from provara_kit.testing.dialects.base import StreamExpectation
from provara_kit.testing.framing import SSE_FRAMINGS


def _normalized(reading: StreamExpectation) -> StreamExpectation:
    """No arguments and ``{}`` are the same call; JSON spacing is not meaningful."""
    calls = tuple(
        (id_, name, json.loads(arguments) if arguments.strip() else {})
        for id_, name, arguments in reading.tool_calls
    )
    return StreamExpectation(
        reading.clean,
        reading.text,
        reading.input_tokens,
        reading.output_tokens,
        reading.finish_reason,
        reasoning=reading.reasoning,
        tool_calls=calls,  # type: ignore[arg-type]
        model=reading.model,
    )


# Most Ollama servers send tool calls without the script's ids (the reader derives them),
# and a cached prompt's count not at all: tests/testing/test_ollama_chat.py reads those.
_NOT_THE_SCRIPT = {
    ("ollama-chat", "as Ollama sends it"),
    ("ollama-chat", "a cached prompt: no prompt_eval_count"),
    # Gemini's function calls seldom carry ids either: tests/testing/test_gemini_dialect.py.
    ("gemini-generate-content", "as Google sends it"),
    ("gemini-generate-content", "integer enums (enum-encoding=int), usage on every chunk"),
    ("gemini-generate-content", "several parts per chunk"),
    ("gemini-generate-content", "the prompt blocked before any candidate"),
}

VARIANTS = [
    pytest.param(variant, id=f"{name}: {label}")
    for name in sorted(DIALECTS)
    for label, variant in DIALECTS[name].wire_variants().items()
    if (name, label) not in _NOT_THE_SCRIPT
]


@pytest.mark.parametrize("dialect", VARIANTS)
def test_readers_agree_with_the_script(dialect: WireDialect) -> None:
    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(reply=replies(dialect, "model-x"))
    def agree(reply: CannedReply) -> None:
        expected = _normalized(expected_from_reply(dialect, reply))
        streamed = dialect.read_stream(b"".join(dialect.render_stream(reply)))
        completed = dialect.read_completion(dialect.render_completion(reply))
        assert streamed is not None and completed is not None
        assert _normalized(streamed) == expected
        assert _normalized(completed) == expected

    agree()


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_every_framing_reads_the_same(name: str) -> None:
    dialect = DIALECTS[name]
    reply = CannedReply(
        ("Olá", " 🍋\n", "x"),
        tool_calls=(("call_1", "f", '{"a": [1, 2], "b": "c d"}'),),
        argument_pieces=3,
    )
    plain = dialect.read_stream(b"".join(dialect.render_stream(reply)))
    for framing in dialect.framings():
        framed = framing.apply(dialect.stream_frames(reply, StreamFaults()))
        body = b"".join(frame.data for frame in framed)
        assert dialect.read_stream(body) == plain, framing.label


def test_the_openai_variants_differ_where_they_say() -> None:
    variants = DIALECTS["openai-chat"].wire_variants()
    reply = CannedReply(("Hi",), reasoning=("r",), tool_calls=(("c1", "f", '{"a": 1}'),))
    bodies = {
        label: b"".join(dialect.render_stream(reply)).decode()
        for label, dialect in variants.items()
    }
    assert len(set(bodies.values())) == len(bodies)
    openrouter, groq, mistral, perplexity, deepseek, parts, two = list(bodies.values())[1:]
    assert '"reasoning":"r"' in openrouter and openrouter.count('"id":"c1"') == 2
    assert '"x_groq"' in groq and '"usage":{' not in groq.replace('"req_scripted","usage":{', "")
    assert '"type":"thinking"' in mistral and '"index":0,"id"' not in mistral
    assert "[DONE]" not in perplexity
    assert '"reasoning_content":null' in deepseek
    assert '"content":[{"type":"text","text":"H"},{"type":"text","text":"i"}]' in parts
    assert '"arguments":{"a":1}' in parts
    assert '"index":0' not in parts.split('"tool_calls"')[0]
    assert '{"index":1,"delta":{"content":"(another answer)"}' in two


def test_a_framing_changes_the_bytes_it_promises() -> None:
    dialect = DIALECTS["openai-chat"]
    frames = dialect.stream_frames(CannedReply(("Hi",)), StreamFaults())
    body = b"".join(f.data for f in SSE_FRAMINGS[-1].apply(frames))
    assert body.startswith("\ufeff".encode())
    assert b"data:{\r\ndata:" in body and b"data:[DONE]\r\n" in body
    assert body.count(b"\n") == body.count(b"\r\n") and b"\r\nid:" in body
    assert b"retry:3000" in body
    assert b": a comment inside the event" in body
