"""Which provider answers a model, and with whose key.

:meth:`ProviderPool.route` resolves the request's ``model``: ``provider/model`` (the
provider part must be registered, or ``local``), or a bare model id looked up in the
models the registry knows (``REGISTRY.models``, refreshed at start-up). It then picks the
key: the tenant's own stored key wins, then the operator's ``<NAME>_API_KEY``; a provider
that needs no key needs none. One provider instance (so one HTTP client and its connection
pool) is built per tenant key or operator default and cached; a tenant key is decrypted
once, when its instance is built, and the cache entry is dropped when the tenant adds,
rotates or deletes a key. A dropped instance is closed as soon as the last request using
it ends (at once when none is).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from provara_kit.errors import ProvaraError, VaultError
from provara_kit.provider import Provider
from provara_kit.registry import Registry
from provara_kit.vault import Vault
from reference_gateway.api.errors import GatewayError
from reference_gateway.local import (
    LOCAL_MODELS,
    LOCAL_PROVIDER,
    LocalFault,
    build_local_provider,
)
from reference_gateway.logs import SECRETS
from reference_gateway.store import Database
from reference_gateway.store.keys import list_keys
from reference_gateway.transport import provider_transport
from reference_gateway.types import KeySource, StoredKey, Tenant

__all__ = ["ProviderPool", "Route"]

logger = logging.getLogger("reference_gateway")


class _Instance:
    """A cached provider instance and the number of requests using it now (``in_flight``).

    Once :meth:`ProviderPool.invalidate` retires it, the last request to release it closes
    it; ``retired`` is then the pool's set of retired instances still open.
    """

    __slots__ = ("_closed", "in_flight", "provider", "retired")

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.in_flight = 0
        self.retired: set[_Instance] | None = None
        self._closed = False

    async def close(self) -> None:
        """Close the provider (once); an error closing it is logged, not raised."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.provider.aclose()
        except Exception as exc:
            logger.warning("error closing a provider: %r", exc)
        finally:
            if self.retired is not None:
                self.retired.discard(self)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes: provider, upstream model id, instance and key source.

    ``owned`` marks a one-off instance (a scripted local fault) that the caller closes
    when the request is done. A cached instance (``cached``) counts the routes not yet
    released: every route the pool hands out must be released exactly once. ``key_hint``
    is the hint of the tenant's stored key that serves it (``None`` for any other key).
    """

    provider_name: str
    model: str
    provider: Provider
    key_source: KeySource
    owned: bool = False
    cached: _Instance | None = None
    key_hint: str | None = None

    @property
    def public_model(self) -> str:
        """``provider/model``, as the gateway names it to clients."""
        return f"{self.provider_name}/{self.model}"

    async def release(self) -> None:
        """The request is done with the instance: close it if the request owned it, or if
        a key change retired it and this was the last request using it."""
        if self.owned:
            await self.provider.aclose()
            return
        cached = self.cached
        if cached is not None:
            cached.in_flight -= 1
            if cached.in_flight == 0 and cached.retired is not None:
                await cached.close()


def _unknown_model(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model '{model}' does not exist or is not routable here. Name it as "
        "provider/model (for example local/echo) or use an id from GET /v1/models.",
        param="model",
        code="model_not_found",
    )


class ProviderPool:
    """Resolves models to providers and owns every provider instance the gateway uses."""

    def __init__(
        self,
        *,
        registry: Registry,
        vault: Vault,
        db: Database,
        environ: Mapping[str, str],
        stream_timeout: float,
        local_base_url: str | None,
        fast_transport: bool = True,
    ) -> None:
        self.registry = registry
        self._fast_transport = fast_transport
        self._vault = vault
        self._db = db
        self._environ = environ
        self._stream_timeout = stream_timeout
        self._local_base_url = local_base_url
        self._instances: dict[tuple[str, str], _Instance] = {}
        self._retired: set[_Instance] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._tenant_keys: dict[str, dict[str, StoredKey]] = {}
        self._generation: dict[str, int] = {}
        self._index: dict[str, tuple[str, ...]] = {}
        self.catalog_version = 0
        for spec in registry.specs():
            key = spec.api_key(environ)
            if key:
                SECRETS.add(key)
        self.rebuild_index()

    # -- models ----------------------------------------------------------------------------

    @property
    def local_enabled(self) -> bool:
        return self._local_base_url is not None

    def provider_models(self) -> dict[str, tuple[str, ...]]:
        """Every provider's known models (``local`` first when enabled)."""
        models: dict[str, tuple[str, ...]] = {}
        if self.local_enabled:
            models[LOCAL_PROVIDER] = tuple(LOCAL_MODELS)
        for name in self.registry.names():
            models[name] = tuple(self.registry.models.get(name, ()))
        return models

    def rebuild_index(self) -> None:
        """Rebuild the bare-model-id index from the registry's current model lists."""
        index: dict[str, list[str]] = {}
        for provider, models in self.provider_models().items():
            for model in models:
                index.setdefault(model, []).append(provider)
        self._index = {model: tuple(providers) for model, providers in index.items()}
        self.catalog_version += 1

    def is_provider(self, name: str) -> bool:
        return (name == LOCAL_PROVIDER and self.local_enabled) or name in self.registry

    def candidates(self, model: str) -> list[tuple[str, str]]:
        """``(provider, model id)`` pairs ``model`` may mean, best first; ``[]`` if none."""
        provider, slash, rest = model.partition("/")
        if slash and rest and self.is_provider(provider):
            if provider == LOCAL_PROVIDER and rest not in LOCAL_MODELS:
                return []
            return [(provider, rest)]
        return [(p, model) for p in self._index.get(model, ())]

    # -- keys ------------------------------------------------------------------------------

    async def tenant_keys(self, tenant_id: str) -> dict[str, StoredKey]:
        """The tenant's stored keys by provider (cached until :meth:`invalidate`)."""
        keys = self._tenant_keys.get(tenant_id)
        if keys is not None:
            return keys
        generation = self._generation.get(tenant_id, 0)
        stored = await self._db.read(list_keys, tenant_id)
        keys = {key.provider: key for key in stored}
        if self._generation.get(tenant_id, 0) == generation:
            self._tenant_keys[tenant_id] = keys
        return keys

    def invalidate(self, tenant_id: str) -> None:
        """Forget a tenant's cached keys and instances (after add, rotate or delete)."""
        self._generation[tenant_id] = self._generation.get(tenant_id, 0) + 1
        self._tenant_keys.pop(tenant_id, None)
        for cache_key in [k for k in self._instances if k[0] == tenant_id]:
            self._retire(self._instances.pop(cache_key))
        self.catalog_version += 1

    def _retire(self, cached: _Instance) -> None:
        """Close ``cached`` when its last request releases it, now if none holds it."""
        cached.retired = self._retired
        self._retired.add(cached)
        if cached.in_flight:
            return
        try:
            task = asyncio.get_running_loop().create_task(cached.close())
        except RuntimeError:
            return  # not on the event loop: it is closed at shutdown
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def key_source(self, provider: str, tenant_keys: Mapping[str, StoredKey]) -> KeySource | None:
        """Whose key would serve ``provider``; ``None`` when no key is available."""
        if provider == LOCAL_PROVIDER:
            return "local"
        if provider in tenant_keys:
            return "tenant"
        spec = self.registry.get(provider)
        if spec.api_key_env is None:
            return "none"
        if spec.api_key(self._environ):
            return "operator"
        return None if spec.api_key_required else "none"

    async def usable_providers(self, tenant: Tenant) -> list[str]:
        """Providers ``tenant`` can send requests to now."""
        keys = await self.tenant_keys(tenant.id)
        return [p for p in self.provider_models() if self.key_source(p, keys) is not None]

    # -- routing ---------------------------------------------------------------------------

    async def route(
        self, tenant: Tenant, model: str, *, local_fault: str | None = None, attempt: int = 0
    ) -> Route:
        """The route for ``model`` on behalf of ``tenant``; a 4xx :class:`GatewayError` if
        the model is unknown or no key can serve it. ``attempt`` counts the request's
        earlier attempts at this model (a local fault may spare the later ones)."""
        candidates = self.candidates(model)
        if not candidates:
            raise _unknown_model(model)
        keys = await self.tenant_keys(tenant.id)
        for provider, model_id in candidates:
            source = self.key_source(provider, keys)
            if source is None:
                continue
            if source == "local":
                return self._local_route(model_id, local_fault, attempt)
            cached = self._instance(tenant, provider, source, keys)
            cached.in_flight += 1
            hint = keys[provider].hint if source == "tenant" else None
            return Route(provider, model_id, cached.provider, source, cached=cached, key_hint=hint)
        provider = candidates[0][0]
        env = self.registry.get(provider).api_key_env
        raise GatewayError(
            403,
            f"No API key is configured for provider '{provider}'. Store one named {env} at "
            f"/dashboard/api-keys (or POST /api/provider-keys), or ask the operator to set "
            f"{env} for the gateway.",
            param="model",
            code="provider_key_missing",
        )

    def _transport(self) -> httpx.AsyncBaseTransport | None:
        """The transport for a new provider instance (each instance owns its own)."""
        return provider_transport() if self._fast_transport else None

    def _local_route(self, model: str, fault_text: str | None, attempt: int = 0) -> Route:
        base_url = self._local_base_url
        if base_url is None:  # pragma: no cover - candidates() excludes local then
            raise _unknown_model(f"{LOCAL_PROVIDER}/{model}")
        if fault_text is not None:
            try:
                fault = LocalFault.parse(fault_text)
            except ValueError as exc:
                raise GatewayError(
                    400, f"Invalid x-provara-local-fault header: {exc}.", code="invalid_header"
                ) from None
            if not fault.applies(model, attempt):
                return self._local_route(model, None)
            provider = build_local_provider(
                model,
                base_url,
                stream_timeout=self._stream_timeout,
                fault=fault,
                transport=self._transport(),
            )
            return Route(LOCAL_PROVIDER, model, provider, "local", owned=True)
        cache_key = ("", f"{LOCAL_PROVIDER}/{model}")
        cached = self._instances.get(cache_key)
        if cached is None:
            instance = build_local_provider(
                model, base_url, stream_timeout=self._stream_timeout, transport=self._transport()
            )
            cached = _Instance(instance)
            self._instances[cache_key] = cached
        cached.in_flight += 1
        return Route(LOCAL_PROVIDER, model, cached.provider, "local", cached=cached)

    def _instance(
        self, tenant: Tenant, provider: str, source: KeySource, keys: Mapping[str, StoredKey]
    ) -> _Instance:
        cache_key = (tenant.id if source == "tenant" else "", provider)
        cached = self._instances.get(cache_key)
        if cached is not None:
            return cached
        api_key: str | None = None
        if source == "tenant":
            stored = keys[provider]
            try:
                api_key = self._vault.decrypt(stored.ciphertext, tenant=tenant.id, name=stored.name)
            except VaultError as exc:
                logger.warning("cannot decrypt tenant %s's %s: %s", tenant.id, stored.name, exc)
                raise GatewayError(
                    500,
                    f"Your stored {stored.name} cannot be decrypted by this gateway (its "
                    "master key changed). Store the key again at /dashboard/api-keys, or ask "
                    "the operator to set PROVARA_MASTER_KEY_PREVIOUS.",
                    type="server_error",
                    code="stored_key_unreadable",
                ) from None
            SECRETS.add(api_key)
        try:
            instance = self.registry.create(
                provider, api_key=api_key, environ=self._environ, transport=self._transport()
            )
        except ProvaraError as exc:
            logger.error("cannot build provider %s: %s", provider, exc)
            raise GatewayError(
                500,
                f"Provider '{provider}' is misconfigured on this gateway; see its log.",
                type="server_error",
                code="provider_misconfigured",
            ) from None
        if hasattr(instance, "stream_timeout"):
            instance.stream_timeout = self._stream_timeout
        cached = _Instance(instance)
        self._instances[cache_key] = cached
        return cached

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every instance, cached or retired."""
        instances = [*self._instances.values(), *self._retired]
        self._instances.clear()
        await asyncio.gather(*self._closing, *(cached.close() for cached in instances))
