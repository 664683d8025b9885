"""What changed between the conversation a request holds and the one that reached the wire.

Both sides are :class:`~provara_kit.testing.conversation.NormalizedConversation` readings;
each difference is one sentence that points at the message, part or field it is in
("assistant tool call 1 of message 3: arguments {'city': 'Lisbon'} arrived as {}").
Turns are aligned by role and text first, so a dropped or an extra message is named as such
rather than shifting every message after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any, Final

from provara_kit.testing.conversation import NormalizedConversation, ToolSpec, Turn

__all__ = ["conversation_differences", "ordinal"]

_ORDINALS: Final = ("first", "second", "third", "fourth", "fifth", "sixth")


def ordinal(index: int) -> str:
    """``0`` → ``first`` ..."""
    return _ORDINALS[index] if index < len(_ORDINALS) else f"{index + 1}th"


def conversation_differences(
    sent: NormalizedConversation,
    arrived: NormalizedConversation,
    *,
    positions: Sequence[int],
    default_max_tokens: bool = False,
) -> list[str]:
    """Every way ``arrived`` differs from ``sent``.

    ``positions`` numbers ``sent``'s turns as the request does (system messages counted);
    ``default_max_tokens``: the wire requires a limit, so one may arrive when none was sent.
    """
    found = _system(sent.system, arrived.system)
    found += _turns(sent.turns, arrived.turns, positions)
    found += _tools(sent.tools, arrived.tools)
    found += _field("tool_choice", sent.tool_choice, arrived.tool_choice)
    if sent.parallel_tool_calls is False and arrived.parallel_tool_calls is not False:
        found.append("parallel_tool_calls=false did not arrive: the wire allows parallel calls")
    elif sent.parallel_tool_calls is not False and arrived.parallel_tool_calls is False:
        found.append("parallel calls arrived disabled; the request allows them")
    if sent.max_tokens is not None or not default_max_tokens:
        found += _field("the token limit", sent.max_tokens, arrived.max_tokens)
    found += _field("stop", _shown(sent.stop), _shown(arrived.stop))
    found += _field("user", sent.user, arrived.user)
    found += _field("metadata", dict(sent.metadata), dict(arrived.metadata))
    return found


def _shown(stop: tuple[str, ...] | None) -> list[str] | None:
    return None if stop is None else list(stop)


def _field(name: str, sent: Any, arrived: Any) -> list[str]:
    if sent == arrived:
        return []
    if arrived is None:
        return [f"{name} {sent!r} did not arrive"]
    return [f"{name} {sent!r} arrived as {arrived!r}"]


def _system(sent: Sequence[str], arrived: Sequence[str]) -> list[str]:
    """Each system text must arrive, in order (a wire may join them into one)."""
    found: list[str] = []
    wire = "\n".join(arrived)
    cursor = 0
    extra: list[str] = []
    for index, text in enumerate(sent):
        at = wire.find(text, cursor) if text else cursor
        if at < 0:
            which = (
                f"the {ordinal(index)} system message" if len(sent) > 1 else "the system message"
            )
            found.append(f"{which} ({_short(text)}) was dropped")
        else:
            extra.append(wire[cursor:at])
            cursor = at + len(text)
    extra.append(wire[cursor:])
    added = "".join(extra).strip()
    if sent and added and not found:
        # Joining several system texts is the wire's business; adding words to them is not.
        found.append(f"the system text arrived with words the request has none of: {_short(added)}")
    if not sent and any(arrived):
        found.append(f"a system text arrived that the request has none of: {_short(arrived[0])}")
    return found


def _key(turn: Turn) -> tuple[str, str]:
    return (turn.role, turn.text)


def _turns(sent: Sequence[Turn], arrived: Sequence[Turn], positions: Sequence[int]) -> list[str]:
    found: list[str] = []
    matcher = SequenceMatcher(None, [_key(t) for t in sent], [_key(t) for t in arrived], False)
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        paired = min(i2 - i1, j2 - j1)
        for offset in range(paired):
            found += _turn(sent[i1 + offset], arrived[j1 + offset], positions[i1 + offset])
        for i in range(i1 + paired, i2):
            turn = sent[i]
            found.append(
                f"message {positions[i]} ({turn.role}: {_short(turn.text)}) did not arrive"
            )
        for j in range(j1 + paired, j2):
            turn = arrived[j]
            found.append(
                f"the wire has a {turn.role} message the request does not "
                f"({_short(turn.text)}), as turn {j + 1}"
            )
    return found


def _turn(sent: Turn, arrived: Turn, position: int) -> list[str]:
    where = f"message {position}"
    if sent.role != arrived.role:
        return [f"{where} ({sent.role}: {_short(sent.text)}) arrived as a {arrived.role} message"]
    found = _field(f"{where}: text", sent.text, arrived.text)
    for k, image in enumerate(sent.images):
        if k >= len(arrived.images):
            found.append(f"image part {k + 1} of {where} did not arrive")
        elif arrived.images[k] != image:
            found.append(f"image part {k + 1} of {where}: {image} arrived as {arrived.images[k]}")
    if len(arrived.images) > len(sent.images):
        found.append(f"{where}: {len(arrived.images)} image parts arrived, {len(sent.images)} sent")
    found += _calls(sent, arrived, where)
    found += _field(
        f"tool result of {where}: tool_call_id", sent.tool_call_id, arrived.tool_call_id
    )
    found += _field(f"{where}: name", sent.name, arrived.name)
    return found


def _calls(sent: Turn, arrived: Turn, where: str) -> list[str]:
    found: list[str] = []
    for k, call in enumerate(sent.tool_calls):
        label = f"assistant tool call {k + 1} of {where}"
        if k >= len(arrived.tool_calls):
            found.append(f"{label} ({call.name}) did not arrive")
            continue
        got = arrived.tool_calls[k]
        found += _field(f"{label}: id", call.id, got.id)
        found += _field(f"{label}: name", call.name, got.name)
        found += _field(f"{label}: arguments", call.arguments, got.arguments)
    extra = len(arrived.tool_calls) - len(sent.tool_calls)
    if extra > 0:
        found.append(f"{where}: {extra} tool calls arrived that the request does not make")
    return found


def _tools(sent: Sequence[ToolSpec], arrived: Sequence[ToolSpec]) -> list[str]:
    found: list[str] = []
    if len(sent) != len(arrived):
        found.append(f"{len(sent)} tools declared, {len(arrived)} arrived")
    for k, (tool, got) in enumerate(zip(sent, arrived, strict=False)):
        label = f"tool {k + 1} ({tool.name})"
        found += _field(f"{label}: name", tool.name, got.name)
        found += _field(f"{label}: description", tool.description, got.description)
        found += _field(f"{label}: parameters", tool.parameters, got.parameters)
    return found


def _short(text: str, limit: int = 48) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
