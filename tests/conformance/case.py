"""One row of the known-bad-adapter table: a check, a broken adapter and the failure text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from conformance import ConformanceTarget
from provara_kit.providers.base import HTTPProvider
from tests.conformance.bad_adapters import MODEL, good_parent, make_target


@dataclass(frozen=True)
class Case:
    """``check_id`` fails on ``adapter`` with a message matching ``match``."""

    check_id: str
    adapter: type[HTTPProvider]
    match: str
    models: tuple[str, ...] = (MODEL,)
    control_models: tuple[str, ...] | None = None  # the fixed data, when the bug is data
    streaming: bool = True  # False: both run with streaming off, as <NAME>_STREAMING=0

    @property
    def id(self) -> str:
        return f"{self.check_id}:{self.adapter.__name__}"

    def target(self, fixtures: Path, *, control: bool = False) -> ConformanceTarget:
        adapter = good_parent(self.adapter) if control else self.adapter
        models = (self.control_models or self.models) if control else self.models
        target = make_target(adapter, models=models, fixtures_dir=fixtures)
        return target if self.streaming else dataclasses.replace(target, streaming=False)
