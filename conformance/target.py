"""What the suite runs against: a provider factory, its wire dialect, models and pricing."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, entry_points, version
from pathlib import Path
from typing import Any

import httpx

from conformance.replay import Fixture, corpus_fixtures, default_corpus, load_fixtures
from provara_kit.errors import ConfigurationError
from provara_kit.nostream import without_streaming
from provara_kit.pricing import MODEL_PRICING
from provara_kit.provider import Provider
from provara_kit.registry import (
    PROVIDER_MODULES_ENV,
    REGISTRY,
    ProviderFactory,
    Registry,
    import_provider_modules,
)
from provara_kit.testing import DIALECTS, WireDialect

__all__ = [
    "DIALECT_ENTRY_POINT_GROUP",
    "ConformanceTarget",
    "registered_targets",
    "resolve_dialect",
]

DIALECT_ENTRY_POINT_GROUP = "provara.dialects"
SCRIPTED_BASE_URL = "https://conformance.invalid/v1"
"""Where scripted checks point an adapter that names no base URL (never reached)."""


def registered_targets(names: Iterable[str], registry: Registry = REGISTRY) -> list[str]:
    """The providers to check: ``names``, or every registered one when there are none.

    The modules in ``PROVARA_PROVIDER_MODULES`` are imported first, as the gateway does, so
    a path-A provider is a target like any other. A module that cannot be imported, or a
    name nobody registered, raises :class:`LookupError` saying what is known and how to
    register more.
    """
    try:
        import_provider_modules()
    except ConfigurationError as exc:
        raise LookupError(str(exc)) from None
    requested = list(names)
    unknown = [name for name in requested if name not in registry]
    if unknown:
        raise LookupError(
            f"no registered provider named {', '.join(map(repr, unknown))}; registered: "
            f"{', '.join(registry.names())}. Register one of yours in a module named in "
            f"{PROVIDER_MODULES_ENV} (e.g. {PROVIDER_MODULES_ENV}=my_providers, from the "
            "directory that holds my_providers.py), or install its adapter package "
            "(nox -s conformance -- PATH)"
        )
    return requested or registry.names()


def resolve_dialect(wire: str) -> WireDialect:
    """The dialect named ``wire``: a built-in one, or one an adapter package ships under the
    ``provara.dialects`` entry-point group (``acme-native = acme_pkg.dialect:AcmeDialect``)."""
    if wire in DIALECTS:
        return DIALECTS[wire]
    for ep in entry_points(group=DIALECT_ENTRY_POINT_GROUP):
        if ep.name == wire:
            loaded = ep.load()
            dialect = loaded() if isinstance(loaded, type) else loaded
            if not isinstance(dialect, WireDialect):
                raise TypeError(f"entry point {ep.value} is not a WireDialect")
            return dialect
    known = ", ".join(sorted(DIALECTS))
    raise LookupError(
        f"no wire dialect named {wire!r}: built-in ones are {known}; a native adapter "
        f"ships its own under the {DIALECT_ENTRY_POINT_GROUP!r} entry-point group"
    )


@dataclass(frozen=True)
class ConformanceTarget:
    """One provider under test.

    ``factory`` builds the adapter from a key, a base URL and an httpx transport (the
    registry's :class:`~provara_kit.registry.ProviderFactory`). ``dialect`` scripts its wire
    for the hermetic checks. ``expected_failures`` maps a check id to the reason the
    adapter is known not to pass it: those checks run as strict xfails.
    ``supported_params`` and ``unsupported_params`` declare which request parameters the
    adapter carries and which it refuses (``None``: what the adapter class declares; see
    :func:`conformance.params.declared_params`).
    ``streaming=False`` checks the adapter with its streaming turned off, as an operator's
    ``<NAME>_STREAMING=0`` deploys it: the stream checks run against
    :func:`~provara_kit.nostream.without_streaming` and those about the upstream's stream
    itself are skipped, saying why.
    """

    name: str
    factory: ProviderFactory
    dialect: WireDialect
    models: tuple[str, ...] = ()
    pricing: Mapping[str, Any] = field(default_factory=lambda: MODEL_PRICING)
    api_key_env: str | None = None
    base_url: str | None = None
    adapter: str = ""
    adapter_version: str = "unknown"
    expected_failures: Mapping[str, str] = field(default_factory=dict)
    fixtures_dir: Path | None = None
    corpus_dir: Path | None = None
    supported_params: frozenset[str] | None = None
    unsupported_params: frozenset[str] | None = None
    streaming: bool = True

    def __post_init__(self) -> None:
        from conformance.checks import CHECKS

        unknown = sorted(set(self.expected_failures) - set(CHECKS))
        if unknown:
            raise ValueError(
                f"expected_failures of {self.name} names unknown checks {unknown}; "
                f"the check ids are: {', '.join(CHECKS)}"
            )

    def recorded_fixtures(self) -> list[Fixture]:
        """Fixtures recorded for this adapter, plus the wire corpus's recordings."""
        fixtures: list[Fixture] = []
        if self.fixtures_dir is not None and self.fixtures_dir.is_dir():
            fixtures += load_fixtures(self.fixtures_dir)
        if self.corpus_dir is not None and self.corpus_dir.is_dir():
            dialect = self.dialect
            fixtures += corpus_fixtures(
                self.corpus_dir,
                routes=lambda path: (
                    dialect.is_completion_path(path) or dialect.is_models_path(path)
                ),
            )
        return fixtures

    @property
    def model(self) -> str:
        """The model the scripted checks ask for."""
        return self.models[0] if self.models else "conformance-model"

    def build(
        self,
        *,
        api_key: str | None,
        transport: httpx.AsyncBaseTransport | None,
        base_url: str | None = None,
        stream_timeout_ms: int | None = None,
        live: bool = False,
    ) -> Provider:
        """A fresh adapter instance; ``stream_timeout_ms`` is applied the way operators do,
        through ``PROVARA_STREAM_TIMEOUT_MS``. Scripted runs point an adapter with no base
        URL at a placeholder and give it the key in the wire's scripted form
        (:meth:`~provara_kit.testing.WireDialect.scripted_key`); ``live`` ones leave both to
        the adapter's own defaults."""
        url = base_url or self.base_url or (None if live else SCRIPTED_BASE_URL)
        if api_key is not None and not live:
            api_key = self.dialect.scripted_key(api_key)
        with _env("PROVARA_STREAM_TIMEOUT_MS", stream_timeout_ms):
            provider = self.factory(api_key=api_key, base_url=url, transport=transport)
        return provider if self.streaming else without_streaming(provider)

    @classmethod
    def from_registry(
        cls, name: str, registry: Registry = REGISTRY, *, fixtures_dir: Path | None = None
    ) -> ConformanceTarget:
        """The target for a registered provider; its dialect comes from the spec's ``wire``,
        its recordings from ``fixtures_dir`` and the wire corpus; streaming is off when
        the spec or ``<NAME>_STREAMING`` turns it off, as for the gateway."""
        spec = registry.get(name)
        probe = spec.factory(api_key=None, base_url=spec.default_base_url, transport=None)
        adapter_cls = type(probe)
        dialect = resolve_dialect(spec.wire)
        return cls(
            name=name,
            factory=spec.factory,
            dialect=dialect,
            models=registry.models.get(name) or spec.default_models,
            api_key_env=spec.api_key_env,
            base_url=spec.base_url(),
            adapter=f"{adapter_cls.__module__}.{adapter_cls.__qualname__}",
            adapter_version=_distribution_version(adapter_cls.__module__),
            corpus_dir=_corpus_folder(name),
            fixtures_dir=fixtures_dir,
            streaming=spec.streams(),
        )


def _corpus_folder(name: str) -> Path | None:
    corpus = default_corpus()
    return corpus / name if corpus is not None and (corpus / name).is_dir() else None


def _distribution_version(module: str) -> str:
    top = module.split(".", 1)[0]
    for dist in (top.replace("_", "-"), top):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    if top == "provara_kit":
        from provara_kit import __version__

        return __version__
    return "unknown"


@contextmanager
def _env(name: str, value: int | None) -> Iterator[None]:
    if value is None:
        yield
        return
    old = os.environ.get(name)
    os.environ[name] = str(value)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
