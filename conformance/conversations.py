"""Realistic conversations, one per dimension an OpenAI-shaped request has, and a hypothesis
strategy that combines them.

:func:`conversations` is the table the ``request-conversation`` check sends: system and
developer messages (one, several, later in the conversation), user content as a string, as
text parts and with images (an https URL and a ``data:`` URL), assistant messages with text,
tool calls (one and parallel), both or no content, tool results, names, tools with and
without parameters, every ``tool_choice``, ``parallel_tool_calls: false``, each way to limit
output tokens, ``stop`` as a string and a list, ``user`` with ``metadata``.
:func:`conversation_fields` draws whole requests from the same pieces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

__all__ = [
    "PINNED",
    "Conversation",
    "conversation_fields",
    "conversations",
]

WEATHER: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
CLOCK: Final[dict[str, Any]] = {"type": "function", "function": {"name": "get_time"}}
"""A tool declared without parameters (or a description)."""

IMAGE_URL: Final = "https://upload.wikimedia.org/wikipedia/commons/4/47/PNG_transparency.png"
PNG_BASE64: Final = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAAB"
    "JRU5ErkJggg=="
)
IMAGE_DATA_URL: Final = f"data:image/png;base64,{PNG_BASE64}"

SYSTEM: Final = {"role": "system", "content": "You are terse."}
NAMED: Final = {"type": "function", "function": {"name": "get_weather"}}


@dataclass(frozen=True)
class Conversation:
    """A labelled request: its ``ChatRequest`` fields, model aside."""

    label: str
    fields: Mapping[str, Any]

    @property
    def params(self) -> frozenset[str]:
        """The request parameters it sends besides the messages."""
        return frozenset(self.fields) - {"messages"}


def _user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


def _assistant(content: str | None, *calls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, **extra}
    if calls:
        message["tool_calls"] = list(calls)
    return message


def _call(call_id: str, city: str, **arguments: Any) -> dict[str, Any]:
    text = json.dumps({"city": city, **arguments})
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": text},
    }


def _result(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


ASK = _user("What is the weather in Lisbon?")
LISBON = _call("call_lisbon_1", "Lisbon")
PORTO = _call("call_porto_2", "Porto", unit="celsius")


def conversations() -> tuple[Conversation, ...]:
    """The table: each request covers one dimension, within a realistic conversation."""
    parallel = [
        SYSTEM,
        _user("Compare the weather in Lisbon and Porto."),
        _assistant(None, LISBON, PORTO),
        _result(LISBON["id"], "18°C and sunny"),
        _result(PORTO["id"], "15°C, light rain"),
    ]
    table: dict[str, dict[str, Any]] = {
        "several system and developer messages at the start": {
            "messages": [
                SYSTEM,
                {"role": "system", "content": "Answer in French."},
                {"role": "developer", "content": "Never mention the time."},
                _user("Bonjour ?"),
            ]
        },
        "a system message later in the conversation": {
            "messages": [
                SYSTEM,
                _user("Hello."),
                _assistant("Hi. How can I help?"),
                {"role": "system", "content": "From now on, answer in Portuguese."},
                _user("What is your name?"),
            ]
        },
        "user content as text parts": {
            "messages": [SYSTEM, _user([_text("Part one: apples. "), _text("Part two: pears.")])]
        },
        "an image by https URL": {
            "messages": [SYSTEM, _user([_text("What is in this picture?"), _image(IMAGE_URL)])]
        },
        "an image as a base64 data URL": {
            "messages": [SYSTEM, _user([_image(IMAGE_DATA_URL), _text("Describe this image.")])]
        },
        "a tool call, its result, the answer and a follow-up": {
            "messages": [
                SYSTEM,
                ASK,
                _assistant(None, LISBON),
                _result(LISBON["id"], "18°C and sunny"),
                _assistant("It is 18°C and sunny in Lisbon."),
                _user("And in Porto?"),
            ],
            "tools": [WEATHER],
        },
        "parallel tool calls and their consecutive results": {
            "messages": parallel,
            "tools": [WEATHER],
        },
        "an assistant message with text and a tool call": {
            "messages": [
                SYSTEM,
                ASK,
                _assistant("Let me check.", LISBON),
                _result(LISBON["id"], "18°C and sunny"),
            ],
            "tools": [WEATHER],
        },
        "names on messages, several turns": {
            "messages": [
                SYSTEM,
                _user("I am Ana.", name="ana"),
                _assistant("Hello, Ana.", name="helper"),
                _user("What did I say my name was?", name="ana"),
                _assistant("Ana."),
                _user("Thanks."),
            ]
        },
        "a tool without parameters, tool_choice required": {
            "messages": [SYSTEM, _user("What time is it?")],
            "tools": [WEATHER, CLOCK],
            "tool_choice": "required",
        },
        "tool_choice auto": {"messages": [SYSTEM, ASK], "tools": [WEATHER], "tool_choice": "auto"},
        "tool_choice none": {"messages": [SYSTEM, ASK], "tools": [WEATHER], "tool_choice": "none"},
        "tool_choice a named function": {
            "messages": [SYSTEM, ASK],
            "tools": [WEATHER, CLOCK],
            "tool_choice": NAMED,
        },
        "parallel_tool_calls false": {
            "messages": parallel[:2],
            "tools": [WEATHER],
            "parallel_tool_calls": False,
        },
        "max_tokens": {"messages": [SYSTEM, ASK], "max_tokens": 300},
        "max_completion_tokens instead of max_tokens": {
            "messages": [SYSTEM, ASK],
            "max_completion_tokens": 200,
        },
        "stop as a string": {"messages": [SYSTEM, ASK], "stop": "END"},
        "stop as a list": {"messages": [SYSTEM, ASK], "stop": ["END", "###"]},
        "user with metadata": {
            "messages": [SYSTEM, ASK],
            "user": "end-user-42",
            "metadata": {"user_id": "tenant-7"},
        },
        "user alone": {"messages": [SYSTEM, ASK], "user": "end-user-42"},
    }
    return tuple(Conversation(label, fields) for label, fields in table.items())


# -- generated combinations ------------------------------------------------------------------

PINNED: Final[tuple[Mapping[str, Any], ...]] = (
    # tool_choice "none" with parallel_tool_calls false: the Messages API takes
    # disable_parallel_tool_use on auto, any and tool only, and refuses it on none.
    {
        "messages": [SYSTEM, ASK],
        "tools": [WEATHER],
        "tool_choice": "none",
        "parallel_tool_calls": False,
    },
)
"""Requests that once found a bug, tried on every run."""

_CITIES: Final = ("Lisbon", "Porto", "Faro", "Braga")

_users = st.sampled_from(
    [
        _user("What is the weather like?"),
        _user([_text("Two parts: "), _text("one and two.")]),
        _user([_text("What is this?"), _image(IMAGE_URL)]),
        _user([_image(IMAGE_DATA_URL)]),
        _user("Hi, I am Ana.", name="ana"),
    ]
)


@st.composite
def _exchange(draw: st.DrawFn, number: int) -> list[dict[str, Any]]:
    """A user message and the assistant's reply: text, or calls with their results."""
    messages = [draw(_users)]
    calls = draw(st.integers(0, 2))
    if not calls:
        messages.append(_assistant(draw(st.sampled_from(["Sure.", "It is sunny."]))))
        return messages
    cities = draw(st.permutations(_CITIES))[:calls]
    made = [_call(f"call_{number}_{k}", city) for k, city in enumerate(cities)]
    messages.append(_assistant(draw(st.sampled_from([None, "Checking."])), *made))
    messages += [_result(call["id"], f"{k + 10}°C") for k, call in enumerate(made)]
    if draw(st.booleans()):
        messages.append(_assistant("Done."))
    return messages


