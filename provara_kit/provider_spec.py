"""How to build one provider and where its settings come from.

A :class:`ProviderSpec` names a provider, its :class:`ProviderFactory` and the environment
variables its key, base URL and streaming switch are read from; the
:class:`~provara_kit.registry.Registry` holds them by name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from provara_kit.errors import ConfigurationError
from provara_kit.nostream import streaming_env_var, streaming_setting
from provara_kit.provider import Provider

__all__ = ["ProviderFactory", "ProviderSpec"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class ProviderFactory(Protocol):
    """Builds a provider from a key, a base URL and an optional httpx transport."""

    def __call__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Provider: ...


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """How to build one provider and where its settings come from."""

    name: str
    factory: ProviderFactory
    api_key_env: str | None = None
    base_url_env: str | None = None
    default_base_url: str | None = None
    default_models: tuple[str, ...] = ()
    wire: str = "custom"
    source: str = "user"
    api_key_required: bool = True
    """False for a provider that answers without a key (a local server): ``api_key_env``
    then names an optional key, and the provider is used and refreshed without one."""
    streaming: bool = True

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(
                f"provider name {self.name!r} must be lower-case letters, digits, '-' or '_', "
                "starting with a letter"
            )

    def base_url(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The base URL: the env override when set, else the default."""
        if self.base_url_env and environ.get(self.base_url_env):
            return environ[self.base_url_env]
        return self.default_base_url

    def api_key(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The operator's default key from the environment, if any."""
        return environ.get(self.api_key_env) or None if self.api_key_env else None

    @property
    def streaming_env(self) -> str:
        """The variable that overrides :attr:`streaming`: ``<NAME>_STREAMING``."""
        return streaming_env_var(self.name)

    def streams(self, environ: Mapping[str, str] = os.environ) -> bool:
        """Whether built providers stream: ``<NAME>_STREAMING`` when set, else
        :attr:`streaming`. A value that is not a yes or a no raises ConfigurationError."""
        return streaming_setting(self.name, self.streaming, environ)
