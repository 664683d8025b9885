"""Token counters: the interface, the offline tokenizers and how the pipeline asks them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from provara_kit import Provider, TokenCounter, TokenizerCounter
from provara_kit.counters import BUNDLED_ENCODINGS, bundled_tokenizer
from provara_kit.errors import ConfigurationError
from provara_kit.streaming import (
    Finish,
    StreamDone,
    UpstreamEvent,
    UsageUpdate,
    normalize_batches,
)
from provara_kit.testing import CannedReply, ScriptedProvider
from provara_kit.tokens import count_usage
from provara_kit.types import (
    ChatRequest,
    CountMethod,
    ProvaraMeta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)

REQUEST = ChatRequest(
    model="m",
    messages=[
        {"role": "system", "content": "Be exact."},
        {"role": "user", "content": "Count the 🍋 lemons."},
    ],
)
PROMPT = "Be exact.Count the 🍋 lemons."


class Fixed(TokenCounter):
    """Answers fixed counts (or ``answer`` for both), recording what it was asked."""

    method: ClassVar[CountMethod] = "count-endpoint"

    def __init__(self, input_count: Any = 100, output_count: Any = 40) -> None:
        self.input_count = input_count
        self.output_count = output_count
        self.asked: list[tuple[str, str | None]] = []
        self.timeout = 0.05

    async def count_input(self, request: ChatRequest) -> int:
        self.asked.append(("input", None))
        return await self._answer(self.input_count)

    async def count_output(self, text: str, request: ChatRequest) -> int:
        self.asked.append(("output", text))
        return await self._answer(self.output_count)

    async def _answer(self, value: Any) -> int:
        if isinstance(value, BaseException):
            raise value
        if value == "hang":
            await asyncio.Event().wait()
        answer: int = value
        return answer


# -- the types --------------------------------------------------------------------------


def test_methods_follow_the_sources_when_not_given() -> None:
    usage = Usage(input_tokens=1, output_tokens=2, output_tokens_source="estimated")
    assert (usage.input_tokens_method, usage.output_tokens_method) == ("upstream", "chars/4")
    meta = ProvaraMeta(
        provider="p",
        model="m",
        input_tokens=1,
        output_tokens=2,
        input_tokens_source="estimated",
        output_tokens_source="upstream",
        cost_usd=None,
        priced=False,
        finish_reason="stop",
        ttft_ms=None,
        latency_ms=1.0,
    )
    assert (meta.input_tokens_method, meta.output_tokens_method) == ("chars/4", "upstream")
    assert meta.to_dict()["input_tokens_method"] == "chars/4"
    assert meta.usage.input_tokens_method == "chars/4"


def test_a_method_given_is_kept() -> None:
    usage = Usage(
        input_tokens=1,
        output_tokens=2,
        input_tokens_source="estimated",
        input_tokens_method="tokenizer",
    )
    assert usage.input_tokens_method == "tokenizer"
    with pytest.raises(ValueError, match="input_tokens_method"):
        Usage(input_tokens=1, output_tokens=2, input_tokens_method="guess")


def test_a_provider_has_no_counter_unless_given_one() -> None:
    assert Provider.token_counter is None


# -- the tokenizer counters -----------------------------------------------------------------


async def test_tokenizer_counter_counts_messages_a_line_each_and_the_output() -> None:
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return len(text.split())

    counter = TokenizerCounter(count)
    assert counter.method == "tokenizer"
    assert await counter.count_input(REQUEST) == 6
    assert await counter.count_output("two words", REQUEST) == 2
    assert seen == ["Be exact.\nCount the 🍋 lemons.", "two words"]


async def test_tokenizer_counter_from_an_encoder() -> None:
    counter = TokenizerCounter.from_encode(lambda text: text.split(), timeout=1.5)
    assert await counter.count_output("a b c", REQUEST) == 3
    assert counter.timeout == 1.5


def test_tokenizer_counter_refuses_what_cannot_count() -> None:
    with pytest.raises(TypeError, match="callable"):
        TokenizerCounter(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoding", "text", "tokens"),
    [
        ("o200k_base", "hello world", 2),
        ("cl100k_base", "hello world", 2),
        ("o200k_base", "a <|endoftext|> b", 9),  # special-token text counts as text
    ],
)
async def test_bundled_tokenizer_counts_offline(encoding: str, text: str, tokens: int) -> None:
    counter = bundled_tokenizer(encoding)
    assert repr(counter) == f"TokenizerCounter(encoding={encoding!r})"
    assert await counter.count_output(text, REQUEST) == tokens


def test_bundled_tokenizer_names_what_it_has() -> None:
    with pytest.raises(ConfigurationError, match="o200k_base, cl100k_base"):
        bundled_tokenizer("p50k_base")
    assert BUNDLED_ENCODINGS == ("o200k_base", "cl100k_base")


def test_bundled_tokenizer_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "bpe_openai", None)
    with pytest.raises(ConfigurationError, match=r"provara-kit\[tokenizer\]"):
        bundled_tokenizer()


# -- count_usage ----------------------------------------------------------------------------


async def test_reported_counts_are_kept_and_the_counter_is_not_asked() -> None:
    counter = Fixed()
    usage = await count_usage(0, 7, request=REQUEST, output_text="abc", counter=counter)
    assert (usage.input_tokens, usage.input_tokens_source, usage.input_tokens_method) == (
        0,
        "upstream",
        "upstream",
    )
    assert counter.asked == []


async def test_each_missing_count_is_asked_alone() -> None:
    counter = Fixed()
    usage = await count_usage(None, 7, request=REQUEST, output_text="abc", counter=counter)
    assert (usage.input_tokens, usage.input_tokens_source, usage.input_tokens_method) == (
        100,
        "estimated",
        "count-endpoint",
    )
    assert (usage.output_tokens, usage.output_tokens_method) == (7, "upstream")
    assert counter.asked == [("input", None)]
    usage = await count_usage(3, None, request=REQUEST, output_text="abc", counter=counter)
    assert (usage.output_tokens, usage.output_tokens_method) == (40, "count-endpoint")
    assert counter.asked[-1] == ("output", "abc")


async def test_no_counter_is_chars_over_4() -> None:
    usage = await count_usage(None, None, request=REQUEST, output_text="abcde", counter=None)
    assert (usage.input_tokens, usage.output_tokens) == (-(-len(PROMPT) // 4), 2)
    assert (usage.input_tokens_method, usage.output_tokens_method) == ("chars/4", "chars/4")
    assert usage.input_tokens_source == "estimated"


@pytest.mark.parametrize(
    "bad",
    [RuntimeError("count endpoint down"), "hang", -1, True, 2.5, "12", None],
    ids=["raises", "hangs", "negative", "bool", "float", "str", "none"],
)
async def test_a_failing_counter_falls_back_to_chars_over_4(
    bad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    counter = Fixed(input_count=bad, output_count=9)
    with caplog.at_level(logging.WARNING, logger="provara_kit.tokens"):
        usage = await count_usage(
            None, None, request=REQUEST, output_text="abcde", counter=counter, provider="acme"
        )
    assert (usage.input_tokens, usage.input_tokens_method) == (-(-len(PROMPT) // 4), "chars/4")
    assert (usage.output_tokens, usage.output_tokens_method) == (9, "count-endpoint")
    assert "acme token counter (count-endpoint)" in caplog.text
    assert "chars/4 used" in caplog.text and "count endpoint down" not in caplog.text


# -- the pipeline ---------------------------------------------------------------------------


async def _upstream(events: list[UpstreamEvent]) -> AsyncIterator[UpstreamEvent | list[Any]]:
    yield events


async def _batches(counter: TokenCounter | None, usage: UsageUpdate) -> list[list[StreamEvent]]:
    events: list[UpstreamEvent] = [
        TextDelta("Three"),
        ToolCallDelta(0, "c1", "f", '{"a":1}'),
        usage,
        Finish("stop"),
        StreamDone(),
    ]
    batches = normalize_batches(
        _upstream(events),
        provider="p",
        request=REQUEST,
        stream_timeout=None,
        pricing={},
        token_counter=counter,
    )
    return [batch async for batch in batches]


async def test_the_counter_runs_after_the_content_has_left() -> None:
    counter = Fixed()
    order: list[str] = []
    events = normalize_batches(
        _upstream([TextDelta("Three"), UsageUpdate(None, 5), StreamDone()]),
        provider="p",
        request=REQUEST,
        stream_timeout=None,
        pricing={},
        token_counter=counter,
    )
    async for batch in events:
        order.append(f"batch {[type(e).__name__ for e in batch]} after {len(counter.asked)} asks")
    assert order == ["batch ['TextDelta'] after 0 asks", "batch ['ProvaraMeta'] after 1 asks"]


async def test_the_stream_counts_its_produced_text_and_tool_calls() -> None:
    counter = Fixed()
    batches = await _batches(counter, UsageUpdate(None, None))
    meta = batches[-1][-1]
    assert isinstance(meta, ProvaraMeta) and batches[-1] == [meta]
    assert (meta.input_tokens, meta.output_tokens) == (100, 40)
    assert (meta.input_tokens_method, meta.output_tokens_source) == ("count-endpoint", "estimated")
    assert ("output", 'Threef{"a":1}') in counter.asked


async def test_a_stream_with_usage_keeps_one_batch_and_asks_nothing() -> None:
    counter = Fixed()
    batches = await _batches(counter, UsageUpdate(3, 4))
    assert len(batches) == 1 and isinstance(batches[0][-1], ProvaraMeta)
    assert counter.asked == []
    assert batches[0][-1].input_tokens_method == "upstream"


async def test_a_failing_counter_never_ends_the_stream() -> None:
    batches = await _batches(Fixed(RuntimeError("down"), "hang"), UsageUpdate(None, None))
    meta = batches[-1][-1]
    assert isinstance(meta, ProvaraMeta)
    assert (meta.input_tokens_method, meta.output_tokens_method) == ("chars/4", "chars/4")


async def test_the_scripted_provider_asks_its_counter_too() -> None:
    provider = ScriptedProvider(reply=CannedReply(("Three",), usage="partial"), pricing={})
    provider.token_counter = Fixed()
    for response in (
        await provider.complete(REQUEST),
        await provider.complete_stream(REQUEST).collect(),
    ):
        assert response.usage.input_tokens_method == "upstream"
        assert (response.usage.output_tokens, response.usage.output_tokens_method) == (
            40,
            "count-endpoint",
        )
