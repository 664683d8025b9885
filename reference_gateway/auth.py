"""Tenant tokens: how they are made and stored, and how a request is authenticated.

A token is ``pvk_`` plus 43 urlsafe characters (256 random bits). Only its SHA-256 digest
is stored: a fast hash is enough for a secret with that much entropy (there is nothing to
brute-force), and it keeps the per-request check at one hash and one dict lookup.
Tenants are cached once seen; an unknown token is remembered briefly so junk traffic does
not reach the database. A revoked tenant is dropped from the cache, and a new tenant clears
the unknown tokens, in every process (see :mod:`reference_gateway.sync`).
"""

from __future__ import annotations

import hashlib
import re
import secrets

import sqlalchemy as sa

from reference_gateway.api.errors import GatewayError
from reference_gateway.store import Database
from reference_gateway.store.tenants import find_by_token_hash, insert_tenant
from reference_gateway.token_cache import TokenCache, validate_name
from reference_gateway.types import Tenant

__all__ = [
    "TOKEN_PREFIX",
    "Authenticator",
    "bearer_token",
    "create_tenant",
    "hash_token",
    "new_token",
    "validate_tenant_name",
]

TOKEN_PREFIX = "pvk_"
_TOKEN = re.compile(r"pvk_[A-Za-z0-9_-]{43}")


def _missing() -> GatewayError:
    return GatewayError(
        401,
        "You didn't provide an API key. Send your gateway token in an Authorization header "
        "using Bearer auth (Authorization: Bearer pvk_...). Operators create tokens with "
        "'provara-gateway tenants create NAME'.",
        code="missing_api_key",
        headers={"www-authenticate": "Bearer"},
    )


def _invalid() -> GatewayError:
    return GatewayError(
        401,
        "Incorrect API key provided. Gateway tokens look like 'pvk_...'; create one with "
        "'provara-gateway tenants create NAME'.",
        code="invalid_api_key",
        headers={"www-authenticate": 'Bearer error="invalid_token"'},
    )


def new_token() -> str:
    """A fresh tenant token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def validate_tenant_name(name: str) -> str:
    """``name`` stripped; ``ValueError`` unless it is 1-64 letters, digits, space, ``._-``."""
    return validate_name(name, kind="tenant")


def create_tenant(conn: sa.Connection, name: str) -> tuple[Tenant, str]:
    """Create a tenant; returns it and its token, which is stored only hashed."""
    name = validate_tenant_name(name)
    token = new_token()
    tenant = insert_tenant(
        conn,
        tenant_id="ten_" + secrets.token_hex(8),
        name=name,
        token_sha256=hash_token(token),
        token_prefix=token[:8],
    )
    return tenant, token


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class Authenticator:
    """Maps bearer tokens to tenants, caching both hits and (briefly) misses."""

    def __init__(self, db: Database) -> None:
        self._cache = TokenCache(db, find_by_token_hash)

    async def tenant_for_token(self, token: str | None) -> Tenant:
        """The tenant ``token`` belongs to; a 401 :class:`GatewayError` otherwise."""
        if token is None:
            raise _missing()
        digest = hash_token(token)
        tenant = self._cache.known.get(digest)
        if tenant is not None:
            return tenant
        if not _TOKEN.fullmatch(token):
            raise _invalid()
        tenant = await self._cache.find(digest)
        if tenant is None:
            raise _invalid()
        return tenant

    def forget_tenant(self, tenant_id: str) -> None:
        """Stop accepting the tenant's cached token (it was revoked)."""
        self._cache.forget(tenant_id)

    def forget_unknown(self) -> None:
        """Forget the tokens remembered as unknown (a tenant was created)."""
        self._cache.forget_unknown()

    async def authenticate(self, authorization: str | None) -> Tenant:
        """The tenant of an ``Authorization`` header value."""
        return await self.tenant_for_token(bearer_token(authorization))
