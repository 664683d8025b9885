"""Tests for provara_kit.errors.redact: what it promises to remove, whatever the order of
the secrets, nested ones included (an AWS key ``ACCESS_KEY_ID:SECRET`` whose parts are
secrets too)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provara_kit.errors import REDACTED, redact

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What keys are made of; no bracket, so no secret can run into a REDACTED marker.
_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=-_:."
_keys = st.text(alphabet=_KEY_CHARS, min_size=4, max_size=40)
_filler = st.text(alphabet=_KEY_CHARS + " \n\"'", max_size=12)


def _promised(secrets: Iterable[str | None]) -> set[str]:
    """What redact promises to remove: each secret of 4+ characters, and the first and
    last 8 characters of each of 16+."""
    out: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= 4:
            out.add(secret)
            if len(secret) >= 16:
                out.update((secret[:8], secret[-8:]))
    return out


def _survivors(text: str, secrets: Iterable[str | None]) -> list[str]:
    """Promised strings still present outside the markers (a marker's own letters are no
    leak: a secret like ``DACT`` is inside ``[REDACTED]``)."""
    pieces = text.split(REDACTED)
    return sorted(p for p in _promised(secrets) if any(p in piece for piece in pieces))


@st.composite
def _nested(draw: st.DrawFn) -> list[str]:
    """Secrets where at least one lies inside another: the parts and their joining (an
    AWS ``ACCESS_KEY_ID:SECRET[:TOKEN]``), or one key embedded in a longer one."""
    parts = draw(st.lists(_keys, min_size=1, max_size=3))
    joined = draw(st.sampled_from([":", "", "/"])).join(parts)
    inner = draw(_keys)
    outer = draw(_filler) + inner + draw(_filler)
    secrets = [*parts, joined, inner, outer, *draw(st.lists(_keys, max_size=2))]
    return draw(st.permutations(secrets))


@st.composite
def _text_with(draw: st.DrawFn, secrets: list[str]) -> str:
    """Text that holds the secrets, their fragments and masked forms among filler, some
    overlapping one another."""
    pieces: list[str] = []
    for secret in draw(st.lists(st.sampled_from(secrets), min_size=1, max_size=8)):
        form = draw(
            st.sampled_from(
                [
                    secret,
                    secret[:8],
                    secret[-8:],
                    f"{secret[:8]}...{secret[-8:]}",
                    secret[: len(secret) // 2],
                    secret[len(secret) // 2 :],
                ]
            )
        )
        pieces += (draw(_filler), form)
    pieces.append(draw(_filler))
    return "".join(pieces)


@_SETTINGS
@given(st.data())
def test_nested_secrets_in_any_order_leave_nothing_promised(data: st.DataObject) -> None:
    secrets = data.draw(_nested())
    text = data.draw(_text_with(secrets))
    scrubbed = redact(text, secrets)
    assert _survivors(scrubbed, secrets) == []
    for order in (secrets[::-1], sorted(secrets), sorted(secrets, key=len)):
        assert redact(text, order) == scrubbed


def test_an_aws_key_and_its_parts_in_every_order() -> None:
    access, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    key = f"{access}:{secret}"
    text = f"bad key {key}; secret ends {secret[-8:]}; masked {key[:8]}...{key[-8:]}"
    results = {redact(text, order) for order in itertools.permutations([key, access, secret])}
    assert len(results) == 1
    (scrubbed,) = results
    assert _survivors(scrubbed, [key, access, secret]) == []
    assert scrubbed.startswith("bad key [REDACTED]; secret ends [REDACTED]; masked ")


def test_text_without_secrets_is_unchanged() -> None:
    assert redact("nothing to hide", [None, "", "ab"]) == "nothing to hide"
    assert redact("nothing to hide", ["sk-live-0123456789abcdef"]) == "nothing to hide"


def test_overlapping_occurrences_are_one_marker() -> None:
    assert redact("x abcabcab y", ["abcab"]) == f"x {REDACTED} y"
