"""Known-bad adapters for ``request-conversation``: each maps some part of a conversation
onto its wire wrongly, the way hand-written mappers do."""

from __future__ import annotations

from typing import Any

from provara_kit.providers.anthropic import AnthropicProvider
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.types import ChatRequest, Message
from tests.conformance.case import Case

_SYSTEM = ("system", "developer")


def _blocks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block
        for turn in payload["messages"]
        if isinstance(turn["content"], list)
        for block in turn["content"]
    ]


class FirstSystemOnly(OpenAICompatibleProvider):
    """Keeps the first system message and drops the others ("there is one system
    prompt"): a developer instruction or a later system turn never reaches the model."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        system = [i for i, m in enumerate(payload["messages"]) if m["role"] in _SYSTEM]
        payload["messages"] = [m for i, m in enumerate(payload["messages"]) if i not in system[1:]]
        return payload


class SystemAsUserTurn(AnthropicProvider):
    """Sends the system prompt as the first user turn ("the Messages API has no system
    role"): the model takes the operator's instructions for the user's words."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        system = payload.pop("system", None)
        if system:
            payload["messages"].insert(0, {"role": "user", "content": system})
        return payload


class LosesToolArguments(AnthropicProvider):
    """Maps assistant tool calls from history with ``input: {}``, reading
    ``function.arguments`` as a dict when it is JSON text: the model sees it called the
    tool with nothing."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        for block in _blocks(payload):
            if block["type"] == "tool_use":
                block["input"] = {}
        return payload


class ForgetsToolUseId(AnthropicProvider):
    """Builds ``tool_result`` blocks without ``tool_use_id``: the API cannot tell which
    call a result answers and refuses the request."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        for block in _blocks(payload):
            if block["type"] == "tool_result":
                block.pop("tool_use_id", None)
        return payload


class SplitsToolResults(AnthropicProvider):
    """Puts each tool result in a user turn of its own: after parallel calls the second
    result is not in the turn right after the calls, which the API refuses."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        turns: list[dict[str, Any]] = []
        for turn in payload["messages"]:
            content = turn["content"]
            results = isinstance(content, list) and len(content) > 1
            if results and all(block["type"] == "tool_result" for block in content):
                turns += [{"role": "user", "content": [block]} for block in content]
                continue
            turns.append(turn)
        payload["messages"] = turns
        return payload


class TextPartsOnly(OpenAICompatibleProvider):
    """Flattens list content to its text parts ("content must be a string" on an old
    endpoint): every image a user sends is silently dropped."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        for message in payload["messages"]:
            if isinstance(message.get("content"), list):
                message["content"] = Message.model_validate(message).text()
        return payload


class IgnoresMaxCompletionTokens(AnthropicProvider):
    """Reads only ``max_tokens``: a client using OpenAI's newer ``max_completion_tokens``
    gets the 4096-token default instead of its limit."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        payload["max_tokens"] = request.max_tokens or 4096
        return payload


class IgnoresParallelToolCalls(AnthropicProvider):
    """Never maps ``parallel_tool_calls: false`` to ``disable_parallel_tool_use``: a client
    that handles one call at a time gets several."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        choice = payload.get("tool_choice")
        if isinstance(choice, dict):
            choice.pop("disable_parallel_tool_use", None)
        return payload


class RequiredIsAuto(AnthropicProvider):
    """Maps every string ``tool_choice`` to ``{"type": "auto"}`` (only ``auto`` was in the
    author's mind): "required" no longer forces a tool call."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        if request.tool_choice == "required":
            payload["tool_choice"]["type"] = "auto"
        return payload


class StopStringAsCharacters(AnthropicProvider):
    """``list(request.stop)`` for ``stop_sequences``: ``stop="END"`` becomes
    ``["E", "N", "D"]``, and the answer stops at the first E."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        if request.stop is not None:
            payload["stop_sequences"] = list(request.stop)
        return payload


class UserOverwritesMetadata(AnthropicProvider):
    """Sets ``metadata = {"user_id": user}`` when ``user`` is given, overwriting the
    metadata the client sent."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        user = request.passthrough().get("user")
        if user is not None:
            payload["metadata"] = {"user_id": user}
        return payload


CASES: tuple[Case, ...] = (
    Case(
        "request-conversation",
        FirstSystemOnly,
        r"several system and developer messages at the start \(complete and stream: the second system "
        r"message \('Answer in French\.'\) was dropped",
    ),
    Case(
        "request-conversation",
        SystemAsUserTurn,
        r"user content as text parts \(complete and stream: the system message \('You are "
        r"terse\.'\) was dropped\); user content as text parts \(complete and stream: the wire "
        r"has a user message the request does not \('You are terse\.'\), as turn 1\)",
    ),
    Case(
        "request-conversation",
        LosesToolArguments,
        r"assistant tool call 1 of message 3: arguments \{'city': 'Lisbon'\} arrived as \{\}",
    ),
    Case(
        "request-conversation",
        ForgetsToolUseId,
        r"the anthropic-messages API refuses the body: .*tool_result\.tool_use_id: Field required",
    ),
    Case(
        "request-conversation",
        SplitsToolResults,
        r"parallel tool calls and their consecutive results \(complete and stream: the anthropic-messages "
        r"API refuses the body: .*`tool_use` ids were found without `tool_result` blocks "
        r"immediately after: call_porto_2",
    ),
    Case(
        "request-conversation",
        TextPartsOnly,
        r"an image by https URL \(complete and stream: image part 1 of message 2 did not arrive",
    ),
    Case(
        "request-conversation",
        IgnoresMaxCompletionTokens,
        r"max_completion_tokens instead of max_tokens \(complete and stream: the token limit 200 arrived "
        r"as 4096",
    ),
    Case(
        "request-conversation",
        IgnoresParallelToolCalls,
        r"parallel_tool_calls false \(complete and stream: parallel_tool_calls=false did not arrive",
    ),
    Case(
        "request-conversation",
        RequiredIsAuto,
        r"tool_choice required \(complete and stream: tool_choice 'required' arrived as 'auto'",
    ),
    Case(
        "request-conversation",
        StopStringAsCharacters,
        r"stop as a string \(complete and stream: stop \['END'\] arrived as \['E', 'N', 'D'\]",
    ),
    Case(
        "request-conversation",
        UserOverwritesMetadata,
        r"user with metadata \(complete and stream: metadata \{'user_id': 'tenant-7'\} arrived as "
        r"\{'user_id': 'end-user-42'\}",
    ),
)


class PrefacesSystemPrompt(AnthropicProvider):
    """Joins the system messages under a preface of its own (``"Instructions:\\n" + ...``):
    every request carries words its client never wrote, and they change answers."""

    def _build_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload = super()._build_payload(request, stream=stream)
        if payload.get("system"):
            payload["system"] = "Instructions:\n" + payload["system"]
        return payload


CASES += (
    Case(
        "request-conversation",
        PrefacesSystemPrompt,
        r"the system text arrived with words the request has none of: 'Instructions:'",
    ),
)