@st.composite
def conversation_fields(draw: st.DrawFn) -> dict[str, Any]:
    """A whole request's fields: system messages, 1-3 exchanges, a last user message, and
    any mix of tools, tool choice, parallel flag, token limit, stop, user and metadata."""
    roles = draw(st.lists(st.sampled_from(["system", "developer"]), max_size=2))
    messages: list[dict[str, Any]] = [
        {"role": role, "content": f"Rule {k + 1}."} for k, role in enumerate(roles)
    ]
    for number in range(draw(st.integers(1, 3))):
        messages += draw(_exchange(number))
    if messages[-1]["role"] == "assistant" or draw(st.booleans()):
        if draw(st.booleans()):
            messages.append({"role": "system", "content": "Be brief now."})
        messages.append(draw(_users))
    fields: dict[str, Any] = {"messages": messages}
    called = any(m.get("tool_calls") for m in messages)
    if called or draw(st.booleans()):
        fields["tools"] = draw(st.sampled_from([[WEATHER], [WEATHER, CLOCK]]))
        choice = draw(st.sampled_from([None, "auto", "required", "none", NAMED]))
        if choice is not None:
            fields["tool_choice"] = choice
        if draw(st.booleans()):
            fields["parallel_tool_calls"] = False
    limit = draw(st.sampled_from([None, "max_tokens", "max_completion_tokens"]))
    if limit is not None:
        fields[limit] = draw(st.integers(1, 4000))
    stop = draw(st.sampled_from([None, "END", ["END", "###"]]))
    if stop is not None:
        fields["stop"] = stop
    if draw(st.booleans()):
        fields["user"] = "end-user-42"
    if draw(st.booleans()):
        fields["metadata"] = {"user_id": "tenant-7"}
    return fields
