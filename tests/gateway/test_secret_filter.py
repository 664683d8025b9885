"""The log filter redacts exactly what :func:`provara_kit.errors.redact` would, whatever
the number of secrets it holds and however they overlap."""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provara_kit.errors import REDACTED, redact
from reference_gateway.logs import SecretFilter

_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_:"
_keys = st.text(alphabet=_KEY_CHARS, min_size=1, max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secrets=st.lists(_keys, max_size=6), data=st.data())
def test_the_filter_redacts_what_redact_does(secrets: list[str], data: st.DataObject) -> None:
    pieces = st.one_of(st.sampled_from(secrets or ["x"]), st.text(_KEY_CHARS + " ", max_size=10))
    text = "".join(data.draw(st.lists(pieces, max_size=8)))
    secret_filter = SecretFilter()
    for secret in secrets:
        secret_filter.add(secret)
    assert secret_filter.redact(text) == redact(text, secrets)


def test_a_secret_added_after_a_check_is_redacted_too() -> None:
    secret_filter = SecretFilter()
    secret_filter.add("sk-first-0123456789abcdef")
    assert secret_filter.redact("nothing here") == "nothing here"
    secret_filter.add("sk-second-0123456789abcdef")
    assert secret_filter.redact("key sk-second-0123456789abcdef!") == f"key {REDACTED}!"


def test_thousands_of_keys_each_found_in_a_record() -> None:
    secret_filter = SecretFilter()
    keys = [f"sk-tenant-{n:05d}-{n * 7919:012d}" for n in range(3000)]
    for key in keys:
        secret_filter.add(key)
    for key in (keys[0], keys[1499], keys[-1]):
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "upstream said %s", (key,), None
        )
        assert secret_filter.filter(record)
        assert record.getMessage() == f"upstream said {REDACTED}"
    masked = f"{keys[42][:8]}...{keys[42][-8:]}"  # a provider echoing the key masked
    assert REDACTED in secret_filter.redact(masked) and keys[42][-8:] not in secret_filter.redact(
        masked
    )
