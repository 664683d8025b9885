"""Anthropic's token counting: ``POST /v1/messages/count_tokens``.

:class:`AnthropicTokenCounter` is the ``token_counter`` of an
:class:`~provara_kit.providers.anthropic.AnthropicProvider` (and of Messages-shaped
providers that name a ``count_tokens_path``): it counts what the upstream left out of its
usage, through the provider's client.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from provara_kit.counters import DEFAULT_COUNT_TIMEOUT, CountMethod, TokenCounter
from provara_kit.errors import MalformedResponseError
from provara_kit.providers.anthropic_mapping import token_count
from provara_kit.types import ChatRequest

if TYPE_CHECKING:
    from provara_kit.providers.anthropic import AnthropicProvider

__all__ = ["AnthropicTokenCounter"]


class AnthropicTokenCounter(TokenCounter):
    """Counts with Anthropic's ``POST /v1/messages/count_tokens`` (free, rate-limited apart).

    The body is the messages request's ``model``, ``system``, ``messages`` and ``tools``;
    the answer's ``input_tokens`` is the count. Output is counted as what an assistant turn
    holding the text adds to the prompt (two counts, asked together), so it includes the
    few tokens that frame a turn.
    """

    method: ClassVar[CountMethod] = "count-endpoint"

    def __init__(
        self,
        provider: AnthropicProvider,
        *,
        path: str = "/messages/count_tokens",
        timeout: float = DEFAULT_COUNT_TIMEOUT,
    ) -> None:
        """Count through ``provider``'s client (its key, version headers and transport)."""
        self._provider = provider
        self.path = path
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"AnthropicTokenCounter(provider={self._provider.name!r}, path={self.path!r})"

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        payload = self._provider._build_payload(request, stream=False)
        return {k: payload[k] for k in ("model", "system", "messages", "tools") if k in payload}

    async def count_input(self, request: ChatRequest) -> int:
        return await self.token_count(self._body(request))

    async def count_output(self, text: str, request: ChatRequest) -> int:
        # The API refuses an empty turn and a final assistant turn ending in whitespace.
        text = text.rstrip()
        if not text:
            return 0
        body = self._body(request)
        answered = {**body, "messages": [*body["messages"], {"role": "assistant", "content": text}]}
        before, after = await asyncio.gather(self.token_count(body), self.token_count(answered))
        return max(after - before, 0)

    async def token_count(self, body: dict[str, Any]) -> int:
        provider = self._provider
        try:
            response = await provider._post(body, stream=False, path=self.path)
        except httpx.HTTPError as exc:
            raise provider._connection_error(exc) from None
        if response.status_code >= 400:
            raise provider._error(response, response.content)
        answer = provider._decode_json(response.content)
        count = token_count(answer.get("input_tokens")) if isinstance(answer, dict) else None
        if count is None:
            raise MalformedResponseError(
                f"{provider.name} {self.path} answered without an input_tokens count",
                provider=provider.name,
            )
        return count
