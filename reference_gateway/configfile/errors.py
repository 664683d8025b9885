"""What is wrong with a config file, where: ``gateway.toml:12: providers.acme.base_url:
must be an http(s) URL``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from provara_kit.errors import ConfigurationError
from reference_gateway.configfile.locate import KeyPath

__all__ = ["ConfigFileError", "Problem", "render_key"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def render_key(path: KeyPath) -> str:
    """A key path as it reads in TOML: ``fallbacks."acme/large"[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = part if _BARE.match(part) else '"' + part.replace('"', '\\"') + '"'
        text += f".{name}" if text else name
    return text


@dataclass(frozen=True, slots=True)
class Problem:
    """One error: its line (None when the file as a whole is wrong), key path and message."""

    line: int | None
    path: KeyPath
    message: str

    def render(self, file: str) -> str:
        where = file if self.line is None else f"{file}:{self.line}"
        key = render_key(self.path)
        text = f"{where}: {key}: {self.message}" if key else f"{where}: {self.message}"
        return " ".join(text.split())  # one line, whatever a parser's message held


class ConfigFileError(ConfigurationError):
    """The config file cannot be used; ``str()`` is the first problem on one line (and how
    many more there are), :attr:`problems` all of them in the order of the file."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = tuple(problems)
        first = self.problems[0].render(file) if self.problems else f"{file}: invalid"
        more = len(self.problems) - 1
        super().__init__(
            first
            + (f" (and {more} more; 'provara-gateway config check' lists all)" if more else "")
        )

    def lines(self) -> list[str]:
        """Every problem, one line each."""
        return [problem.render(self.file) for problem in self.problems]
