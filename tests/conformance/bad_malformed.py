"""Known-bad adapters for ``malformed-200``: a body read as if it could only be the
answer the author saw, or forgiven when it is not."""

from __future__ import annotations

import json
from typing import Any

from provara_kit.accounting import ParsedCompletion
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.base import StreamMapper
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.types import ChatRequest
from tests.conformance.case import Case


class DecodesWithStdlibJSON(OpenAICompatibleProvider):
    """Reads the answer with ``json.loads(response.content)``: a proxy's HTML page raises
    ``JSONDecodeError``, a ``ValueError`` the gateway takes for the client's bad request
    (a 400 instead of a 502 and a fallback)."""

    def _decode_json(self, body: bytes) -> Any:
        return json.loads(body)


class EmptyAnswerForUnknownShape(OpenAICompatibleProvider):
    """``choices = body.get("choices") or [{}]`` in spirit: a body without choices is an
    empty answer that "stopped", so a broken upstream is billed and shown as a reply."""

    def _parse_completion(self, body: Any) -> ParsedCompletion:
        if not isinstance(body, dict) or not body.get("choices"):
            return ParsedCompletion(
                text="", finish_reason="stop", input_tokens=None, output_tokens=None
            )
        return super()._parse_completion(body)


class _Lenient:
    """A stream mapper that drops a frame the mapper it wraps cannot read."""

    def __init__(self, inner: StreamMapper | None) -> None:
        assert inner is not None
        self.inner = inner

    @property
    def done(self) -> bool:
        return self.inner.done

    def feed(self, frame: Any) -> list[Any]:
        try:
            return self.inner.feed(frame)
        except ValueError:
            return []

    def end(self) -> list[Any]:
        return self.inner.end()


class SkipsUndecodableChunks(OpenAICompatibleProvider):
    """Skips a stream chunk it cannot parse ("be lenient in what you accept"): the chunk's
    text is lost, and the stream still ends cleanly with a meta that bills it whole."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        return _Lenient(super()._stream_mapper(request))


class SkipsUnknownAnthropicEvents(AnthropicProvider):
    """The same leniency on Anthropic's wire: an event whose JSON does not parse is
    dropped like an unknown event type."""

    def _stream_mapper(self, request: ChatRequest) -> StreamMapper | None:
        return _Lenient(super()._stream_mapper(request))


CASES: tuple[Case, ...] = (
    Case(
        "malformed-200",
        DecodesWithStdlibJSON,
        r"200 with an HTML page \(complete\): raised JSONDecodeError",
    ),
    Case(
        "malformed-200",
        EmptyAnswerForUnknownShape,
        r"200 with a JSON array \(complete\): returned an answer \(text '', finish_reason 'stop'\)",
    ),
    Case(
        "malformed-200",
        SkipsUndecodableChunks,
        r"a frame cut short \(stream\): ended cleanly with text 'Helloworld!' and 1 meta",
    ),
    Case(
        "malformed-200",
        SkipsUnknownAnthropicEvents,
        r"a frame of HTML \(stream\): ended cleanly with text 'Helloworld!' and 1 meta",
    ),
)
