"""Reading request bodies back as conversations, and the wires' 400 rules."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.conversation_diff import conversation_differences
from conformance.conversations import conversations
from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.testing import AnthropicMessagesDialect, OpenAIChatDialect, WireDialect
from provara_kit.testing.conversation import (
    Image,
    ToolCallRef,
    Turn,
    Unparsed,
    expressible,
    read_openai_conversation,
)
from provara_kit.types import ChatRequest

ANTHROPIC = AnthropicMessagesDialect()
OPENAI = OpenAIChatDialect()
ADAPTERS: dict[str, tuple[Any, WireDialect]] = {
    "anthropic": (AnthropicProvider(api_key="k"), ANTHROPIC),
    "openai": (
        OpenAICompatibleProvider(name="o", base_url="https://o.test/v1", api_key="k"),
        OPENAI,
    ),
}


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("conversation", conversations(), ids=lambda c: c.label)
def test_the_dialect_reads_back_what_the_builtin_adapter_sends(
    name: str, conversation: Any
) -> None:
    adapter, dialect = ADAPTERS[name]
    request = ChatRequest(model="m", **conversation.fields)
    body = adapter._build_payload(request, stream=False)
    sent = expressible(
        read_openai_conversation(request.model_dump(exclude_none=True)),
        dialect.conversation_limits,
    )
    positions = [
        n for n, m in enumerate(request.messages, 1) if m.role not in ("system", "developer")
    ]
    arrived = dialect.read_conversation(body)
    assert (
        conversation_differences(
            sent, arrived, positions=positions, default_max_tokens=dialect.requires_max_tokens
        )
        == []
    )
    assert dialect.validate_request(body) == []


def test_anthropic_tool_results_of_one_turn_are_tool_turns() -> None:
    body = {
        "max_tokens": 10,
        "system": [{"type": "text", "text": "Be terse."}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {"c": "L"}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                    {"type": "image", "source": {"type": "url", "url": "https://i.test/a.png"}},
                ],
            },
        ],
        "stop_sequences": ["END"],
        "tools": [{"name": "w", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u"},
    }
    conversation = ANTHROPIC.read_conversation(body)
    assert conversation.system == ("Be terse.",)
    assert conversation.turns == (
        Turn("user", ("Weather?",)),
        Turn("assistant", (), tool_calls=(ToolCallRef("t1", "w", {"c": "L"}),)),
        Turn("tool", ("sunny",), tool_call_id="t1"),
        Turn("user", (Image("url", "https://i.test/a.png"),)),
    )
    assert conversation.tool_choice == "required"
    assert conversation.parallel_tool_calls is False
    assert (conversation.max_tokens, conversation.stop) == (10, ("END",))
    assert ANTHROPIC.validate_request(body) == []


def test_openai_reading_parses_arguments_and_data_urls() -> None:
    url = "data:image/png;base64,AAAA"
    conversation = read_openai_conversation(
        {
            "messages": [
                {"role": "developer", "content": "Rule."},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
                },
            ],
            "stop": "END",
            "max_completion_tokens": 5,
        }
    )
    assert conversation.system == ("Rule.",)
    assert conversation.turns[0].images == (Image("base64", "AAAA", "image/png"),)
    assert conversation.turns[1].tool_calls == (ToolCallRef("c", "f", Unparsed("{oops")),)
    assert (conversation.stop, conversation.max_tokens) == (("END",), 5)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
        (
            {"max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]},
            'first message must use the "user" role',
        ),
        (
            {"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": "w?"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "a", "name": "w", "input": {}},
                            {"type": "tool_use", "id": "b", "name": "w", "input": {}},
                        ],
                    },
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a"}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b"}]},
                ],
            },
            "`tool_use` ids were found without `tool_result` blocks immediately after: b",
        ),
        (
            {
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "w", "input_schema": {}}],
                "tool_choice": {"type": "none", "disable_parallel_tool_use": True},
            },
            "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted",
        ),
    ],
)
def test_anthropic_rules(body: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in ANTHROPIC.validate_request(body))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"messages": []}, "Expected an array with minimum length 1"),
        (
            {"messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}]},
            "must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "w?"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "a", "function": {"name": "w", "arguments": {}}}],
                    },
                ]
            },
            "function.arguments': expected a string",
        ),
        (
            {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto"},
            "'tool_choice' is only allowed when 'tools' are specified",
        ),
    ],
)
def test_openai_rules(body: dict[str, Any], problem: str) -> None:
    assert any(problem in found for found in OPENAI.validate_request(body))


def test_an_unknown_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown conversation limits"):
        expressible(read_openai_conversation({}), {"no-such-limit": ""})
