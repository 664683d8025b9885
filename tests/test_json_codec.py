"""Tests for provara_kit.json_codec: a fast parser, the standard library's answers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provara_kit import json_codec

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_parses_like_the_standard_library(value: object) -> None:
    text = json.dumps(value)
    assert json_codec.loads(text) == json.loads(text)
    assert json_codec.loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"content": "\\ud83d"}',  # half an emoji: a split surrogate pair
        '{"n": 123456789012345678901234567890}',  # beyond 64 bits
        '{"x": 1e400}',  # overflows a double: the standard library says inf
        '{"a": 1, "a": 2}',  # duplicate keys: the last one wins
    ],
)
def test_edge_texts_parse_as_the_standard_library_parses_them(text: str) -> None:
    assert json_codec.loads(text) == json.loads(text)


def test_malformed_text_raises_the_standard_librarys_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        json_codec.loads('{"a": ')


@pytest.mark.parametrize("text", ["", "{", '{"a":}', "nul", "[1,]", "\ufeff{}x"])
def test_malformed_text_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        json_codec.loads(text)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000])
def test_a_text_nested_too_deep_is_malformed_not_a_crash(text: str) -> None:
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        json_codec.loads(text)
    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        json_codec.loads(text.encode())
