"""Metric label values of bounded cardinality.

Tenants are created by the operator and models come from the registry, the configuration
or a discovery: those are labels. Anything a client typed (a model the registry does not
list, an odd error code) becomes ``unknown`` or ``other`` rather than a new time series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol

from reference_gateway.outcome import Attempt, Outcome

__all__ = ["NO_TENANT", "UNKNOWN", "Catalog", "ModelLabels", "error_label"]

UNKNOWN = "unknown"
"""The provider and model of a request that reached no known model."""
NO_TENANT = "-"
"""The tenant of a request whose credentials were refused (no tenant name starts so)."""

_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def error_label(error: str | None) -> str:
    """An error code as a label: ``""`` for none, ``other`` for anything not code-shaped."""
    if error is None:
        return ""
    return error if _CODE.fullmatch(error) else "other"


class Catalog(Protocol):
    """What :class:`ModelLabels` asks about the models there are (a ``ProviderPool``)."""

    @property
    def catalog_version(self) -> int: ...

    def provider_models(self) -> Mapping[str, tuple[str, ...]]: ...


class ModelLabels:
    """``(provider, model)`` label pairs, limited to models the gateway knows.

    ``extra`` are ``provider/model`` names the operator configured (the default model,
    fallbacks, the judge): known even when the provider lists no models.
    """

    def __init__(self, catalog: Catalog | None, extra: Iterable[str] = ()) -> None:
        self._catalog = catalog
        self._extra = frozenset(extra)
        self._version = -1
        self._known: frozenset[str] = self._extra
        self._bare: frozenset[str] = frozenset(name.partition("/")[2] for name in self._extra)

    def _refresh(self) -> frozenset[str]:
        catalog = self._catalog
        if catalog is None:
            return self._known
        version = catalog.catalog_version
        if version != self._version:
            known = {
                f"{provider}/{model}"
                for provider, models in catalog.provider_models().items()
                for model in models
            }
            self._known = frozenset(known | self._extra)
            self._bare = frozenset(name.partition("/")[2] for name in self._known)
            self._version = version
        return self._known

    def pair(self, provider: str, model: str) -> tuple[str, str]:
        """``(provider, model)`` if the gateway knows that model, else ``unknown`` twice."""
        if f"{provider}/{model}" in self._refresh():
            return provider, model
        return UNKNOWN, UNKNOWN

    def name(self, public_model: str | None) -> str:
        """``provider/model`` if known, else ``unknown``."""
        if public_model is not None and public_model in self._refresh():
            return public_model
        return UNKNOWN

    def known(self, name: str) -> bool:
        """Whether ``name`` (``provider/model`` or a bare model id) is a model here."""
        return name in self._refresh() or name in self._bare

    def of_attempt(self, attempt: Attempt) -> tuple[str, str]:
        return self.pair(attempt.provider, attempt.model)

    def of_outcome(self, outcome: Outcome) -> tuple[str, str]:
        """The served model, else the last one tried, else ``unknown``."""
        if outcome.served_model is not None:
            provider, _, model = outcome.served_model.partition("/")
            return self.pair(provider, model)
        if outcome.attempts:
            return self.of_attempt(outcome.attempts[-1])
        return UNKNOWN, UNKNOWN
