"""Tests for provara_kit.framings: NDJSON and streamed JSON-array decoders, properties under
any re-chunking and any cut, hypothesis fuzzing, and the testing variants of each framing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provara_kit.framings import JSON_ARRAY, NDJSON, SSE, FrameDecoder, JSONArrayDecoder
from provara_kit.framings.ndjson import NDJSONDecoder
from provara_kit.sse import SSEDecoder
from provara_kit.testing.dialects.base import Frame
from provara_kit.testing.framing import JSON_ARRAY_FRAMINGS, NDJSON_FRAMINGS

_SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
    | st.sampled_from(['"', "\\", "]", "[", "{", "}", ",", '\\"]', "é🙂", "\u2028"])
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
_objects = st.dictionaries(st.text(max_size=6), _values, min_size=1, max_size=4)


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in pairwise([0, *points, len(data)])]


def decode(decoder: FrameDecoder[Any], chunks: Sequence[bytes]) -> list[Any]:
    frames: list[Any] = []
    for chunk in chunks:
        frames += decoder.feed(chunk)
    frames += decoder.end()
    return frames


def test_framings_are_named() -> None:
    assert (SSE.name, NDJSON.name, JSON_ARRAY.name) == ("sse", "ndjson", "json-array")
    assert isinstance(SSE.decoder(), SSEDecoder)
    assert isinstance(NDJSON.decoder(), NDJSONDecoder)
    assert NDJSON.decoder() is not NDJSON.decoder()  # one decoder per stream
    assert repr(JSON_ARRAY) == "Framing('json-array')"


# ----------------------------------------------------------------------------- NDJSON


def test_ndjson_lines_crlf_blank_lines_and_bom() -> None:
    body = '\ufeff{"a":1}\r\n\n  \n{"b":"é"}\n'.encode()
    decoder = NDJSONDecoder()
    assert decode(decoder, [body]) == ['{"a":1}', '{"b":"é"}']
    assert not decoder.truncated
    assert decoder.blank_lines == 2


def test_ndjson_character_split_across_reads() -> None:
    body = '{"t":"🙂"}\n'.encode()
    assert decode(NDJSONDecoder(), [body[:7], body[7:8], body[8:]]) == ['{"t":"🙂"}']


def test_ndjson_last_line_without_line_end() -> None:
    decoder = NDJSONDecoder()
    assert decode(decoder, [b'{"a":1}\n{"done":true}']) == ['{"a":1}', '{"done":true}']
    assert not decoder.truncated


def test_ndjson_cut_inside_a_line_is_truncated() -> None:
    decoder = NDJSONDecoder()
    assert decode(decoder, [b'{"a":1}\n{"done":tr']) == ['{"a":1}']
    assert decoder.truncated


@_SETTINGS
@given(
    st.lists(_objects, max_size=8),
    st.sampled_from(["\n", "\r\n"]),
    st.lists(st.integers(0, 2000), max_size=12),
    st.booleans(),
)
def test_ndjson_any_rechunking_gives_the_same_values(
    values: list[dict[str, Any]], ending: str, cuts: list[int], blank: bool
) -> None:
    lines = [json.dumps(v, ensure_ascii=False) + ending + (ending if blank else "") for v in values]
    body = "".join(lines).encode()
    decoder = NDJSONDecoder()
    frames = decode(decoder, split_at(body, cuts))
    assert [json.loads(f) for f in frames] == values
    assert not decoder.truncated


@_SETTINGS
@given(st.lists(_objects, min_size=1, max_size=6), st.data())
def test_ndjson_any_cut_reads_a_prefix_and_says_when_a_line_was_cut(
    values: list[dict[str, Any]], data: st.DataObject
) -> None:
    body = "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values).encode()
    cut = data.draw(st.integers(0, len(body)))
    decoder = NDJSONDecoder()
    frames = [json.loads(f) for f in decode(decoder, [body[:cut]])]
    assert frames == values[: len(frames)]
    # A proper prefix of an object's text is never JSON: a cut inside a line is reported;
    # a cut just before a line end leaves a whole value, which is read.
    at_a_line_end = cut == 0 or b"\n" in (body[cut - 1 : cut], body[cut : cut + 1])
    assert decoder.truncated is not at_a_line_end


# ----------------------------------------------------------------------------- JSON array


def test_json_array_as_google_writes_it() -> None:
    body = b'[{\n  "a": 1\n}\n,\r\n{\n  "b": "x]"\n}\n]'
    decoder = JSONArrayDecoder()
    assert [json.loads(f) for f in decode(decoder, [body])] == [{"a": 1}, {"b": "x]"}]
    assert not decoder.truncated


def test_json_array_of_scalars_and_strings_with_structure_inside() -> None:
    body = b'\xef\xbb\xbf [1, "a\\"],{", null , [2,[3]], {"k":"\\\\"}]  \n'
    frames = decode(JSONArrayDecoder(), [body])
    assert [json.loads(f) for f in frames] == [1, 'a"],{', None, [2, [3]], {"k": "\\"}]


def test_json_array_empty_and_unclosed() -> None:
    closed = JSONArrayDecoder()
    assert decode(closed, [b"[ ]"]) == [] and not closed.truncated
    unclosed = JSONArrayDecoder()
    assert decode(unclosed, [b'[{"a":1},']) == ['{"a":1}'] and unclosed.truncated
    nothing = JSONArrayDecoder()
    assert decode(nothing, []) == [] and nothing.truncated


@pytest.mark.parametrize(
    "body",
    [b'{"a":1}', b'[{"a":1} {"b":2}]', b'[{"a":1}]x', b"[,]", b'[{"a":1},]', b"[1,,2]"],
)
def test_json_array_that_is_not_an_array_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode(JSONArrayDecoder(), [body])


@_SETTINGS
@given(
    st.lists(_values, max_size=8),
    st.sampled_from([None, 0, 2]),
    st.sampled_from([",", "\n,\r\n", " , "]),
    st.lists(st.integers(0, 4000), max_size=16),
)
def test_json_array_any_rechunking_gives_the_same_elements(
    values: list[Any], indent: int | None, separator: str, cuts: list[int]
) -> None:
    parts = [json.dumps(v, ensure_ascii=False, indent=indent) for v in values]
    body = ("[" + separator.join(parts) + "\n]").encode()
    decoder = JSONArrayDecoder()
    frames = decode(decoder, split_at(body, cuts))
    assert [json.loads(f) for f in frames] == values
    assert not decoder.truncated


@_SETTINGS
@given(st.lists(_objects, min_size=1, max_size=5), st.data())
def test_json_array_any_cut_before_the_close_is_truncated(
    values: list[dict[str, Any]], data: st.DataObject
) -> None:
    body = ("[" + ",".join(json.dumps(v) for v in values) + "]").encode()
    cut = data.draw(st.integers(0, len(body) - 1))
    decoder = JSONArrayDecoder()
    frames = [json.loads(f) for f in decode(decoder, [body[:cut]])]
    assert frames == values[: len(frames)]
    assert decoder.truncated


@_SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_decoders_raise_nothing_but_value_error_on_any_bytes(body: bytes, cuts: list[int]) -> None:
    for framing in (NDJSON, JSON_ARRAY, SSE):
        with contextlib.suppress(ValueError):
            decode(framing.decoder(), split_at(body, cuts))


# ----------------------------------------------------------------------------- variants


def _ndjson_frames() -> list[Frame]:
    return [
        Frame(b'{"message":{"content":"Ol\xc3\xa1"},"done":false}\n', chunk=0),
        Frame(b"\n"),
        Frame(b'{"message":{"content":" x"},"done":false}\n{"done":true}\n', chunk=1),
    ]


@pytest.mark.parametrize("variant", NDJSON_FRAMINGS, ids=lambda v: v.label)
def test_ndjson_variants_carry_the_same_values(variant: Any) -> None:
    plain = b"".join(f.data for f in _ndjson_frames())
    written = variant.apply(_ndjson_frames())
    assert [f.chunk for f in written] == [f.chunk for f in _ndjson_frames()][: len(written)]
    decoder = NDJSONDecoder()
    got = [json.loads(f) for f in decode(decoder, [b"".join(f.data for f in written)])]
    assert not decoder.truncated
    assert got == [json.loads(f) for f in decode(NDJSONDecoder(), [plain])]


def _array_frames() -> list[Frame]:
    return [
        Frame(b'[{"text":"a]"}', chunk=0),
        Frame(b"\n"),
        Frame(b',{"text":"b","n":[1,2]}', chunk=1),
        Frame(b"]"),
    ]


@pytest.mark.parametrize("variant", JSON_ARRAY_FRAMINGS, ids=lambda v: v.label)
def test_json_array_variants_carry_the_same_elements(variant: Any) -> None:
    written = variant.apply(_array_frames())
    assert [f.chunk for f in written] == [f.chunk for f in _array_frames()]
    decoder = JSONArrayDecoder()
    got = [json.loads(f) for f in decode(decoder, [b"".join(f.data for f in written)])]
    assert not decoder.truncated
    assert got == [{"text": "a]"}, {"text": "b", "n": [1, 2]}]


def test_google_variant_writes_what_google_sends() -> None:
    google = JSON_ARRAY_FRAMINGS[1]
    body = b"".join(f.data for f in google.apply(_array_frames()))
    assert body.startswith(b'[{\n  "text": "a]"\n}\n\n,\r\n{\n  "text": "b"')
    assert body.endswith(b"\n]")


def test_json_array_huge_element_in_tiny_reads_is_not_parsed_once_per_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provara_kit.framings import json_array

    attempts = 0
    real = json_array._raw_decode

    def counting(text: str, index: int) -> tuple[Any, int]:
        nonlocal attempts
        attempts += 1
        return real(text, index)

    monkeypatch.setattr(json_array, "_raw_decode", counting)
    element = json.dumps({"a": [[1]] * 4_000})  # a closing bracket in nearly every read
    body = ("[" + element + "]").encode()
    decoder = JSONArrayDecoder()
    frames = decode(decoder, [body[i : i + 2] for i in range(0, len(body), 2)])
    assert frames == [element] and not decoder.truncated
    # Tried at each closing bracket while the element is small, then once per doubling:
    # a bounded share of the 10,000 reads, which does not grow with the element.
    reads = -(-len(body) // 2)
    assert attempts < json_array._EAGER_SIZE // 2 + 64, (attempts, reads)


def test_json_array_element_waiting_at_the_end_of_the_body_is_read() -> None:
    element = json.dumps({"a": [[1]] * 2_000})
    body = ("[" + element + "]").encode()
    decoder = JSONArrayDecoder()
    # 2-byte reads: past the eager tries and size, the last reads do not double the
    # element, so nothing is tried until the body ends.
    frames = [f for i in range(0, len(body), 2) for f in decoder.feed(body[i : i + 2])]
    assert frames == []
    assert decoder.end() == [element] and not decoder.truncated


# ----------------------------------------------------------------------------- closed


def test_json_array_is_closed_once_its_bracket_is_read() -> None:
    decoder = JSONArrayDecoder()
    assert not decoder.closed
    reads = [b'[{"a":"]"}', b',{"b":[1]}\n', b"\n]", b"\n"]
    closed = []
    for chunk in reads:
        decoder.feed(chunk)
        closed.append(decoder.closed)
    assert closed == [False, False, True, True]
    assert decoder.end() == [] and not decoder.truncated


def test_json_array_empty_is_closed() -> None:
    decoder = JSONArrayDecoder()
    decoder.feed(b" [ ")
    assert not decoder.closed
    decoder.feed(b"]")
    assert decoder.closed


@_SETTINGS
@given(
    st.lists(_values, max_size=6),
    st.sampled_from([None, 2]),
    st.lists(st.integers(0, 4000), max_size=16),
)
def test_json_array_closes_at_the_read_carrying_the_bracket(
    values: list[Any], indent: int | None, cuts: list[int]
) -> None:
    parts = [json.dumps(v, ensure_ascii=False, indent=indent) for v in values]
    body = ("[" + ",".join(parts) + "]").encode()
    decoder = JSONArrayDecoder()
    fed = 0
    for chunk in split_at(body, cuts):
        decoder.feed(chunk)
        fed += len(chunk)
        assert decoder.closed == (fed == len(body))
    assert decoder.closed


@_SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
def test_sse_and_ndjson_are_never_closed(body: bytes, cuts: list[int]) -> None:
    for framing in (SSE, NDJSON):
        decoder = framing.decoder()
        with contextlib.suppress(ValueError):
            for chunk in split_at(body, cuts):
                decoder.feed(chunk)
                assert not decoder.closed
            decoder.end()
        assert not decoder.closed


def test_json_array_number_cut_inside_its_fraction_is_read_whole() -> None:
    decoder = JSONArrayDecoder()
    body = b"[1,-0.0e+5]"
    for cut in range(len(body) + 1):
        decoder = JSONArrayDecoder()
        assert decode(decoder, [body[:cut], body[cut:]]) == ["1", "-0.0e+5"]
        assert not decoder.truncated
