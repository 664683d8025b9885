"""Operator tokens: who may see every tenant (the operator pages, ``/metrics``).

An operator token is ``pvo_`` plus 43 urlsafe characters (256 random bits), made by
``provara-gateway operators create NAME`` and stored, like a tenant's, only as its SHA-256
digest. :class:`OperatorAuth` caches operators once seen and remembers an unknown token
briefly; a revoked operator is dropped from the cache, and a new one clears the unknown
tokens, in every process (the ``operator-revoked`` and ``operator-created`` changes, see
:mod:`reference_gateway.sync`). A tenant's ``pvk_`` token is refused with a 403: it is a
valid credential, just not one that may see other tenants.
"""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa

from reference_gateway.api.errors import GatewayError
from reference_gateway.auth import TOKEN_PREFIX as TENANT_TOKEN_PREFIX
from reference_gateway.auth import bearer_token, hash_token
from reference_gateway.store import Database
from reference_gateway.store.operators import (
    Operator,
    find_operator_by_token_hash,
    insert_operator,
)
from reference_gateway.token_cache import TokenCache, validate_name

__all__ = [
    "OPERATOR_TOKEN_PREFIX",
    "Operator",
    "OperatorAuth",
    "create_operator",
    "new_operator_token",
    "validate_operator_name",
]

OPERATOR_TOKEN_PREFIX = "pvo_"
_TOKEN = re.compile(r"pvo_[A-Za-z0-9_-]{43}")


def _missing() -> GatewayError:
    return GatewayError(
        401,
        "This needs an operator token. Send it in an Authorization header using Bearer auth "
        "(Authorization: Bearer pvo_...); create one with "
        "'provara-gateway operators create NAME'.",
        code="missing_operator_token",
        headers={"www-authenticate": "Bearer"},
    )


def _invalid() -> GatewayError:
    return GatewayError(
        401,
        "Incorrect operator token. Operator tokens look like 'pvo_...'; create one with "
        "'provara-gateway operators create NAME'.",
        code="invalid_operator_token",
        headers={"www-authenticate": 'Bearer error="invalid_token"'},
    )


def _tenant_token() -> GatewayError:
    return GatewayError(
        403,
        "A tenant token cannot be used here: this needs an operator token (pvo_...).",
        code="operator_only",
    )


def new_operator_token() -> str:
    """A fresh operator token."""
    return OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)


def validate_operator_name(name: str) -> str:
    """``name`` stripped; ``ValueError`` unless it is 1-64 letters, digits, space, ``._-``."""
    return validate_name(name, kind="operator")


def create_operator(conn: sa.Connection, name: str) -> tuple[Operator, str]:
    """Create an operator; returns it and its token, which is stored only hashed."""
    name = validate_operator_name(name)
    token = new_operator_token()
    operator = insert_operator(
        conn,
        operator_id="op_" + secrets.token_hex(8),
        name=name,
        token_sha256=hash_token(token),
        token_prefix=token[:8],
    )
    return operator, token


class OperatorAuth:
    """Maps bearer tokens to operators, caching both hits and (briefly) misses."""

    def __init__(self, db: Database) -> None:
        self._cache = TokenCache(db, find_operator_by_token_hash)

    async def operator_for_token(self, token: str | None) -> Operator:
        """The operator ``token`` belongs to; a 401 :class:`GatewayError` when it is
        missing or unknown, a 403 when it is a tenant's token."""
        if token is None:
            raise _missing()
        digest = hash_token(token)
        operator = self._cache.known.get(digest)
        if operator is not None:
            return operator
        if not _TOKEN.fullmatch(token):
            if token.startswith(TENANT_TOKEN_PREFIX):
                raise _tenant_token()
            raise _invalid()
        operator = await self._cache.find(digest)
        if operator is None:
            raise _invalid()
        return operator

    def forget_operator(self, operator_id: str) -> None:
        """Stop accepting the operator's cached token (it was revoked)."""
        self._cache.forget(operator_id)

    def forget_unknown(self) -> None:
        """Forget the tokens remembered as unknown (an operator was created)."""
        self._cache.forget_unknown()

    async def authenticate(self, authorization_header: str | None) -> Operator:
        """The operator of an ``Authorization`` header value (see :meth:`operator_for_token`)."""
        return await self.operator_for_token(bearer_token(authorization_header))
