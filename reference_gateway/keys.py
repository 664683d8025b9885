"""A tenant's own provider keys: validated, encrypted, stored, and the caches told.

Keys are named after the provider's environment variable (``FIREWORKS_API_KEY``); the
provider name (``fireworks``) is accepted too. Values are encrypted with the vault, bound
to the tenant id and the key name, before they reach the database; only the ciphertext and
the last four characters (for a masked display) are stored. The JSON API and the dashboard
both go through :class:`ProviderKeys`.
"""

from __future__ import annotations

from provara_kit.registry import Registry
from provara_kit.vault import Vault
from reference_gateway.api.errors import GatewayError
from reference_gateway.logs import SECRETS
from reference_gateway.providers import ProviderPool
from reference_gateway.store import Database
from reference_gateway.store.keys import delete_key, insert_key, list_keys, replace_key
from reference_gateway.types import StoredKey, Tenant

__all__ = ["MAX_KEY_LENGTH", "ProviderKeys"]

MAX_KEY_LENGTH = 4096
_HINT_MIN_LENGTH = 12


class ProviderKeys:
    """Add, list (masked), rotate and delete a tenant's provider keys."""

    def __init__(self, *, db: Database, vault: Vault, registry: Registry, pool: ProviderPool):
        self._db = db
        self._vault = vault
        self._registry = registry
        self._pool = pool

    def key_names(self) -> dict[str, str]:
        """Storable key names -> provider, for every registered provider that takes a key."""
        return {spec.api_key_env: spec.name for spec in self._registry.specs() if spec.api_key_env}

    def resolve_name(self, name: object) -> tuple[str, str]:
        """``(key name, provider)`` for a key name or provider name; a 400 otherwise."""
        names = self.key_names()
        if not isinstance(name, str) or not name.strip():
            raise GatewayError(400, "A key needs a 'name', e.g. FIREWORKS_API_KEY.", param="name")
        name = name.strip()
        if name in names:
            return name, names[name]
        by_provider = {provider: key for key, provider in names.items()}
        if name.lower() in by_provider:
            key = by_provider[name.lower()]
            return key, names[key]
        known = ", ".join(sorted(names))
        raise GatewayError(
            400,
            f"Unknown key name {name!r}: name it after a registered provider's key variable "
            f"({known}).",
            param="name",
            code="unknown_key_name",
        )

    @staticmethod
    def check_value(value: object) -> str:
        """The key value, stripped; a 400 unless it is one line of printable ASCII."""
        if not isinstance(value, str) or not value.strip():
            raise GatewayError(400, "A key needs a non-empty 'value'.", param="value")
        value = value.strip()
        if len(value) > MAX_KEY_LENGTH:
            raise GatewayError(
                400, f"The key is longer than {MAX_KEY_LENGTH} characters.", param="value"
            )
        if not all("!" <= ch <= "~" for ch in value):
            raise GatewayError(
                400,
                "A provider key is printable ASCII without spaces or line breaks.",
                param="value",
            )
        return value

    def _seal(self, tenant: Tenant, name: str, value: str) -> tuple[str, str]:
        SECRETS.add(value)
        ciphertext = self._vault.encrypt(value, tenant=tenant.id, name=name)
        hint = value[-4:] if len(value) >= _HINT_MIN_LENGTH else ""
        return ciphertext, hint

    async def list(self, tenant: Tenant) -> list[StoredKey]:
        return await self._db.read(list_keys, tenant.id)

    async def add(self, tenant: Tenant, name: object, value: object) -> StoredKey:
        """Store a new key; 409 if the tenant has one under that name (rotate it instead)."""
        key_name, provider = self.resolve_name(name)
        ciphertext, hint = self._seal(tenant, key_name, self.check_value(value))
        stored = await self._db.run(insert_key, tenant.id, key_name, provider, ciphertext, hint)
        if stored is None:
            raise GatewayError(
                409,
                f"You already have a {key_name}; rotate it to replace its value.",
                param="name",
                code="key_exists",
            )
        self._pool.invalidate(tenant.id)
        return stored

    async def rotate(self, tenant: Tenant, name: object, value: object) -> StoredKey:
        """Replace a stored key's value; 404 if there is none."""
        key_name, _ = self.resolve_name(name)
        ciphertext, hint = self._seal(tenant, key_name, self.check_value(value))
        stored = await self._db.run(replace_key, tenant.id, key_name, ciphertext, hint)
        if stored is None:
            raise self._missing(key_name)
        self._pool.invalidate(tenant.id)
        return stored

    async def delete(self, tenant: Tenant, name: object) -> str:
        """Delete a stored key and return its name; 404 if there is none."""
        key_name, _ = self.resolve_name(name)
        if not await self._db.run(delete_key, tenant.id, key_name):
            raise self._missing(key_name)
        self._pool.invalidate(tenant.id)
        return key_name

    @staticmethod
    def _missing(key_name: str) -> GatewayError:
        return GatewayError(
            404, f"You have no stored {key_name}.", param="name", code="key_not_found"
        )
