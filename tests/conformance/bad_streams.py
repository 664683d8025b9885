"""Known-bad adapters for the stream-ending rules of ``stream-timeout``."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.sse import ServerSentEvent
from provara_kit.streaming import UpstreamEvent
from provara_kit.types import ChatRequest
from tests.conformance.case import Case


class WaitsForConnectionClose(OpenAICompatibleProvider):
    """Skips ``[DONE]`` ("the loop ends when the server closes the body"): a server that
    keeps the connection open after the marker leaves the client waiting until the idle
    timeout turns a finished answer into an error."""

    async def _map_stream(
        self, events: AsyncIterator[ServerSentEvent | None], request: ChatRequest
    ) -> AsyncGenerator[UpstreamEvent, None]:
        async def without_done() -> AsyncGenerator[ServerSentEvent | None, None]:
            async for sse in events:
                yield None if sse is not None and sse.data == "[DONE]" else sse

        async for event in super()._map_stream(without_done(), request):
            yield event


CASES: tuple[Case, ...] = (
    Case(
        "stream-timeout",
        WaitsForConnectionClose,
        r"a connection held open after the terminal marker ended the stream with "
        r"StreamTimeoutError",
    ),
)


class PassesClientStreamFlag(OpenAICompatibleProvider):
    """Copies the client's body through (``payload.update(request.passthrough())``) after
    setting its own ``stream`` flag: a client body that says ``stream: true`` turns
    ``complete`` into a streamed request whose SSE body it then fails to parse."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        payload.update(request.passthrough())
        return payload


CASES += (
    Case(
        "request-shape",
        PassesClientStreamFlag,
        r"complete of a request that says stream=True: the body asks for a stream",
    ),
)


class ReplacesStreamOptions(OpenAICompatibleProvider):
    """Sets ``payload["stream_options"] = {"include_usage": True}`` to get usage, replacing
    the options the client sent (``include_obfuscation: false`` and the like)."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        if stream:
            payload["stream_options"] = {"include_usage": True}
        return payload


CASES += (
    Case(
        "request-shape",
        ReplacesStreamOptions,
        r"stream of a request that says stream=False: the client's stream_options "
        r"\{'include_obfuscation': False\} were dropped",
    ),
)
