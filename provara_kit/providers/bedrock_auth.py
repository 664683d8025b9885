"""How Bedrock requests authenticate: a Bedrock API key, or AWS credentials that sign.

A stored key (the vault's, or :func:`environment_key` from the standard AWS variables) is
either a Bedrock API key, sent as ``Authorization: Bearer``, or access keys written
``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`` (:func:`parse_key`), with which every
request is signed (AWS SigV4, service ``bedrock``; :func:`sign`). Nothing here asks a
credential provider (profiles, SSO, instance metadata): only the environment is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from provara_kit.errors import ConfigurationError

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_REGION",
    "SIGNING_SERVICE",
    "BedrockSecrets",
    "default_base_url",
    "environment_key",
    "parse_key",
    "region_from",
    "sign",
]

API_KEY_ENV: Final = "AWS_BEARER_TOKEN_BEDROCK"
"""A Bedrock API key; also the name a tenant's stored key goes under (either form)."""
BASE_URL_ENV: Final = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
"""The AWS SDKs' own override of the runtime endpoint (a VPC endpoint, a proxy)."""
DEFAULT_REGION: Final = "us-east-1"
"""The region when neither ``AWS_REGION`` nor ``AWS_DEFAULT_REGION`` names one."""
SIGNING_SERVICE: Final = "bedrock"


def region_from(environ: Mapping[str, str] = os.environ) -> str:
    """``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else :data:`DEFAULT_REGION`."""
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def default_base_url(region: str) -> str:
    """The Bedrock runtime endpoint of ``region``."""
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def environment_key(environ: Mapping[str, str] = os.environ) -> str | None:
    """The key the standard AWS variables give, in the form :func:`parse_key` reads:
    ``AWS_BEARER_TOKEN_BEDROCK``, else ``AWS_ACCESS_KEY_ID:AWS_SECRET_ACCESS_KEY`` (with
    ``:AWS_SESSION_TOKEN`` when set), else ``None``. Nothing but the environment is read."""
    bearer = environ.get(API_KEY_ENV)
    if bearer:
        return bearer
    access, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not access or not secret:
        return None
    token = environ.get("AWS_SESSION_TOKEN")
    return f"{access}:{secret}:{token}" if token else f"{access}:{secret}"


@dataclass(frozen=True, slots=True)
class BedrockSecrets:
    """How requests authenticate: a bearer key, or AWS credentials to sign with."""

    bearer: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        mode = "bearer" if self.bearer else "sigv4" if self.secret_key else "none"
        return f"BedrockSecrets(<{mode}>)"

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Every value to scrub from errors and logs."""
        return (self.bearer, self.secret_key, self.token)


def parse_key(key: str | None) -> BedrockSecrets:
    """A stored key as secrets: ``ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`` are AWS
    credentials (Bedrock API keys never hold a colon); anything else is a Bedrock API key."""
    if not key:
        return BedrockSecrets()
    if ":" not in key:
        return BedrockSecrets(bearer=key.strip())
    parts = key.strip().split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ConfigurationError(
            "an AWS credential key is ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]"
        )
    return BedrockSecrets(
        access_key=parts[0],
        secret_key=parts[1],
        token=parts[2] if len(parts) == 3 and parts[2] else None,
    )


def sign(request: httpx.Request, credentials: Any, region: str, botocore: Any) -> None:
    """Sign ``request`` in place with botocore's SigV4 signer and ``credentials`` (a botocore
    credentials object) for ``region``."""
    # Sign the host, the content type and the x-amz-* headers only: a proxy may change
    # the rest (accept-encoding, connection) without breaking the signature.
    signed = {"host": request.url.netloc.decode("ascii")}
    if "content-type" in request.headers:
        signed["content-type"] = request.headers["content-type"]
    aws = botocore.awsrequest.AWSRequest(
        method=request.method, url=str(request.url), headers=signed, data=request.content
    )
    botocore.auth.SigV4Auth(credentials, SIGNING_SERVICE, region).add_auth(aws)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
        value = aws.headers.get(name)
        if value is not None:
            request.headers[name] = value
