"""Which providers exist, how to build them, and which models each one serves.

A :class:`~provara_kit.provider_spec.ProviderSpec` says how to build one provider; the
built-in providers are registered from :mod:`provara_kit.builtin_providers`; installed
adapter packages are found through the ``provara.providers`` entry-point group. An entry
point names either a :class:`ProviderSpec` or a callable taking the :class:`Registry` (a
plugin hook that calls ``registry.register(...)``).

Path A of the runbook is one call::

    from provara_kit.registry import register_openai_compatible
    register_openai_compatible(
        name="fireworks",
        api_key_env="FIREWORKS_API_KEY",
        base_url_env="FIREWORKS_BASE_URL",
        default_base_url="https://api.fireworks.ai/inference/v1",
    )

Put such calls in a module of your own and import it before ``create``; the gateway and
the conformance suite import the modules named in ``PROVARA_PROVIDER_MODULES``
(:func:`import_provider_modules`), with the working directory importable.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

import httpx

from provara_kit.builtin_providers import AUTO_REGISTER, register_builtins
from provara_kit.errors import ConfigurationError, ProvaraError, redact
from provara_kit.nostream import without_streaming
from provara_kit.provider import Provider
from provara_kit.provider_spec import ProviderFactory, ProviderSpec
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider

__all__ = [
    "AUTO_REGISTER",
    "ENTRY_POINT_GROUP",
    "PROVIDER_MODULES_ENV",
    "REGISTRY",
    "ModelRefresh",
    "ProviderFactory",
    "ProviderSpec",
    "RefreshReport",
    "Registry",
    "create",
    "get",
    "import_provider_modules",
    "load_entry_points",
    "provider_modules",
    "refresh_models",
    "register",
    "register_openai_compatible",
]

ENTRY_POINT_GROUP = "provara.providers"
PROVIDER_MODULES_ENV = "PROVARA_PROVIDER_MODULES"
"""Comma-separated modules that register providers when imported (path A)."""


@dataclass(slots=True)
class ModelRefresh:
    """What ``refresh_models`` found for one provider."""

    provider: str
    status: Literal["ok", "error", "skipped"]
    models: tuple[str, ...] = ()
    error: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class RefreshReport:
    """One row per provider; a provider that is down is reported, never fatal."""

    results: dict[str, ModelRefresh] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if r.status == "error"]

    def __str__(self) -> str:
        lines = []
        for name, r in sorted(self.results.items()):
            detail = f"{len(r.models)} models" if r.status == "ok" else (r.error or "")
            lines.append(f"{name}: {r.status} - {detail}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _OpenAICompatible:
    name: str
    api_key_env: str
    base_url_env: str | None
    default_base_url: str
    default_models: tuple[str, ...]
    extra_headers: tuple[tuple[str, str], ...] = ()

    def __call__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Provider:
        return OpenAICompatibleProvider(
            name=self.name,
            api_key=api_key,
            base_url=base_url or self.default_base_url,
            transport=transport,
            default_models=self.default_models,
            extra_headers=dict(self.extra_headers),
        )


class Registry:
    """Named provider specs, plus the models each one served at the last refresh."""

    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}
        self.models: dict[str, tuple[str, ...]] = {}
        self.last_refresh: dict[str, ModelRefresh] = {}
        self.plugin_errors: dict[str, str] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Any:
        return iter(sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[ProviderSpec]:
        return [self._specs[name] for name in sorted(self._specs)]

    def register(
        self,
        spec: ProviderSpec | str,
        factory: ProviderFactory | None = None,
        *,
        replace: bool = True,
        **fields: Any,
    ) -> ProviderSpec:
        """Add (or, by default, replace) a provider.

        Pass a :class:`ProviderSpec`, or a name and a factory plus any spec fields:
        ``register("acme", AcmeProvider.from_settings, api_key_env="ACME_API_KEY")``.
        """
        if isinstance(spec, str):
            if factory is None:
                raise ConfigurationError(f"register({spec!r}, ...) needs a provider factory")
            spec = ProviderSpec(name=spec, factory=factory, **fields)
        elif factory is not None or fields:
            raise ConfigurationError("pass either a ProviderSpec or a name with a factory")
        if not replace and spec.name in self._specs:
            raise ConfigurationError(f"provider {spec.name!r} is already registered")
        self._specs[spec.name] = spec
        self.models[spec.name] = spec.default_models
        self.last_refresh.pop(spec.name, None)
        return spec

    def register_openai_compatible(
        self,
        *,
        name: str,
        api_key_env: str,
        base_url_env: str | None = None,
        default_base_url: str,
        default_models: Iterable[str] = (),
        extra_headers: Mapping[str, str] | None = None,
        source: str = "user",
        streaming: bool = True,
    ) -> ProviderSpec:
        """Register an OpenAI-compatible provider: the whole of path A (``streaming=False``
        serves its streams from plain completions until its stream is trusted)."""
        models = tuple(default_models)
        factory = _OpenAICompatible(
            name=name,
            api_key_env=api_key_env,
            base_url_env=base_url_env,
            default_base_url=default_base_url,
            default_models=models,
            extra_headers=tuple((extra_headers or {}).items()),
        )
        return self.register(
            ProviderSpec(
                name=name,
                factory=factory,
                api_key_env=api_key_env,
                base_url_env=base_url_env,
                default_base_url=default_base_url,
                default_models=models,
                wire=OpenAICompatibleProvider.wire,
                source=source,
                streaming=streaming,
            )
        )

    def get(self, name: str) -> ProviderSpec:
        """The spec for ``name``; an unknown name says which ones exist."""
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigurationError(
                f"unknown provider {name!r}; registered providers: {known} (a provider of "
                f"yours is registered when its module is imported; {PROVIDER_MODULES_ENV} "
                "names such modules for the gateway and the conformance suite)"
            ) from None

    def create(
        self,
        name: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Provider:
        """Build provider ``name``; the key and base URL default to the environment.

        A provider whose streaming is off (:meth:`ProviderSpec.streams`) is built through
        :func:`~provara_kit.nostream.without_streaming`.
        """
        spec = self.get(name)
        streams = spec.streams(environ)
        provider = spec.factory(
            api_key=api_key if api_key is not None else spec.api_key(environ),
            base_url=base_url or spec.base_url(environ),
            transport=transport,
        )
        return provider if streams else without_streaming(provider)

    def load_entry_points(self) -> list[str]:
        """Register every installed adapter package; a broken one is noted, not fatal."""
        loaded: list[str] = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            before = set(self._specs)
            try:
                target = ep.load()
                if isinstance(target, ProviderSpec):
                    self.register(_with_source(target, ep))
                elif callable(target):
                    target(self)
                else:
                    raise TypeError(
                        f"entry point must name a ProviderSpec or a callable, got {target!r}"
                    )
            except Exception as exc:  # a broken plugin must not take the registry down
                self.plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                continue
            self.plugin_errors.pop(ep.name, None)
            loaded.extend(sorted(set(self._specs) - before) or [ep.name])
        return loaded

    async def refresh_models(
        self,
        providers: Mapping[str, Provider] | None = None,
        *,
        environ: Mapping[str, str] = os.environ,
        timeout_seconds: float = 15.0,
    ) -> RefreshReport:
        """Ask every provider for its models, concurrently; failures are reported.

        ``providers`` supplies ready instances (the gateway's); otherwise each registered
        provider is built from the environment and skipped when it has no key.
        """
        report = RefreshReport()
        owned: list[Provider] = []
        targets: dict[str, Provider] = {}
        if providers is not None:
            targets.update(providers)
        else:
            for spec in self.specs():
                if spec.api_key_env and spec.api_key_required and not spec.api_key(environ):
                    report.results[spec.name] = ModelRefresh(
                        spec.name,
                        "skipped",
                        self.models.get(spec.name, ()),
                        error=f"no API key (set {spec.api_key_env})",
                    )
                    continue
                try:
                    provider = self.create(spec.name, environ=environ)
                except ConfigurationError as exc:  # one misconfigured provider, reported
                    report.results[spec.name] = ModelRefresh(
                        spec.name, "error", self.models.get(spec.name, ()), error=str(exc)
                    )
                    continue
                owned.append(provider)
                targets[spec.name] = provider
        try:
            results = await asyncio.gather(
                *(self._refresh_one(name, p, timeout_seconds) for name, p in targets.items())
            )
        finally:
            for provider in owned:
                await provider.aclose()
        for result in results:
            report.results[result.provider] = result
            self.last_refresh[result.provider] = result
            if result.status == "ok":
                self.models[result.provider] = result.models
        return report

    async def _refresh_one(
        self, name: str, provider: Provider, timeout_seconds: float
    ) -> ModelRefresh:
        started = time.perf_counter()
        secret = getattr(provider, "_api_key", None)
        try:
            async with asyncio.timeout(timeout_seconds):
                models = await provider.discover_models()
        except TimeoutError:
            return ModelRefresh(
                name,
                "error",
                self.models.get(name, ()),
                error=f"no answer within {timeout_seconds:g}s",
                seconds=time.perf_counter() - started,
            )
        except (ProvaraError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            return ModelRefresh(
                name,
                "error",
                self.models.get(name, ()),
                error=redact(f"{type(exc).__name__}: {exc}", (secret,)),
                seconds=time.perf_counter() - started,
            )
        if models is None:
            return ModelRefresh(
                name,
                "skipped",
                self.models.get(name, ()),
                error="provider cannot list its models; keeping the configured ones",
                seconds=time.perf_counter() - started,
            )
        return ModelRefresh(name, "ok", tuple(models), seconds=time.perf_counter() - started)


def provider_modules(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The module names listed in ``PROVARA_PROVIDER_MODULES`` (comma-separated)."""
    raw = environ.get(PROVIDER_MODULES_ENV, "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def import_provider_modules(names: Iterable[str] | None = None) -> list[str]:
    """Import each module (default: ``PROVARA_PROVIDER_MODULES``) so its registrations run.

    The working directory is importable, as under ``python -m``, so ``my_providers.py``
    beside the user needs no ``PYTHONPATH``. A module that cannot be imported raises a
    one-line :class:`~provara_kit.errors.ConfigurationError` naming it and the cause.
    """
    modules = provider_modules() if names is None else tuple(names)
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the user's code: any failure is reported, in one line
            raise ConfigurationError(_import_failure(module, exc)) from None
    return list(modules)


def _import_failure(module: str, exc: Exception) -> str:
    prefix = f"{PROVIDER_MODULES_ENV} names {module!r}, which"
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and (module == missing or module.startswith(missing + ".")):
        return f"{prefix} is not importable from {os.getcwd()} or the installed packages"
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and not isinstance(exc, SyntaxError):
        last = frames[-1]
        where = f" ({last.filename}, line {last.lineno})"
    return f"{prefix} failed to import: {type(exc).__name__}: {exc}{where}"


def _with_source(spec: ProviderSpec, ep: Any) -> ProviderSpec:
    dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value
    return ProviderSpec(
        name=spec.name,
        factory=spec.factory,
        api_key_env=spec.api_key_env,
        base_url_env=spec.base_url_env,
        default_base_url=spec.default_base_url,
        default_models=spec.default_models,
        wire=spec.wire,
        source=f"entry-point:{dist}",
        api_key_required=spec.api_key_required,
        streaming=spec.streaming,
    )


def default_registry(*, plugins: bool = True) -> Registry:
    """A registry with the built-ins and (by default) every installed adapter package."""
    registry = Registry()
    register_builtins(registry)
    if plugins:
        registry.load_entry_points()
    return registry


REGISTRY: Registry = default_registry()
"""The process-wide registry the module-level functions act on."""

register: Callable[..., ProviderSpec] = REGISTRY.register
register_openai_compatible: Callable[..., ProviderSpec] = REGISTRY.register_openai_compatible
get: Callable[[str], ProviderSpec] = REGISTRY.get
create: Callable[..., Provider] = REGISTRY.create
load_entry_points: Callable[[], list[str]] = REGISTRY.load_entry_points
refresh_models = REGISTRY.refresh_models
