"""Small value types the gateway's modules share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["KeySource", "StoredKey", "Tenant"]

KeySource: TypeAlias = Literal["tenant", "operator", "none", "local"]
"""Whose provider key served a request: the tenant's own stored key, the operator's
``<NAME>_API_KEY``, no key (a provider that needs none) or the built-in local upstream."""


@dataclass(frozen=True, slots=True)
class Tenant:
    """An authenticated customer of the gateway."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A tenant's provider key as stored: ciphertext and a display hint, never plaintext."""

    name: str
    provider: str
    ciphertext: str
    hint: str
    created_at: str
    updated_at: str

    @property
    def masked(self) -> str:
        """What the dashboard shows: ``••••wxyz`` (or only dots for a short key)."""
        return f"••••{self.hint}" if self.hint else "••••"
