"""A validated config file: the providers, prices and fallback chains it declares, and how
they are registered (:meth:`GatewayConfig.apply`)."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal

from provara_kit.pricing import MODEL_PRICING, PriceRow
from provara_kit.registry import PROVIDER_MODULES_ENV, Registry
from reference_gateway.configfile.errors import ConfigFileError, Problem
from reference_gateway.configfile.locate import KeyPath, line_of

__all__ = ["GatewayConfig", "ProviderConfig"]

LOCAL_PROVIDER = "local"
_REPLACEABLE = "builtin"


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One ``[providers.NAME]`` table, defaults filled in; header values stay out of
    ``repr`` (they may be credentials)."""

    name: str
    base_url: str
    api_key_env: str
    base_url_env: str
    models: tuple[str, ...] = ()
    streaming: bool = True
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What one ``PROVARA_CONFIG`` file declares; ``file`` is its path as given."""

    file: str
    providers: tuple[ProviderConfig, ...] = ()
    prices: Mapping[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False)

    @property
    def source(self) -> str:
        """The ``ProviderSpec.source`` of the providers it registers."""
        return f"config:{self.file}"

    def problem(self, path: KeyPath, message: str) -> Problem:
        """A problem at ``path``, on the line that key is written on."""
        return Problem(line_of(self.lines, path), path, message)

    def check(self, registry: Registry, *, local: bool = True) -> list[Problem]:
        """What stops the file from being registered into ``registry`` as it stands (after
        the provider modules): a provider also registered elsewhere, a price or a fallback
        naming a provider that does not exist."""
        problems: list[Problem] = []
        for provider in self.providers:
            if provider.name not in registry:
                continue
            source = registry.get(provider.name).source
            if source == _REPLACEABLE or source.startswith("config:"):
                continue
            where = (
                f"a {PROVIDER_MODULES_ENV} module or code of yours"
                if source == "user"
                else f"the installed adapter {source.removeprefix('entry-point:')}"
            )
            problems.append(
                self.problem(
                    ("providers", provider.name),
                    f"provider {provider.name!r} is also registered by {where}; "
                    "declare it in one place",
                )
            )
        known = set(registry.names()) | {p.name for p in self.providers}
        for key in self.prices:
            name = key.partition("/")[0]
            if name not in known:
                problems.append(self.problem(("prices", key), _unknown(name)))
        routable = known | {LOCAL_PROVIDER} if local else known
        for key, chain in self.fallbacks.items():
            for index, model in enumerate((key, *chain)):
                name = model.partition("/")[0]
                if name in routable:
                    continue
                path: KeyPath = ("fallbacks", key) if index == 0 else ("fallbacks", key, index - 1)
                message = (
                    "the local provider is off (PROVARA_LOCAL_UPSTREAM=0)"
                    if name == LOCAL_PROVIDER
                    else _unknown(name)
                )
                problems.append(self.problem(path, message))
        return problems

    def apply(
        self,
        registry: Registry,
        *,
        local: bool = True,
        pricing: MutableMapping[str, PriceRow] = MODEL_PRICING,
    ) -> None:
        """Register the providers into ``registry`` and the prices into ``pricing``, as a
        path-A module does; nothing is registered when :meth:`check` finds a problem
        (raised as :class:`ConfigFileError`). Applying the same file again is harmless."""
        problems = self.check(registry, local=local)
        if problems:
            problems.sort(key=lambda p: p.line or 0)
            raise ConfigFileError(self.file, problems)
        for provider in self.providers:
            registry.register_openai_compatible(
                name=provider.name,
                api_key_env=provider.api_key_env,
                base_url_env=provider.base_url_env,
                default_base_url=provider.base_url,
                default_models=provider.models,
                extra_headers=dict(provider.headers),
                source=self.source,
                streaming=provider.streaming,
            )
        pricing.update(self.prices)

    def describe(self) -> list[str]:
        """What the file registers, one line each (header values left out)."""
        out: list[str] = []
        for p in self.providers:
            headers = ", ".join(name for name, _ in p.headers) or "none"
            out.append(
                f"provider {p.name}: {p.base_url} (key {p.api_key_env}, base URL override "
                f"{p.base_url_env}, streaming {'on' if p.streaming else 'off'}, "
                f"extra headers: {headers})"
            )
            out.append(f"  models: {', '.join(p.models) or 'none declared (discovered)'}")
        for key, (given, produced) in self.prices.items():
            out.append(f"price {key}: input ${given}, output ${produced} per 1M tokens")
        for key, chain in self.fallbacks.items():
            out.append(f"fallback {key} -> {', '.join(chain)}")
        return out


def _unknown(name: str) -> str:
    return (
        f"unknown provider {name!r} (not declared in this file, by a provider module, "
        "an installed adapter or built in)"
    )
