"""``GET /v1/models``: the models a tenant can route to now, with their list prices.

A model is listed when its provider is usable by the tenant (the tenant stored a key, the
operator set one, the provider needs none, or it is ``local``). ``pricing`` is USD per 1M
tokens as decimal strings, or ``null`` for an unpriced model (its cost is unknown, not
zero). The rendered body is cached per set of usable providers and rebuilt when keys or
model lists change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from provara_kit.errors import ConfigurationError
from provara_kit.pricing import MODEL_PRICING, lookup_price
from reference_gateway.api.errors import GatewayError
from reference_gateway.local import LOCAL_PRICING, LOCAL_PROVIDER

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["Models", "model_entry", "routes"]

logger = logging.getLogger("reference_gateway")


def _price(provider: str, model: str) -> dict[str, str] | None:
    table: Mapping[str, tuple[object, object]] = (
        LOCAL_PRICING if provider == LOCAL_PROVIDER else MODEL_PRICING
    )
    try:
        price = lookup_price(provider, model, table)
    except ConfigurationError as exc:
        logger.warning("bad pricing row for %s/%s: %s", provider, model, exc)
        return None
    if price is None:
        return None
    return {
        "input_per_million": format(price.input_per_million.normalize(), "f"),
        "output_per_million": format(price.output_per_million.normalize(), "f"),
    }


def model_entry(provider: str, model: str) -> dict[str, Any]:
    """One model object, OpenAI's shape plus ``pricing``."""
    return {
        "id": f"{provider}/{model}",
        "object": "model",
        "created": 0,
        "owned_by": provider,
        "pricing": _price(provider, model),
    }


class Models:
    """The list and retrieve endpoints, bound to one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._version = -1
        self._cache: dict[tuple[str, ...], tuple[bytes, dict[str, dict[str, Any]]]] = {}

    async def _catalog(self, request: Request) -> tuple[bytes, dict[str, dict[str, Any]]]:
        gateway = self.gateway
        tenant = await gateway.auth.authenticate(request.headers.get("authorization"))
        pool = gateway.providers
        usable = tuple(await pool.usable_providers(tenant))
        if self._version != pool.catalog_version:
            self._cache.clear()
            self._version = pool.catalog_version
        cached = self._cache.get(usable)
        if cached is None:
            models = pool.provider_models()
            entries = {
                entry["id"]: entry
                for provider in usable
                for entry in (model_entry(provider, m) for m in models.get(provider, ()))
            }
            body = orjson.dumps({"object": "list", "data": list(entries.values())})
            cached = self._cache[usable] = (body, entries)
        return cached

    async def list(self, request: Request) -> Response:
        body, _ = await self._catalog(request)
        return Response(body, media_type="application/json")

    async def retrieve(self, request: Request) -> Response:
        _, entries = await self._catalog(request)
        model = request.path_params["model"]
        entry = entries.get(model)
        if entry is None:
            raise GatewayError(
                404,
                f"The model '{model}' does not exist or is not routable for you.",
                param="model",
                code="model_not_found",
            )
        return Response(orjson.dumps(entry), media_type="application/json")


def routes(gateway: Gateway) -> list[Route]:
    models = Models(gateway)
    return [
        Route("/v1/models", models.list, methods=["GET"]),
        Route("/v1/models/{model:path}", models.retrieve, methods=["GET"]),
    ]
