"""Known-bad adapters for ``model-discovery`` and ``error-in-200``: model listings read
the way their authors' one provider wrote them, and 200s trusted to be answers."""

from __future__ import annotations

from typing import Any

import httpx

from provara_kit import json_codec
from provara_kit.errors import MalformedResponseError, ProviderStatusError
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.base import ParsedCompletion
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from tests.conformance.case import Case


class ReadsFirstPageOnly(AnthropicProvider):
    """Reads one page of ``GET /v1/models`` and ignores ``has_more``: past the first 20
    models (or a server's smaller pages), the provider's newest models never show up."""

    async def discover_models(self) -> list[str] | None:
        body = await self._get_json("/models")
        return [str(m["id"]) for m in body["data"] if isinstance(m, dict) and m.get("id")]


class KeepsDisplayName(AnthropicProvider):
    """Lists each model's ``display_name`` ("Claude Sonnet 4") instead of its ``id``: the
    gateway then routes requests to model names the API does not accept."""

    async def discover_models(self) -> list[str] | None:
        body = await self._get_json("/models")
        return [str(m.get("display_name") or m["id"]) for m in body["data"]]


class EmptyListIsNone(OpenAICompatibleProvider):
    """``return models or None``: an account with no models yet reads as "cannot list",
    so the gateway keeps serving models the provider no longer offers."""

    async def discover_models(self) -> list[str] | None:
        return await super().discover_models() or None


class AuthFailureIsNoModels(OpenAICompatibleProvider):
    """Catches every status error on the listing and returns ``[]``: a revoked key wipes
    the provider's models instead of surfacing as an authentication error."""

    async def discover_models(self) -> list[str] | None:
        try:
            return await super().discover_models()
        except ProviderStatusError:
            return []


class IndexesEveryEntryId(OpenAICompatibleProvider):
    """``[entry["id"] for entry in body["data"]]``: an entry that names no model raises
    ``KeyError``, and a bare-array list (Together) a ``TypeError``; neither is typed."""

    async def discover_models(self) -> list[str] | None:
        body = await self._get_json("/models")
        return [str(entry["id"]) for entry in body["data"]]


class ParsesListingWithJSONLoads(OpenAICompatibleProvider):
    """Reads the listing with ``json.loads`` straight off the response: a proxy's HTML
    page or a cut body raises ``JSONDecodeError``, not a malformed-response error."""

    async def _get_json(self, path: str) -> Any:
        response = await self.client.get(path)
        if response.status_code >= 400:
            raise self._error(response, response.content)
        return json_codec.loads(response.content)


class ListsWithoutVersionHeader(AnthropicProvider):
    """Lists models with a plain client that sends only the key: without
    ``anthropic-version`` the real API answers 400, so discovery always fails."""

    async def _get_json(self, path: str) -> Any:
        headers = {"x-api-key": self._api_key or ""}
        transport = self._transport
        async with httpx.AsyncClient(base_url=self.base_url, transport=transport) as client:
            response = await client.get(path, headers=headers)
        if response.status_code >= 400:
            raise self._error(response, response.content)
        return self._decode_json(response.content)


class ListingErrorIsShapeError(AnthropicProvider):
    """Reads any listing without a ``data`` list as "unexpected body shape": a 200 that
    carries the API's error object loses its message, and the operator sees no reason."""

    async def _get_json(self, path: str) -> Any:
        body = await super()._get_json(path)
        if not isinstance(body, dict) or "data" not in body:
            raise MalformedResponseError(
                f"{self.name} /models answered with an unexpected body shape", provider=self.name
            )
        return body


class DropsDefaultModels(OpenAICompatibleProvider):
    """Forgets to pass ``default_models`` on to the base class: until discovery has run
    (or when it fails) the gateway has no models for this provider at all."""

    def __init__(self, **options: Any) -> None:
        options.pop("default_models", None)
        super().__init__(**options)


class ErrorBodyIsEmptyAnswer(OpenAICompatibleProvider):
    """Reads ``body.get("choices") or [{}]``: OpenRouter's 200 with an ``error`` object
    becomes an empty, successful answer, billed and cached as if the model said nothing."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        usage = body.get("usage") or {}
        choice = (body.get("choices") or [{}])[0]
        return ParsedCompletion(
            text=(choice.get("message") or {}).get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            model=body.get("model"),
        )


class ReadsChoicesFirst(OpenAICompatibleProvider):
    """Indexes ``body["choices"]`` before looking for an error: a 200 error body ends as
    "unexpected body shape: KeyError" and the provider's explanation is lost."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        body["choices"]
        return super()._parse_completion(body)


class ErrorBodyUnscrubbed(AnthropicProvider):
    """Raises the 200 error body's message as the upstream wrote it: a provider that
    echoes the key it was given puts the key into logs and client responses."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        if isinstance(body, dict) and body.get("type") == "error":
            raise ProviderStatusError(str(body["error"]["message"]), status_code=200)
        return super()._parse_completion(body)


CASES: tuple[Case, ...] = (
    Case(
        "model-discovery",
        ReadsFirstPageOnly,
        r"the model list in pages of 2: lost \[.*\] \(returned 2 of 8 ids\)",
    ),
    Case(
        "model-discovery",
        KeepsDisplayName,
        r"the model list: lost \[.*'acme-large'.*\]; added \[.*'Acme Large'",
    ),
    Case(
        "model-discovery",
        EmptyListIsNone,
        r"an empty model list as OpenAI sends it: returned None, expected \[\]",
    ),
    Case(
        "model-discovery",
        AuthFailureIsNoModels,
        r"HTTP 401 on the model list: returned \[\], expected AuthenticationError "
        r"\(an empty list wipes",
    ),
    Case(
        "model-discovery",
        IndexesEveryEntryId,
        r"the model list with entries that carry no id: raised KeyError",
    ),
    Case(
        "model-discovery",
        ParsesListingWithJSONLoads,
        r"a 200 model list that is an HTML page: raised JSONDecodeError",
    ),
    Case(
        "model-discovery",
        ListsWithoutVersionHeader,
        r"the model list: header anthropic-version None, expected '2023-06-01'",
    ),
    Case(
        "model-discovery",
        ListingErrorIsShapeError,
        r"a 200 model list that is the wire's error body: raised MalformedResponseError "
        r"\(.*unexpected body shape\), expected a provider error with the upstream's words",
    ),
    Case(
        "model-discovery",
        DropsDefaultModels,
        r"provider\.default_models \(\) lacks the target's models \['acme-large'\]",
    ),
    Case(
        "error-in-200",
        ErrorBodyIsEmptyAnswer,
        r"200 with the wire's 400 error body \(complete\): returned an answer \(text ''",
    ),
    Case(
        "error-in-200",
        ReadsChoicesFirst,
        r"200 with the wire's 429 error body \(complete\): the upstream's words are lost: "
        r".*KeyError",
    ),
    Case(
        "error-in-200",
        ErrorBodyUnscrubbed,
        r"200 with the wire's 502 error body \(complete\): the API key leaks",
    ),
)
