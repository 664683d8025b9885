"""Where each key of a config file is written: its line, for error messages.

A key path is a tuple of table keys and list indices (``("providers", "acme",
"base_url")``, ``("fallbacks", "acme/large", 0)``). :func:`toml_lines` reads the TOML text
itself, because ``tomllib`` keeps no positions (nor does ``tomlkit``): it follows table
headers, dotted keys and quoted keys, and steps over strings, comments and values that
span lines. :func:`yaml_document` builds the YAML data from PyYAML's composed nodes, which
carry their marks, and refuses a key written twice in one mapping (PyYAML keeps the last
silently). :func:`line_of` answers for the longest prefix of a path that was written, so a
missing key points at its table and a bad list item at its key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any, TypeAlias

__all__ = ["DuplicateKeyError", "KeyPath", "line_of", "toml_lines", "yaml_document"]

KeyPath: TypeAlias = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_BASIC = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_LITERAL = re.compile(r"'[^'\n]*'")
_SPACE = re.compile(r"[ \t]*")


class DuplicateKeyError(ValueError):
    """A YAML mapping with a key written twice."""

    def __init__(self, path: KeyPath, line: int, first: int) -> None:
        super().__init__(f"written twice (first on line {first})")
        self.path = path
        self.line = line


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of ``path``, else of its longest written prefix; None when none was."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def _key(text: str, pos: int) -> tuple[str, int] | None:
    """One simple key (bare, "basic" or 'literal') at ``pos``: the key and where it ends."""
    for pattern in (_BARE, _BASIC, _LITERAL):
        match = pattern.match(text, pos)
        if match is None:
            continue
        token = match.group()
        if pattern is _BARE:
            return token, match.end()
        # tomllib decodes the quoted key, escapes included.
        decoded = tomllib.loads(f"{token} = 0")
        return next(iter(decoded)), match.end()
    return None


def _dotted(text: str, pos: int) -> tuple[list[str], int] | None:
    """A dotted key at ``pos``; the keys and the position after them (and any blanks)."""
    keys: list[str] = []
    while True:
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        found = _key(text, pos)
        if found is None:
            return None
        keys.append(found[0])
        pos = _SPACE.match(text, found[1]).end()  # type: ignore[union-attr]
        if not text.startswith(".", pos):
            return keys, pos
        pos += 1


class _Scanner:
    """Steps over the value part of lines: strings, comments and open brackets."""

    def __init__(self) -> None:
        self.depth = 0
        self.multiline: str | None = None  # the closing delimiter of an open """ or '''

    @property
    def inside(self) -> bool:
        return self.depth > 0 or self.multiline is not None

    def scan(self, text: str, pos: int) -> None:
        while pos < len(text):
            if self.multiline is not None:
                pos = self._close_multiline(text, pos, self.multiline)
                continue
            char = text[pos]
            if char == "#":
                return
            if text.startswith(('"""', "'''"), pos):
                self.multiline = text[pos : pos + 3]
                pos += 3
            elif char in "\"'":
                match = (_BASIC if char == '"' else _LITERAL).match(text, pos)
                pos = match.end() if match else len(text)
            else:
                if char in "[{":
                    self.depth += 1
                elif char in "]}":
                    self.depth = max(0, self.depth - 1)
                pos += 1

    def _close_multiline(self, text: str, pos: int, delimiter: str) -> int:
        while pos < len(text):
            if delimiter == '"""' and text[pos] == "\\":
                pos += 2
                continue
            if text.startswith(delimiter, pos):
                end = pos + 3
                while text.startswith(delimiter[0], end):  # up to two quotes end the string
                    end += 1
                self.multiline = None
                return end
            pos += 1
        return pos


def toml_lines(text: str) -> dict[KeyPath, int]:
    """The line (1-based) of every key path in valid TOML ``text``, tables included."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    arrays: dict[KeyPath, int] = {}
    scanner = _Scanner()

    def note(path: KeyPath, number: int) -> None:
        for end in range(1, len(path) + 1):
            lines.setdefault(path[:end], number)

    for number, line in enumerate(text.splitlines(), start=1):
        if scanner.inside:
            scanner.scan(line, 0)
            continue
        start = _SPACE.match(line).end()  # type: ignore[union-attr]
        if line.startswith("[", start):
            is_array = line.startswith("[[", start)
            found = _dotted(line, start + (2 if is_array else 1))
            if found is None:
                continue
            path: KeyPath = tuple(found[0])
            if is_array:
                index = arrays.get(path, 0)
                arrays[path] = index + 1
                path = (*path, index)
            table = path
            note(table, number)
            continue
        found = _dotted(line, start)
        if found is None or not line.startswith("=", found[1]):
            continue
        note((*table, *found[0]), number)
        scanner.scan(line, found[1] + 1)
    return lines


def yaml_document(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """The data of one YAML document (safe types only) and the line of every key path.

    Raises :class:`yaml.YAMLError` for a syntax error (its ``problem_mark`` has the
    position) and :class:`DuplicateKeyError` for a key written twice in one mapping.
    """
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        if node is None:
            return None, lines
        _walk(node, (), lines)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _walk(node: Any, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError((*path, key), line, seen[key])
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, index), item.start_mark.line + 1)
            _walk(item, (*path, index), lines)
