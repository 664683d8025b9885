"""Mutants that cannot change what an adapter does, recognised from their diff.

Two kinds are equivalent by the standards the wire is defined by, whatever the adapter:

* a header name whose case changed: HTTP header names are case-insensitive (RFC 9110,
  section 5.1), so ``"AUTHORIZATION"`` sends the same request as ``"authorization"``;
* ``json.dumps``' ``ensure_ascii`` changed: the JSON text escapes non-ASCII characters or
  not, and the value a client parses is the same.

Every other survivor stays a survivor: it is code no check exercises, or a mutant only a
reader can judge, and the report lists it for that reader.
"""

from __future__ import annotations

import re

__all__ = ["why_equivalent"]

_STRING = re.compile(r"""(["'])(.*?)\1""")
_HEADER_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$|^authorization$")
_ENSURE_ASCII = re.compile(r",?\s*ensure_ascii\s*=\s*\w+")
_TRAILING_COMMA = re.compile(r",\s*\)")

HEADER_CASE = "HTTP header names are case-insensitive (RFC 9110, 5.1): the same request"
ENSURE_ASCII = "only the escaping of non-ASCII characters changes: the same JSON value"


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    removed = [line[1:] for line in diff.splitlines() if line[:1] == "-" and line[:3] != "---"]
    added = [line[1:] for line in diff.splitlines() if line[:1] == "+" and line[:3] != "+++"]
    return removed, added


def why_equivalent(diff: str) -> str | None:
    """Why the mutant in ``diff`` cannot change behaviour, or ``None``."""
    removed, added = _changed_lines(diff)
    if len(removed) != 1 or len(added) != 1:
        return None
    before, after = removed[0], added[0]
    if _header_case_only(before, after):
        return HEADER_CASE
    if "json.dumps(" in before and _without_ensure_ascii(before) == _without_ensure_ascii(after):
        return ENSURE_ASCII
    return None


def _without_ensure_ascii(line: str) -> str:
    return _TRAILING_COMMA.sub(")", _ENSURE_ASCII.sub("", line))


def _header_case_only(before: str, after: str) -> bool:
    if before == after or before.lower() != after.lower() or "header" not in before.lower():
        return False
    old, new = _STRING.findall(before), _STRING.findall(after)
    changed = [(a, b) for (_, a), (_, b) in zip(old, new, strict=False) if a != b]
    return len(old) == len(new) and len(changed) == 1 and bool(_HEADER_NAME.match(changed[0][0]))
