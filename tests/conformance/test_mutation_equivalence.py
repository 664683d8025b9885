"""Which surviving mutants the report calls equivalent, and which it must not."""

from __future__ import annotations

import pytest

from conformance.mutation.equivalence import ENSURE_ASCII, HEADER_CASE, why_equivalent
from conformance.report import MutationResult, Survivor


def _diff(before: str, after: str) -> str:
    return f"--- a.py\n+++ b.py\n@@ -3,1 +3,1 @@\n-{before}\n+{after}\n"


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        (
            '        headers["authorization"] = f"Bearer {key}"',
            '        headers["AUTHORIZATION"] = f"Bearer {key}"',
            HEADER_CASE,
        ),
        (
            '    headers = {"anthropic-version": V, "content-type": "application/json"}',
            '    headers = {"anthropic-version": V, "CONTENT-TYPE": "application/json"}',
            HEADER_CASE,
        ),
        (
            "    arguments = json.dumps(block['input'], ensure_ascii=False)",
            "    arguments = json.dumps(block['input'], ensure_ascii=True)",
            ENSURE_ASCII,
        ),
        (
            "    arguments = json.dumps(block['input'], ensure_ascii=False)",
            "    arguments = json.dumps(block['input'], )",
            ENSURE_ASCII,
        ),
    ],
)
def test_equivalent_mutants_say_why(before: str, after: str, why: str) -> None:
    assert why_equivalent(_diff(before, after)) == why


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # A header name that stops being one: the header is not sent.
        ('        headers["authorization"] = x', '        headers["XXauthorizationXX"] = x'),
        # A header value's case matters.
        (
            '    headers = {"content-type": "application/json"}',
            '    headers = {"content-type": "APPLICATION/JSON"}',
        ),
        # Case of a JSON key is not a header name.
        ('    usage = body.get("usage")', '    usage = body.get("USAGE")'),
        # The JSON value itself changes.
        (
            "    arguments = json.dumps(block['input'], ensure_ascii=False)",
            "    arguments = json.dumps(None, ensure_ascii=False)",
        ),
    ],
)
def test_other_mutants_stay_survivors(before: str, after: str) -> None:
    assert why_equivalent(_diff(before, after)) is None


def test_the_score_without_equivalent_mutants_is_reported_beside_the_score() -> None:
    survivors = [
        Survivor(
            "p.py",
            3,
            "m1",
            "survived",
            _diff('h["x-api-key"] = k  # header', 'h["X-API-KEY"] = k  # header'),
            HEADER_CASE,
        ),
        Survivor("p.py", 4, "m2", "survived", _diff("a", "b")),
    ]
    result = MutationResult(
        target="acme",
        tool="mutmut",
        tool_version="3.8.1",
        modules=["p.py"],
        counts={"killed": 18, "survived": 2},
        survivors=survivors,
    )
    assert result.score == 0.9
    assert result.equivalent == 1
    assert result.score_without_equivalent == pytest.approx(18 / 19)
    assert "1 equivalent, 94.7% without them" in result.summary()
    assert result.to_json()["score_without_equivalent"] == round(18 / 19, 4)
    assert "equivalent: HTTP header names are case-insensitive" in "\n".join(
        result.markdown_lines()
    )
