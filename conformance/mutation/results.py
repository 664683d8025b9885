"""mutmut's verdicts, read back from a workspace: counts, survivors, their lines and diffs.

mutmut 3 keeps one ``mutants/<file>.meta`` JSON per mutated file, mapping each mutant's name
(``pkg.mod.xǁClassǁmethod__mutmut_3``, ``pkg.mod.x_function__mutmut_1``) to the exit code
of its test run; ``mutmut.stats.status_by_exit_code`` says what each code means.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from conformance.mutation.equivalence import why_equivalent
from conformance.report import Survivor

__all__ = ["CAUGHT", "changed_line", "count_statuses", "function_of", "read_verdicts"]

CAUGHT = frozenset({"killed", "timeout"})
"""Statuses of a mutant the suite caught; every other tested one is reported."""
_NOT_RUN = frozenset({"not_checked", "skipped", "caught_by_type_check", "interrupted"})
_SEPARATOR = "ǁ"
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")
_STATUS_NAMES = {"check was interrupted by user": "interrupted"}


def status_name(status: str) -> str:
    """A mutmut status as a report key: ``no tests`` -> ``no_tests``."""
    return _STATUS_NAMES.get(status, status).replace(" ", "_")


def read_verdicts(meta: Path) -> dict[str, int | None]:
    """Mutant name -> exit code (None: not run) from one mutmut ``.meta`` file."""
    data: dict[str, Any] = json.loads(meta.read_text(encoding="utf-8"))
    verdicts = data.get("exit_code_by_key")
    if not isinstance(verdicts, dict):
        raise ValueError(f"{meta} has no exit_code_by_key: not a mutmut 3 result file")
    return {str(name): code for name, code in verdicts.items()}


def count_statuses(
    verdicts: Mapping[str, int | None], status_of: Callable[[int | None], str]
) -> dict[str, int]:
    """How many mutants have each status (report keys, ``killed`` first)."""
    counts = Counter(status_name(status_of(code)) for code in verdicts.values())
    order = ["killed", "survived", "no_tests", "timeout", "suspicious", "segfault"]
    return {key: counts.get(key, 0) for key in order} | {
        key: n for key, n in sorted(counts.items()) if key not in order
    }


def is_reported(status: str) -> bool:
    """Whether a mutant with this status (a report key) belongs in the survivor list."""
    return status not in CAUGHT and status not in _NOT_RUN


def function_of(mutant: str) -> tuple[str | None, str]:
    """(class or None, function) a mutant was made from, by its name."""
    mangled = mutant.partition("__mutmut_")[0].rpartition(".")[2]
    if _SEPARATOR in mangled:
        _, cls, function = mangled.split(_SEPARATOR, 2)
        return cls, function
    if not mangled.startswith("x_"):
        raise ValueError(f"{mutant!r} is not a mutmut 3 mutant name")
    return None, mangled[2:]


def changed_line(source: str, mutant: str, diff: str) -> int:
    """The line of ``source`` (1-based) a mutant's function diff first changes.

    mutmut diffs the function alone, so its hunk lines count from the function's first
    line (its leading comments, decorators or ``def``); the line found is checked against
    the file's text, and looked up in the function when it does not match.
    """
    lines = source.splitlines()
    node = _find_function(ast.parse(source), *function_of(mutant))
    if node is None:
        raise LookupError(f"{mutant}: its function is not in the source")
    first = _first_line(lines, node)
    offset, text = _first_removed(diff)
    guess = first + offset - 1
    if text is None or _same(lines, guess, text):
        return guess
    matches = [n for n in range(first, (node.end_lineno or first) + 1) if _same(lines, n, text)]
    return min(matches, key=lambda n: abs(n - guess)) if matches else guess


def _same(lines: list[str], number: int, text: str) -> bool:
    return 0 < number <= len(lines) and lines[number - 1].strip() == text.strip()


def _find_function(
    tree: ast.Module, cls: str | None, name: str
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    body: Iterable[ast.stmt] = tree.body
    if cls is not None:
        owner = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), None)
        body = owner.body if owner is not None else ()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    return None


def _first_line(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The first line mutmut's copy of the function starts with: the comments right above
    its decorators or ``def`` count, blank lines before them do not."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    above = first - 1
    while above >= 1 and (not lines[above - 1].strip() or lines[above - 1].lstrip()[:1] == "#"):
        above -= 1
    start = above + 1
    while start < first and not lines[start - 1].strip():
        start += 1
    return start


def _first_removed(diff: str) -> tuple[int, str | None]:
    """(line within the function, its text) of the diff's first removed line."""
    old, in_hunk = 1, False
    for line in diff.splitlines():
        hunk = _HUNK.match(line)
        if hunk:
            old, in_hunk = int(hunk.group(1)), True
        elif in_hunk and line.startswith("-"):
            return old, line[1:]
        elif in_hunk and line.startswith(" "):
            old += 1
    return old, None


def survivor(mutant: str, status: str, diff: str, *, source: str, file: str) -> Survivor:
    """A survivor row, its line found in ``source``."""
    try:
        line = changed_line(source, mutant, diff)
    except (LookupError, ValueError, SyntaxError):
        line = 0
    return Survivor(
        file=file,
        line=line,
        mutant=mutant,
        status=status,
        diff=diff,
        equivalent=why_equivalent(diff) if status == "survived" else None,
    )
