"""Tests for the AES-256-GCM key vault."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provara_kit.errors import ConfigurationError, MasterKeyError, VaultError
from provara_kit.vault import (
    MASTER_KEY_ENV,
    PREVIOUS_KEYS_ENV,
    Vault,
    generate_master_key,
    key_id,
    parse_master_key,
)

ROOT = Path(__file__).resolve().parent.parent
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TOKEN_RE = re.compile(r"v1:[0-9a-f]{8}:[A-Za-z0-9_-]+")

# Any Python str, lone surrogates included.
any_text = st.text(st.characters(codec=None, categories=None, exclude_categories=[]))


def new_key() -> bytes:
    return base64.urlsafe_b64decode(generate_master_key())


def b64(key: bytes, *, padded: bool = True) -> str:
    text = base64.urlsafe_b64encode(key).decode()
    return text if padded else text.rstrip("=")


KEY_A = new_key()
KEY_B = new_key()
VAULT = Vault(KEY_A)


# --- round trip and ciphertext shape -------------------------------------------------


@settings(max_examples=200)
@given(plaintext=any_text, tenant=any_text, name=any_text)
def test_round_trip(plaintext: str, tenant: str, name: str) -> None:
    token = VAULT.encrypt(plaintext, tenant=tenant, name=name)
    assert token.isascii()
    assert TOKEN_RE.fullmatch(token)
    assert VAULT.decrypt(token, tenant=tenant, name=name) == plaintext


def test_token_format() -> None:
    token = VAULT.encrypt("sk-secret", tenant="acme", name="openai")
    version, kid, payload = token.split(":")
    assert version == "v1"
    assert kid == key_id(KEY_A) == VAULT.current_key_id
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert len(raw) == 12 + len(b"sk-secret") + 16


def test_fresh_nonce_each_call() -> None:
    tokens = {VAULT.encrypt("sk-same", tenant="t", name="n") for _ in range(50)}
    assert len(tokens) == 50
    nonces = {base64.urlsafe_b64decode(t.split(":")[2] + "==")[:12] for t in tokens}
    assert len(nonces) == 50


@given(plaintext=st.text(min_size=4))
def test_ciphertext_does_not_contain_plaintext(plaintext: str) -> None:
    token = VAULT.encrypt(plaintext, tenant="t", name="n")
    payload = token.split(":")[2]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert plaintext not in token
    assert plaintext.encode("utf-8", "surrogatepass") not in raw


def test_long_realistic_key_not_visible() -> None:
    secret = "sk-proj-" + "Zx9" * 40
    token = VAULT.encrypt(secret, tenant="acme", name="openai")
    assert secret not in token
    assert secret[:12] not in token


# --- associated data binding ---------------------------------------------------------


@given(plaintext=st.text(), tenant=any_text, name=any_text, other=any_text)
def test_moving_token_to_other_tenant_or_name_fails(
    plaintext: str, tenant: str, name: str, other: str
) -> None:
    token = VAULT.encrypt(plaintext, tenant=tenant, name=name)
    if other != tenant:
        with pytest.raises(VaultError, match="authentication failed"):
            VAULT.decrypt(token, tenant=other, name=name)
    if other != name:
        with pytest.raises(VaultError, match="authentication failed"):
            VAULT.decrypt(token, tenant=tenant, name=other)


@pytest.mark.parametrize(
    ("made_for", "tried_with"),
    [
        (("ab", "c"), ("a", "bc")),
        (("a", "bc"), ("ab", "c")),
        (("", "abc"), ("abc", "")),
        (("a:b", "c"), ("a", "b:c")),
        (("a\x00", "b"), ("a", "\x00b")),
    ],
)
def test_aad_is_unambiguous(made_for: tuple[str, str], tried_with: tuple[str, str]) -> None:
    token = VAULT.encrypt("sk-x", tenant=made_for[0], name=made_for[1])
    assert VAULT.decrypt(token, tenant=made_for[0], name=made_for[1]) == "sk-x"
    with pytest.raises(VaultError, match="authentication failed"):
        VAULT.decrypt(token, tenant=tried_with[0], name=tried_with[1])


def test_swapping_tenant_and_name_fails() -> None:
    token = VAULT.encrypt("sk-x", tenant="openai", name="acme")
    with pytest.raises(VaultError):
        VAULT.decrypt(token, tenant="acme", name="openai")


def test_wrong_master_key_fails() -> None:
    token = VAULT.encrypt("sk-x", tenant="t", name="n")
    with pytest.raises(VaultError, match="not configured"):
        Vault(KEY_B).decrypt(token, tenant="t", name="n")


# --- tampering -----------------------------------------------------------------------


def test_tampering_any_payload_byte_fails() -> None:
    token = VAULT.encrypt("sk-tamper-me", tenant="t", name="n")
    prefix, payload = token.rsplit(":", 1)
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            damaged = bytearray(raw)
            damaged[index] ^= bit
            forged = f"{prefix}:{b64(bytes(damaged), padded=False)}"
            with pytest.raises(VaultError, match="authentication failed"):
                VAULT.decrypt(forged, tenant="t", name="n")


def test_tampering_any_token_character_fails() -> None:
    token = VAULT.encrypt("sk-tamper-me-too", tenant="t", name="n")
    for index, char in enumerate(token):
        for replacement in {"A", "b", "9", "_", ":", "x"} - {char}:
            forged = token[:index] + replacement + token[index + 1 :]
            with pytest.raises(VaultError):
                VAULT.decrypt(forged, tenant="t", name="n")


@given(data=st.data())
def test_random_edits_fail(data: st.DataObject) -> None:
    token = VAULT.encrypt("sk-edit", tenant="t", name="n")
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(
        st.sampled_from(B64_ALPHABET + ":=+/ ").filter(lambda c: c != token[index])
    )
    with pytest.raises(VaultError):
        VAULT.decrypt(token[:index] + replacement + token[index + 1 :], tenant="t", name="n")


def test_truncated_and_extended_tokens_fail() -> None:
    token = VAULT.encrypt("sk-x", tenant="t", name="n")
    for cut in range(1, len(token)):
        with pytest.raises(VaultError):
            VAULT.decrypt(token[:cut], tenant="t", name="n")
    for extra in ("A", "AA", "=", "==", ":", "\n"):
        with pytest.raises(VaultError):
            VAULT.decrypt(token + extra, tenant="t", name="n")


@pytest.mark.parametrize(
    ("token", "match"),
    [
        ("", "not a Provara vault token"),
        ("sk-live-plaintext-secret-1234", "not a Provara vault token"),
        ("v2:0011aabb:AAAA", "format version"),
        ("v1:XYZ:AAAA", "bad key id"),
        ("v1:0011aabb:" + "A" * 40, "not configured"),
        ("v1:0011aabb:é", "not a Provara vault token"),
    ],
)
def test_malformed_tokens(token: str, match: str) -> None:
    with pytest.raises(VaultError, match=match) as info:
        VAULT.decrypt(token, tenant="t", name="n")
    if len(token) > 8:
        assert token not in str(info.value)


def test_malformed_payload_messages() -> None:
    kid = VAULT.current_key_id
    with pytest.raises(VaultError, match="truncated"):
        VAULT.decrypt(f"v1:{kid}:{b64(b'short', padded=False)}", tenant="t", name="n")
    with pytest.raises(VaultError, match="base64"):
        VAULT.decrypt(f"v1:{kid}:!!!!", tenant="t", name="n")


def test_error_messages_never_contain_plaintext_or_key() -> None:
    secret = "sk-super-secret-value-123456"
    token = VAULT.encrypt(secret, tenant="t", name="n")
    for tenant, name in (("other", "n"), ("t", "other")):
        with pytest.raises(VaultError) as info:
            VAULT.decrypt(token, tenant=tenant, name=name)
        message = str(info.value)
        assert secret not in message
        assert b64(KEY_A) not in message
        assert KEY_A.hex() not in message
        assert info.value.__cause__ is None


def test_wrong_argument_types() -> None:
    with pytest.raises(TypeError):
        VAULT.encrypt(b"bytes", tenant="t", name="n")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        VAULT.encrypt("x", tenant=1, name="n")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        VAULT.decrypt(b"v1:00:AA", tenant="t", name="n")  # type: ignore[arg-type]


# --- rotation ------------------------------------------------------------------------


def test_rotation_via_env() -> None:
    old_env = {MASTER_KEY_ENV: b64(KEY_A)}
    old_token = Vault.from_env(old_env).encrypt("sk-rotate", tenant="acme", name="openai")

    # The operator moves the old key to PREVIOUS and sets a new current key.
    rotated = Vault.from_env({MASTER_KEY_ENV: b64(KEY_B), PREVIOUS_KEYS_ENV: b64(KEY_A)})
    assert rotated.current_key_id == key_id(KEY_B)
    assert rotated.decrypt(old_token, tenant="acme", name="openai") == "sk-rotate"
    assert rotated.needs_rotation(old_token)

    new_token = rotated.reencrypt(old_token, tenant="acme", name="openai")
    assert new_token != old_token
    assert new_token.split(":")[1] == key_id(KEY_B)
    assert not rotated.needs_rotation(new_token)
    assert rotated.decrypt(new_token, tenant="acme", name="openai") == "sk-rotate"

    # After rotation the old key is removed; the new token still decrypts, the old does not.
    final = Vault.from_env({MASTER_KEY_ENV: b64(KEY_B)})
    assert final.decrypt(new_token, tenant="acme", name="openai") == "sk-rotate"
    with pytest.raises(VaultError, match=r"not configured \(set PROVARA_MASTER_KEY_PREVIOUS\)"):
        final.decrypt(old_token, tenant="acme", name="openai")
    assert final.needs_rotation(old_token)


def test_reencrypt_checks_binding_and_keeps_current_tokens() -> None:
    vault = Vault({1: KEY_A, 2: KEY_B})
    assert vault.current_key_id == key_id(KEY_B)
    current = vault.encrypt("sk-x", tenant="t", name="n")
    assert vault.reencrypt(current, tenant="t", name="n") == current
    with pytest.raises(VaultError, match="authentication failed"):
        vault.reencrypt(current, tenant="other", name="n")
    old = Vault(KEY_A).encrypt("sk-x", tenant="t", name="n")
    with pytest.raises(VaultError, match="authentication failed"):
        vault.reencrypt(old, tenant="t", name="other")


def test_rotate_all() -> None:
    old_vault = Vault(KEY_A)
    key_c = new_key()
    vault = Vault.from_env(
        {MASTER_KEY_ENV: b64(key_c), PREVIOUS_KEYS_ENV: f" {KEY_B.hex()} ,{b64(KEY_A)},"}
    )
    items = [
        ("acme", "openai", old_vault.encrypt("sk-1", tenant="acme", name="openai")),
        ("acme", "anthropic", Vault(KEY_B).encrypt("sk-2", tenant="acme", name="anthropic")),
        ("globex", "openai", vault.encrypt("sk-3", tenant="globex", name="openai")),
    ]
    rotated = vault.rotate_all(iter(items))
    assert [(t, n) for t, n, _ in rotated] == [("acme", "openai"), ("acme", "anthropic")]
    for tenant, name, token in rotated:
        assert not vault.needs_rotation(token)
        assert Vault(key_c).decrypt(token, tenant=tenant, name=name) in {"sk-1", "sk-2"}
    assert vault.rotate_all([]) == []


def test_rotate_all_reports_bad_item_without_secrets() -> None:
    vault = Vault({1: KEY_A, 2: KEY_B})
    good = vault.encrypt("sk-good", tenant="acme", name="openai")
    items = [("acme", "openai", good), ("acme", "anthropic", good)]
    with pytest.raises(VaultError, match=r"item 1 \(tenant='acme', name='anthropic'\)") as info:
        vault.rotate_all(items)
    assert "sk-good" not in str(info.value)


def test_vault_versions() -> None:
    vault = Vault({1: KEY_A, 2: KEY_B}, current=1)
    assert vault.current_key_id == key_id(KEY_A)
    assert vault.key_ids == (key_id(KEY_A), key_id(KEY_B))
    token = vault.encrypt("sk-x", tenant="t", name="n")
    # Versions are local labels: numbering the same keys differently still decrypts.
    assert Vault({7: KEY_B, 3: KEY_A}).decrypt(token, tenant="t", name="n") == "sk-x"
    with pytest.raises(MasterKeyError):
        Vault({1: KEY_A}, current=2)
    with pytest.raises(MasterKeyError):
        Vault({})
    with pytest.raises(MasterKeyError, match="16 bytes"):
        Vault(os.urandom(16))
    with pytest.raises(MasterKeyError, match="too weak"):
        Vault(bytes(32))
    with pytest.raises(TypeError, match="parse_master_key"):
        Vault({1: b64(KEY_A)})  # type: ignore[dict-item]


def test_key_id_is_stable_and_distinct() -> None:
    assert key_id(KEY_A) == key_id(bytes(KEY_A))
    assert key_id(KEY_A) != key_id(KEY_B)
    assert re.fullmatch(r"[0-9a-f]{8}", key_id(KEY_A))


def test_repr_has_no_key_material() -> None:
    vault = Vault({1: KEY_A, 2: KEY_B})
    text = repr(vault)
    assert key_id(KEY_A) in text and key_id(KEY_B) in text
    for key in (KEY_A, KEY_B):
        for form in (b64(key), b64(key, padded=False), key.hex(), repr(key), str(list(key))):
            assert form not in text
        assert repr(key)[2:20] not in text
    assert str(vault) == text


# --- master key parsing --------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda k: b64(k),
        lambda k: b64(k, padded=False),
        lambda k: k.hex(),
        lambda k: k.hex().upper(),
        lambda k: f"  {b64(k)}\n",
        lambda k: base64.b64encode(k).decode(),
    ],
    ids=["b64", "b64-unpadded", "hex", "HEX", "whitespace", "std-b64"],
)
def test_from_env_accepts_encodings(encode: Callable[[bytes], str]) -> None:
    vault = Vault.from_env({MASTER_KEY_ENV: encode(KEY_A)})
    assert vault.current_key_id == key_id(KEY_A)
    token = VAULT.encrypt("sk-x", tenant="t", name="n")
    assert vault.decrypt(token, tenant="t", name="n") == "sk-x"


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, KEY_B.hex())
    monkeypatch.delenv(PREVIOUS_KEYS_ENV, raising=False)
    assert Vault.from_env().current_key_id == key_id(KEY_B)
    monkeypatch.delenv(MASTER_KEY_ENV)
    with pytest.raises(MasterKeyError, match="not set"):
        Vault.from_env()


def test_generate_master_key() -> None:
    keys = {generate_master_key() for _ in range(20)}
    assert len(keys) == 20
    for text in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}=", text)
        assert len(parse_master_key(text)) == 32
        assert Vault.from_env({MASTER_KEY_ENV: text}).current_key_id == key_id(
            base64.urlsafe_b64decode(text)
        )


def test_module_main_prints_a_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provara_kit.vault"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    text = result.stdout.strip()
    assert Vault.from_env({MASTER_KEY_ENV: text}).current_key_id == key_id(parse_master_key(text))


GENERATE_HINT = "from provara_kit.vault import generate_master_key"


def _weak_keys() -> list[tuple[str, bytes, str]]:
    return [
        ("zeros", bytes(32), "all of its bytes are the same"),
        ("ones", b"\xff" * 32, "all of its bytes are the same"),
        ("few-values", bytes(i % 5 for i in range(32)), "only 5 distinct"),
        ("two-halves", bytes(range(16)) * 2, "repeated pattern"),
        ("counting", bytes(range(32)), "counting sequence"),
        ("counting-down", bytes(range(200, 168, -1)), "counting sequence"),
        ("password", b"correct horse battery staple!!42", "printable text"),
        ("hex-pattern", bytes.fromhex("0123456789abcdef" * 4), "distinct"),
    ]


@pytest.mark.parametrize(("label", "key", "reason"), _weak_keys(), ids=lambda v: str(v))
def test_weak_keys_refused(label: str, key: bytes, reason: str) -> None:
    for text in (b64(key), key.hex()):
        with pytest.raises(MasterKeyError, match="too weak") as info:
            Vault.from_env({MASTER_KEY_ENV: text})
        message = str(info.value)
        assert reason in message
        assert GENERATE_HINT in message
        assert text not in message
        assert text.rstrip("=") not in message


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "not set"),
        ("   ", "not set"),
        (b64(os.urandom(16)), "16 bytes"),
        (b64(os.urandom(31), padded=False), "31 bytes"),
        (b64(os.urandom(48)), "48 bytes"),
        (os.urandom(16).hex(), "16 bytes"),
        ("zzQQ-not!a$key%at&all", "neither urlsafe base64 nor 64 hex"),
        ('"' + b64(os.urandom(32)) + '"', "neither urlsafe base64 nor 64 hex"),
        ("g" * 64, "48 bytes"),
        ("A", "neither urlsafe base64 nor 64 hex"),
        ("Zm9v=YmFy", "neither urlsafe base64 nor 64 hex"),
    ],
    ids=[
        "empty",
        "blank",
        "b64-16",
        "b64-31",
        "b64-48",
        "hex-16",
        "garbage",
        "quoted",
        "non-hex-64",
        "one-char",
        "inner-padding",
    ],
)
def test_bad_master_keys_refused(value: str, match: str) -> None:
    with pytest.raises(MasterKeyError, match=match) as info:
        Vault.from_env({MASTER_KEY_ENV: value})
    message = str(info.value)
    assert MASTER_KEY_ENV in message
    assert GENERATE_HINT in message
    if len(value.strip()) > 3:
        assert value.strip() not in message
        assert value.strip().strip('"') not in message
    assert info.value.__cause__ is None
    assert isinstance(info.value, ConfigurationError)


def test_missing_master_key_refused_even_with_previous() -> None:
    with pytest.raises(MasterKeyError, match=f"{MASTER_KEY_ENV} is not set"):
        Vault.from_env({PREVIOUS_KEYS_ENV: b64(KEY_A)})
    with pytest.raises(MasterKeyError, match="not set"):
        Vault.from_env({})


def test_bad_previous_key_names_the_entry() -> None:
    short = b64(os.urandom(8))
    env = {MASTER_KEY_ENV: b64(KEY_A), PREVIOUS_KEYS_ENV: f"{b64(KEY_B)},{short}"}
    with pytest.raises(MasterKeyError, match=f"{PREVIOUS_KEYS_ENV} entry 2 of 2") as info:
        Vault.from_env(env)
    assert short not in str(info.value)
    assert b64(KEY_A) not in str(info.value)


def test_previous_containing_current_key_is_harmless() -> None:
    vault = Vault.from_env({MASTER_KEY_ENV: b64(KEY_A), PREVIOUS_KEYS_ENV: KEY_A.hex()})
    assert vault.key_ids == (key_id(KEY_A),)
    token = vault.encrypt("sk-x", tenant="t", name="n")
    assert not vault.needs_rotation(token)


@settings(max_examples=300)
@given(key=st.binary(min_size=32, max_size=32))
def test_random_keys_parse_or_refuse_cleanly(key: bytes) -> None:
    for text in (b64(key), key.hex()):
        try:
            assert parse_master_key(text) == key
        except MasterKeyError as exc:
            assert text not in str(exc)
            assert GENERATE_HINT in str(exc)
