"""AES-256-GCM vault for provider API keys stored per tenant.

Master key
    ``PROVARA_MASTER_KEY`` holds 32 random bytes, written as urlsafe base64 (with or
    without ``=`` padding) or as 64 hex characters. Make one with::

        python -c "from provara_kit.vault import generate_master_key; print(generate_master_key())"

    or ``python -m provara_kit.vault``. Missing, undecodable, wrong-length and weak keys
    (all bytes equal, fewer than 16 distinct byte values, a short repeated pattern, a
    counting sequence, or printable text such as a password) are refused with
    :class:`~provara_kit.errors.MasterKeyError`; the message never contains the key.

Token format
    ``v1:<kid>:<payload>`` (ASCII). ``v1`` is the format version; ``<kid>`` is the key id,
    8 hex chars = first 4 bytes of ``HMAC-SHA256(key, b"provara-kid")``; ``<payload>`` is
    unpadded urlsafe base64 of ``nonce (12 bytes) | ciphertext | GCM tag (16 bytes)``.
    The nonce is random and fresh for every call. The associated data is
    ``b"provara-vault/v1"`` followed by the tenant and the key name, each UTF-8 encoded
    and prefixed with its 4-byte big-endian length, so a token only decrypts for the
    exact (tenant, name) pair it was made for.

Rotation
    Because the key id is derived from the key itself, no version numbers are kept by
    hand: to rotate, move the old key into ``PROVARA_MASTER_KEY_PREVIOUS`` (comma-separated,
    any order), set a new ``PROVARA_MASTER_KEY``, then run :meth:`Vault.rotate_all` over the
    store and write back what it returns. Once nothing :meth:`Vault.needs_rotation`, the old
    key can be removed. The integer versions accepted by :class:`Vault` are local labels
    only (they pick the current key); they are never written into a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import os
import re
import struct
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from provara_kit.errors import MasterKeyError, VaultError

__all__ = [
    "MASTER_KEY_ENV",
    "PREVIOUS_KEYS_ENV",
    "Vault",
    "generate_master_key",
    "key_id",
    "parse_master_key",
]

MASTER_KEY_ENV = "PROVARA_MASTER_KEY"
PREVIOUS_KEYS_ENV = "PROVARA_MASTER_KEY_PREVIOUS"

_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_MIN_DISTINCT_BYTES = 16
_MAX_PATTERN_PERIOD = 16
_FORMAT = "v1"
_KID_LABEL = b"provara-kid"
_AAD_PREFIX = b"provara-vault/" + _FORMAT.encode("ascii")
_HEX_KEY = re.compile(r"(?:[0-9a-fA-F]{2})+")
_KID = re.compile(r"[0-9a-f]{8}")
_B64_KEY = re.compile(r"[A-Za-z0-9_\-+/]+={0,2}")
_HOW_TO = (
    'Generate one with: python -c "from provara_kit.vault import generate_master_key; '
    'print(generate_master_key())"'
)


def generate_master_key() -> str:
    """A new master key: urlsafe base64 of 32 bytes from ``os.urandom``."""
    while True:
        key = os.urandom(_KEY_BYTES)
        if _weakness(key) is None:  # a random key fails this with odds below 1e-13
            return base64.urlsafe_b64encode(key).decode("ascii")


def key_id(key: bytes) -> str:
    """The 8-hex-char id of a master key as written in tokens; reveals nothing of the key."""
    return hmac.new(key, _KID_LABEL, hashlib.sha256).digest()[:4].hex()


def parse_master_key(text: str, *, source: str = MASTER_KEY_ENV) -> bytes:
    """Decode and check a master key written as urlsafe base64 or 64 hex chars.

    ``source`` names where the text came from in error messages. Raises
    :class:`MasterKeyError` (never quoting the key) if it is empty, undecodable,
    not 32 bytes long or weak.
    """
    text = text.strip()
    if not text:
        raise MasterKeyError(f"{source} is not set. {_HOW_TO}")
    # All-hex text is read as hex unless it has the length of a base64 key (43/44 chars),
    # so a too-short hex key is reported with its real byte count.
    is_hex = _HEX_KEY.fullmatch(text) is not None and len(text) not in (43, 44)
    key = bytes.fromhex(text) if is_hex else _decode_b64(text, source)
    if len(key) != _KEY_BYTES:
        raise MasterKeyError(
            f"{source} decodes to {len(key)} bytes; a master key must be exactly "
            f"{_KEY_BYTES} random bytes (urlsafe base64 or 64 hex chars). {_HOW_TO}"
        )
    _check_strength(key, source)
    return key


def _decode_b64(text: str, source: str) -> bytes:
    invalid = MasterKeyError(
        f"{source} is neither urlsafe base64 nor 64 hex characters (check for quotes or "
        f"stray characters). {_HOW_TO}"
    )
    if not _B64_KEY.fullmatch(text):
        raise invalid
    body = text.rstrip("=")
    if len(body) % 4 == 1:
        raise invalid
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise invalid from None


def _weakness(key: bytes) -> str | None:
    """Why ``key`` is obviously not random, or ``None`` if it looks fine."""
    distinct = len(set(key))
    if distinct == 1:
        return "all of its bytes are the same"
    if distinct < _MIN_DISTINCT_BYTES:
        return f"it has only {distinct} distinct byte values"
    for period in range(1, _MAX_PATTERN_PERIOD + 1):
        if all(key[i] == key[i - period] for i in range(period, len(key))):
            return "it is a short repeated pattern"
    steps = {(b - a) % 256 for a, b in itertools.pairwise(key)}
    if len(steps) == 1:
        return "it is a counting sequence"
    if all(0x20 <= b <= 0x7E for b in key):
        return "it is printable text (a password or phrase), not random bytes"
    return None


def _check_strength(key: bytes, source: str) -> None:
    reason = _weakness(key)
    if reason is not None:
        raise MasterKeyError(
            f"{source} is too weak: {reason}. A master key must be {_KEY_BYTES} random "
            f"bytes. {_HOW_TO}"
        )


def _encode_text(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    # surrogatepass keeps every Python str encodable and the encoding injective.
    return value.encode("utf-8", "surrogatepass")


def _aad(tenant: str, name: str) -> bytes:
    parts = [_AAD_PREFIX]
    for value, what in ((tenant, "tenant"), (name, "name")):
        data = _encode_text(value, what)
        parts.append(struct.pack(">I", len(data)))
        parts.append(data)
    return b"".join(parts)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Vault:
    """Encrypts and decrypts per-tenant secrets under a current master key.

    ``keys`` maps local version numbers to 32-byte master keys (a single ``bytes`` is
    version 1); ``current`` picks the key new tokens use (default: the highest version).
    Every other key only decrypts. Keys are checked like ``PROVARA_MASTER_KEY``.
    """

    __slots__ = ("_ciphers", "_current_kid", "_current_version", "_versions")

    def __init__(self, keys: Mapping[int, bytes] | bytes, current: int | None = None) -> None:
        by_version: dict[int, bytes] = {1: keys} if isinstance(keys, bytes) else dict(keys)
        if not by_version:
            raise MasterKeyError(f"no master key given. {_HOW_TO}")
        if current is None:
            current = max(by_version)
        if current not in by_version:
            raise MasterKeyError(f"current master key version {current} is not among the keys")
        ciphers: dict[str, AESGCM] = {}
        owners: dict[str, bytes] = {}
        versions: dict[int, str] = {}
        for version, key in sorted(by_version.items(), reverse=True):
            source = f"master key version {version}"
            if not isinstance(key, bytes):
                raise TypeError(
                    f"{source} must be bytes, not {type(key).__name__} "
                    "(decode text keys with parse_master_key or use Vault.from_env)"
                )
            if len(key) != _KEY_BYTES:
                raise MasterKeyError(
                    f"{source} is {len(key)} bytes; a master key must be exactly "
                    f"{_KEY_BYTES} random bytes. {_HOW_TO}"
                )
            _check_strength(key, source)
            kid = key_id(key)
            if kid in owners and not hmac.compare_digest(owners[kid], key):
                raise MasterKeyError(f"two different master keys share key id {kid}; replace one")
            owners[kid] = key
            ciphers[kid] = AESGCM(key)
            versions[version] = kid
        self._ciphers = ciphers
        self._versions = versions
        self._current_version = current
        self._current_kid = versions[current]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Vault:
        """A vault from ``PROVARA_MASTER_KEY`` plus optional ``PROVARA_MASTER_KEY_PREVIOUS``.

        Previous keys are comma-separated; their order does not matter because tokens
        name their key by key id. Empty entries are ignored.
        """
        current = parse_master_key(environ.get(MASTER_KEY_ENV, ""), source=MASTER_KEY_ENV)
        entries = [e for e in environ.get(PREVIOUS_KEYS_ENV, "").split(",") if e.strip()]
        keys: dict[int, bytes] = {}
        for index, entry in enumerate(entries, start=1):
            source = f"{PREVIOUS_KEYS_ENV} entry {index} of {len(entries)}"
            keys[len(entries) - index + 1] = parse_master_key(entry, source=source)
        keys[len(entries) + 1] = current
        return cls(keys, current=len(entries) + 1)

    @property
    def current_key_id(self) -> str:
        """Key id of the key new tokens are encrypted under."""
        return self._current_kid

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every configured key, current first."""
        return (self._current_kid, *(k for k in self._ciphers if k != self._current_kid))

    def __repr__(self) -> str:
        return f"Vault(current_key_id={self._current_kid!r}, key_ids={list(self.key_ids)!r})"

    def encrypt(self, plaintext: str, *, tenant: str, name: str) -> str:
        """Encrypt ``plaintext`` for (tenant, name) under the current key."""
        data = _encode_text(plaintext, "plaintext")
        aad = _aad(tenant, name)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current_kid].encrypt(nonce, data, aad)
        return f"{_FORMAT}:{self._current_kid}:{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str, *, tenant: str, name: str) -> str:
        """The plaintext of ``token``; :class:`VaultError` if it cannot be authenticated."""
        kid, payload = self._parse(token)
        aad = _aad(tenant, name)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise VaultError(
                "value is encrypted under a master key that is not configured "
                f"(set {PREVIOUS_KEYS_ENV}); its key id is {kid}"
            )
        try:
            data = cipher.decrypt(payload[:_NONCE_BYTES], payload[_NONCE_BYTES:], aad)
        except InvalidTag:
            raise VaultError(
                "authentication failed: the value was modified or belongs to a different "
                "tenant or key name"
            ) from None
        return data.decode("utf-8", "surrogatepass")

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` is under a key other than the current one (known or not)."""
        kid, _ = self._parse(token)
        return kid != self._current_kid

    def reencrypt(self, token: str, *, tenant: str, name: str) -> str:
        """``token`` under the current key; returned unchanged (after checking) if it is already."""
        plaintext = self.decrypt(token, tenant=tenant, name=name)
        if not self.needs_rotation(token):
            return token
        return self.encrypt(plaintext, tenant=tenant, name=name)

    def rotate_all(self, items: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """Re-encrypt stored ``(tenant, name, token)`` items under the current key.

        Returns only the items whose token changed, as ``(tenant, name, new_token)``, to be
        written back. Everything is decrypted before anything is returned, so one bad item
        raises :class:`VaultError` (naming its index, tenant and name) and nothing is lost.
        """
        rotated: list[tuple[str, str, str]] = []
        for index, (tenant, name, token) in enumerate(items):
            try:
                new_token = self.reencrypt(token, tenant=tenant, name=name)
            except VaultError as exc:
                raise VaultError(
                    f"cannot rotate item {index} (tenant={tenant!r}, name={name!r}): {exc}"
                ) from None
            if new_token != token:
                rotated.append((tenant, name, new_token))
        return rotated

    def _parse(self, token: str) -> tuple[str, bytes]:
        """Key id and raw payload of a well-formed token; never echoes the token."""
        if not isinstance(token, str):
            raise TypeError(f"token must be str, not {type(token).__name__}")
        parts = token.split(":")
        if len(parts) != 3 or not token.isascii():
            raise VaultError("not a Provara vault token (expected 'v1:<key id>:<data>')")
        version, kid, encoded = parts
        if version != _FORMAT:
            raise VaultError(
                "unsupported vault token format version (this release reads only 'v1')"
            )
        if not _KID.fullmatch(kid):
            raise VaultError("malformed vault token: bad key id")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise VaultError("malformed vault token: data is not urlsafe base64") from None
        # Only the exact encoding encrypt() emits is accepted, so every token change is caught.
        if _b64encode(payload) != encoded:
            raise VaultError("malformed vault token: data is not canonical urlsafe base64")
        if len(payload) < _NONCE_BYTES + _TAG_BYTES:
            raise VaultError("malformed vault token: data is truncated")
        return kid, payload


if __name__ == "__main__":
    print(generate_master_key())
