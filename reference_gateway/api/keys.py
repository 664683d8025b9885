"""The JSON API for a tenant's own provider keys (the dashboard page is built on it).

=========================================  =================================================
``GET /api/provider-keys``                 the tenant's keys, masked, and the storable names
``POST /api/provider-keys``                ``{"name": "FIREWORKS_API_KEY", "value": "..."}``
                                           adds a key (201; 409 if it exists)
``POST /api/provider-keys/{name}/rotate``  ``{"value": "..."}`` replaces its value (404 if none)
``DELETE /api/provider-keys/{name}``       deletes it (404 if none)
=========================================  =================================================

Values never come back: only the last four characters, masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reference_gateway.api.http import JSONResponse, read_json_object
from reference_gateway.types import StoredKey

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["KeysAPI", "key_object", "routes"]

_BODY_LIMIT = 64 * 1024


def key_object(key: StoredKey) -> dict[str, Any]:
    """A stored key as the API shows it: no value, only a masked hint."""
    return {
        "object": "provider_key",
        "name": key.name,
        "provider": key.provider,
        "masked": key.masked,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
    }


class KeysAPI:
    """The endpoints, bound to one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def list(self, request: Request) -> Response:
        gateway = self.gateway
        tenant = await gateway.auth.authenticate(request.headers.get("authorization"))
        keys = await gateway.keys.list(tenant)
        return JSONResponse(
            {
                "object": "list",
                "data": [key_object(key) for key in keys],
                "available_names": sorted(gateway.keys.key_names()),
            }
        )

    async def add(self, request: Request) -> Response:
        gateway = self.gateway
        tenant = await gateway.auth.authenticate(request.headers.get("authorization"))
        body = await read_json_object(request, _BODY_LIMIT)
        key = await gateway.keys.add(tenant, body.get("name"), body.get("value"))
        return JSONResponse(key_object(key), status_code=201)

    async def rotate(self, request: Request) -> Response:
        gateway = self.gateway
        tenant = await gateway.auth.authenticate(request.headers.get("authorization"))
        body = await read_json_object(request, _BODY_LIMIT)
        key = await gateway.keys.rotate(tenant, request.path_params["name"], body.get("value"))
        return JSONResponse(key_object(key))

    async def delete(self, request: Request) -> Response:
        gateway = self.gateway
        tenant = await gateway.auth.authenticate(request.headers.get("authorization"))
        name = await gateway.keys.delete(tenant, request.path_params["name"])
        return JSONResponse({"object": "provider_key", "name": name, "deleted": True})


def routes(gateway: Gateway) -> list[Route]:
    api = KeysAPI(gateway)
    return [
        Route("/api/provider-keys", api.list, methods=["GET"]),
        Route("/api/provider-keys", api.add, methods=["POST"]),
        Route("/api/provider-keys/{name}/rotate", api.rotate, methods=["POST"]),
        Route("/api/provider-keys/{name}", api.delete, methods=["DELETE"]),
    ]
