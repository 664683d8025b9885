"""The gemini-generate-content dialect: its readers read back what it renders in both
framings (function calls without ids get the kit's derived ids), the URL carries the model
and the stream, the model list pages, and the API's 400s."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings

from conformance.checks.outcome import replies
from conformance.outcome import expected_from_reply
from provara_kit.providers.gemini_mapping import call_id
from provara_kit.testing import CannedReply, StreamFaults
from provara_kit.testing.dialects.base import MISSING, StreamExpectation
from provara_kit.testing.dialects.gemini import GeminiDialect


def _normalized(reading: StreamExpectation) -> StreamExpectation:
    calls = tuple(
        (id_, name, json.loads(arguments) if arguments.strip() else {})
        for id_, name, arguments in reading.tool_calls
    )
    return replace(reading, tool_calls=calls, id=None)  # type: ignore[arg-type]


VARIANTS = [
    pytest.param(variant, id=f"{framing}: {label}")
    for framing in ("sse", "json-array")
    for label, variant in GeminiDialect(stream_framing=framing).wire_variants().items()
]


@pytest.mark.parametrize("dialect", VARIANTS)
def test_readers_agree_with_the_script_with_derived_ids(dialect: GeminiDialect) -> None:
    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(reply=replies(dialect, "model-x"))
    def agree(reply: CannedReply) -> None:
        expected = expected_from_reply(dialect, reply)
        if not dialect.quirks.call_ids:
            calls = tuple(
                (call_id(reply.id, i, name), name, args)
                for i, (_, name, args) in enumerate(reply.tool_calls)
            )
            expected = replace(expected, tool_calls=calls)
        if dialect.quirks.prompt_blocked:  # nothing of the script is said
            expected = replace(
                expected,
                text="",
                reasoning="",
                tool_calls=(),
                finish_reason="content_filter",
                output_tokens=None,
            )
        streamed = dialect.read_stream(b"".join(dialect.render_stream(reply)))
        completed = dialect.read_completion(dialect.render_completion(reply))
        assert completed is not None
        assert _normalized(streamed) == _normalized(expected)
        assert _normalized(completed) == _normalized(expected)

    agree()


@pytest.mark.parametrize("framing", ["sse", "json-array"])
@pytest.mark.parametrize(
    "faults",
    [StreamFaults(omit_terminal=True), StreamFaults(error_event_after=1)],
    ids=["no finish", "error chunk"],
)
def test_broken_streams_read_as_not_clean(framing: str, faults: StreamFaults) -> None:
    dialect = GeminiDialect(stream_framing=framing)  # type: ignore[arg-type]
    body = b"".join(dialect.render_stream(CannedReply(("a", "b")), faults))
    assert dialect.read_stream(body).clean is False
    assert dialect.read_stream(b"".join(dialect.render_stream(CannedReply(("a",))))).clean


def test_an_array_cut_before_its_bracket_is_not_clean() -> None:
    dialect = GeminiDialect(stream_framing="json-array")
    body = b"".join(dialect.render_stream(CannedReply(("a",))))
    assert body.endswith(b"]")
    assert dialect.read_stream(body[:-1]).clean is False


def test_the_url_carries_the_model_and_the_stream() -> None:
    dialect = GeminiDialect()
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert dialect.is_completion_path(path)
    assert dialect.url_fields(path, "alt=sse") == {
        "model": "gemini-2.5-flash",
        "stream": True,
        "alt": "sse",
    }
    view = {"model": "m", "stream": True}
    assert dialect.stream_media_type(view).startswith("application/json")
    assert dialect.stream_media_type({**view, "alt": "sse"}) == "text/event-stream"
    assert dialect.completion_path_for("m", stream=False) == "/models/m:generateContent"
    assert not dialect.is_completion_path("/v1beta/openai/chat/completions")
    assert dialect.is_count_path("/v1beta/models/m:countTokens")


def test_model_pages_and_the_embedder_on_the_first() -> None:
    dialect = GeminiDialect()
    first = json.loads(dialect.render_models_page(["a", "b", "c"], {"pageSize": "2"}))
    names = [m["name"] for m in first["models"]]
    assert names == ["models/a", "models/gemini-embedding-001", "models/b"]
    assert first["nextPageToken"] == "page-2"
    second = json.loads(dialect.render_models_page(["a", "b", "c"], {"pageToken": "page-2"}))
    assert [m["name"] for m in second["models"]] == ["models/c"]
    assert "nextPageToken" not in second


def test_read_param_in_openai_terms() -> None:
    dialect = GeminiDialect()
    body = {
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {"stopSequences": ["X"], "maxOutputTokens": 5, "topP": 0},
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "model": "m",
    }
    assert dialect.read_param(body, "system") == "Be terse."
    assert dialect.read_param(body, "stop") == ["X"]
    assert dialect.read_param(body, "max_tokens") == 5
    assert dialect.read_param(body, "top_p") == 0
    assert dialect.read_param(body, "tool_choice") == "required"
    assert dialect.read_param(body, "seed") is MISSING
    assert dialect.read_param(body, "model") == "m"


@pytest.mark.parametrize(
    ("contents", "words"),
    [
        ([], "contents is not specified"),
        ([{"role": "assistant", "parts": [{"text": "x"}]}], "valid role"),
        ([{"role": "user", "parts": []}], "must not be empty"),
        ([{"role": "user", "parts": [{}]}], "required oneof field 'data'"),
        (
            [
                {"role": "user", "parts": [{"text": "x"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}] * 2},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
            ],
            "number of function response parts",
        ),
        ([{"role": "model", "parts": [{"functionCall": {"args": {}}}]}], "Name cannot be empty"),
    ],
)
def test_what_the_api_answers_400_to(contents: list[object], words: str) -> None:
    problems = GeminiDialect().validate_request({"contents": contents})
    assert any(words in problem for problem in problems), problems
