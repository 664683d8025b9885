"""Bearer tokens to whoever holds them (a tenant, an operator), cached.

Only a token's SHA-256 digest is ever stored or looked up. A holder once found is cached
until :meth:`TokenCache.forget` drops it (a revocation); a digest the database does not
know is remembered for a few seconds, so junk traffic does not reach the database, until
:meth:`TokenCache.forget_unknown` (a new holder was created).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import sqlalchemy as sa

from reference_gateway.store import Database

__all__ = ["TokenCache", "validate_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
_NEGATIVE_TTL = 5.0
_NEGATIVE_MAX = 10_000


class _Holder(Protocol):
    @property
    def id(self) -> str: ...


H = TypeVar("H", bound=_Holder)


def validate_name(name: str, *, kind: str) -> str:
    """``name`` stripped; ``ValueError`` unless it is 1-64 letters, digits, space, ``._-``
    (``kind`` names what it is the name of, in the message)."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{kind} name {name!r} must be 1-64 characters: letters, digits, space, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


class TokenCache(Generic[H]):
    """Token digests to holders: :attr:`known` (hits) and briefly remembered misses."""

    def __init__(self, db: Database, find: Callable[[sa.Connection, str], H | None]) -> None:
        self._db = db
        self._find = find
        self.known: dict[str, H] = {}
        self._unknown: dict[str, float] = {}

    async def find(self, digest: str) -> H | None:
        """The holder of ``digest`` from the database (and cached), or ``None`` when no
        one holds it (remembered for a few seconds)."""
        now = time.monotonic()
        expires = self._unknown.get(digest)
        if expires is not None and expires > now:
            return None
        holder = await self._db.read(self._find, digest)
        if holder is None:
            if len(self._unknown) >= _NEGATIVE_MAX:
                self._unknown.clear()
            self._unknown[digest] = now + _NEGATIVE_TTL
            return None
        self.known[digest] = holder
        return holder

    def forget(self, holder_id: str) -> None:
        """Stop accepting the holder's cached token (it was revoked)."""
        for digest in [d for d, h in self.known.items() if h.id == holder_id]:
            del self.known[digest]

    def forget_unknown(self) -> None:
        """Forget the digests remembered as unknown (a holder was created)."""
        self._unknown.clear()
