"""The shape of a config file, as pydantic models: unknown keys, wrong types, bad URLs and
negative prices are refused here; checks across entries are :mod:`.load`'s."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr

__all__ = ["ConfigSchema", "PriceSchema", "ProviderSchema"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Set by the gateway itself: the key from api_key_env, the body's own framing.
_RESERVED_HEADERS = frozenset({"authorization", "content-type", "content-length", "host"})


def _http_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http(s) URL")
    if url.userinfo:
        raise ValueError("must not carry credentials (the key comes from api_key_env)")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError("must be an environment variable name (letters, digits, '_')")
    return value


def _model_id(value: str) -> str:
    if not value.strip() or value != value.strip():
        raise ValueError("must be a model id without surrounding blanks")
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError("must be an HTTP header name")
    if value.lower() in _RESERVED_HEADERS:
        raise ValueError("set by the gateway itself (the key comes from api_key_env)")
    return value


def _header_value(value: str) -> str:
    if any(char in value for char in "\r\n\0"):
        raise ValueError("must be one line")
    return value


HttpUrl = Annotated[StrictStr, AfterValidator(_http_url)]
EnvName = Annotated[StrictStr, AfterValidator(_env_name)]
ModelId = Annotated[StrictStr, AfterValidator(_model_id)]
HeaderName = Annotated[StrictStr, AfterValidator(_header_name)]
HeaderValue = Annotated[StrictStr, AfterValidator(_header_value)]
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSchema(_Strict):
    """An OpenAI-compatible provider: what ``register_openai_compatible`` takes."""

    base_url: HttpUrl
    api_key_env: EnvName | None = None
    base_url_env: EnvName | None = None
    models: list[ModelId] = []
    streaming: StrictBool = True
    headers: dict[HeaderName, HeaderValue] = {}


class PriceSchema(_Strict):
    """USD per 1,000,000 tokens."""

    input: Price
    output: Price


class ConfigSchema(_Strict):
    """The whole file."""

    providers: dict[StrictStr, ProviderSchema] = {}
    prices: dict[StrictStr, PriceSchema] = {}
    fallbacks: dict[StrictStr, list[StrictStr]] = {}
