from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from provara_kit.tokens import estimate_input_tokens, estimate_tokens, resolve_usage
from provara_kit.types import ContentPart, Message


@given(st.text())
def test_estimate_is_ceil_of_code_points_over_four(text: str) -> None:
    assert estimate_tokens(text) == math.ceil(len(text) / 4)


def test_code_points_not_bytes() -> None:
    assert estimate_tokens("héllo wörld 🙂") == 4  # 13 code points, 17 UTF-8 bytes
    assert estimate_tokens("") == 0


def test_input_estimate_spans_all_messages_including_parts() -> None:
    messages = [
        Message(role="system", content="abc"),
        Message(
            role="user",
            content=[ContentPart(type="text", text="de"), ContentPart(type="image_url")],
        ),
    ]
    assert estimate_input_tokens(messages) == 2  # "abcde"


def test_each_missing_field_estimated_alone_and_real_zero_kept() -> None:
    messages = [Message(role="user", content="12345678")]
    usage = resolve_usage(None, 0, messages=messages, output_chars=9)
    assert (usage.input_tokens, usage.input_tokens_source) == (2, "estimated")
    assert (usage.output_tokens, usage.output_tokens_source) == (0, "upstream")
    usage = resolve_usage(7, None, messages=messages, output_chars=9)
    assert (usage.input_tokens, usage.input_tokens_source) == (7, "upstream")
    assert (usage.output_tokens, usage.output_tokens_source) == (3, "estimated")
    assert usage.estimated
