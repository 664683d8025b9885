"""The conformance report: one row per (target, check), written as JSON and Markdown.

and JUnit XML for CI systems. A mutation run (``nox -s conformance -- TARGET --mutate``)
adds a ``mutation`` section per target to report.json and a section to report.md.
"""

from __future__ import annotations

import json
import platform
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from conformance.context import FAKE_KEY
from conformance.params import declared_params
from conformance.target import ConformanceTarget
from provara_kit.errors import redact

__all__ = [
    "CheckRow",
    "ConformanceReport",
    "MutationResult",
    "Status",
    "Survivor",
    "write_mutation",
]

Status = Literal["passed", "failed", "skipped", "xfailed"]
_SYMBOL = {"passed": "✅", "failed": "❌", "skipped": "⏭", "xfailed": "⚠️ xfail"}


@dataclass
class CheckRow:
    target: str
    id: str
    status: Status
    reason: str = ""
    duration_s: float = 0.0


@dataclass
class ConformanceReport:
    suite_version: str
    live: bool = False
    partial: bool = False
    targets: dict[str, ConformanceTarget] = field(default_factory=dict)
    rows: dict[tuple[str, str], CheckRow] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=lambda: {FAKE_KEY})
    """Keys scrubbed from everything written: the suite's fake key, and live keys."""

    def scrub(self, text: str) -> str:
        """``text`` with every key in :attr:`secrets` replaced."""
        return redact(text, self.secrets)

    def record(self, row: CheckRow) -> None:
        """Keep the worst outcome per (target, check): a failed teardown beats a passed call."""
        key = (row.target, row.id)
        previous = self.rows.get(key)
        if previous is None or (previous.status != "failed" and row.status == "failed"):
            if previous is not None:
                row.duration_s += previous.duration_s
            self.rows[key] = row
        else:
            previous.duration_s += row.duration_s

    @property
    def failed(self) -> list[CheckRow]:
        return [row for row in self.rows.values() if row.status == "failed"]

    def check_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for _target, check_id in self.rows:
            seen.setdefault(check_id, None)
        return list(seen)

    def target_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for target, _check_id in self.rows:
            seen.setdefault(target, None)
        return list(seen)

    def to_json(self) -> dict[str, object]:
        return {
            "suite": "provara-conformance",
            "suite_version": self.suite_version,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "live" if self.live else "hermetic",
            "partial": self.partial,
            "python": platform.python_version(),
            "targets": [self._target_json(name) for name in self.target_names()],
            "summary": {
                status: sum(1 for r in self.rows.values() if r.status == status)
                for status in ("passed", "failed", "skipped", "xfailed")
            },
        }

    def _target_json(self, name: str) -> dict[str, object]:
        target = self.targets.get(name)
        return {
            "target": name,
            "adapter": target.adapter if target else "",
            "adapter_version": target.adapter_version if target else "unknown",
            "wire": target.dialect.name if target else "",
            "streaming": target.streaming if target else True,
            "models": list(target.models) if target else [],
            "params": _params_json(target),
            "checks": [
                {k: v for k, v in asdict(row).items() if k != "target"}
                for (t, _), row in self.rows.items()
                if t == name
            ],
        }

    def to_markdown(self) -> str:
        checks = self.check_ids()
        lines = [
            f"# Provara conformance report (suite {self.suite_version}, "
            f"{'live' if self.live else 'hermetic'})",
            "",
            "| provider | adapter | " + " | ".join(f"`{c}`" for c in checks) + " |",
            "|---|---|" + "---|" * len(checks),
        ]
        for name in self.target_names():
            target = self.targets.get(name)
            adapter = f"{target.adapter} {target.adapter_version}" if target else ""
            if target and not target.streaming:
                adapter += " (streaming off)"
            cells = []
            for check_id in checks:
                row = self.rows.get((name, check_id))
                cells.append(_SYMBOL[row.status] if row else "—")
            lines.append(f"| {name} | {adapter} | " + " | ".join(cells) + " |")
        problems = [r for r in self.rows.values() if r.status != "passed"]
        if problems:
            lines += ["", "## Not passed", ""]
            for row in problems:
                reason = row.reason.replace("\n", " ").replace("|", "\\|")
                lines.append(f"- **{row.target}** `{row.id}` {row.status}: {reason}")
        return "\n".join(lines) + "\n"

    def to_junit(self) -> str:
        suites = ET.Element("testsuites", name="provara-conformance")
        for name in self.target_names():
            rows = [r for (t, _), r in self.rows.items() if t == name]
            suite = ET.SubElement(
                suites,
                "testsuite",
                name=name,
                tests=str(len(rows)),
                failures=str(sum(r.status == "failed" for r in rows)),
                skipped=str(sum(r.status in ("skipped", "xfailed") for r in rows)),
                time=f"{sum(r.duration_s for r in rows):.3f}",
            )
            for row in rows:
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"conformance.{name}",
                    name=row.id,
                    time=f"{row.duration_s:.3f}",
                )
                if row.status == "failed":
                    ET.SubElement(case, "failure", message=row.reason[:1000]).text = row.reason
                elif row.status in ("skipped", "xfailed"):
                    ET.SubElement(case, "skipped", message=f"{row.status}: {row.reason}"[:1000])
        ET.indent(suites)
        return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"

    def write(self, folder: Path) -> list[Path]:
        """Write report.json, report.md and junit.xml into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        outputs = {
            "report.json": json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n",
            "report.md": self.to_markdown(),
            "junit.xml": self.to_junit(),
        }
        paths = []
        for filename, text in outputs.items():
            path = folder / filename
            path.write_text(self.scrub(text), encoding="utf-8")
            paths.append(path)
        return paths


def _params_json(target: ConformanceTarget | None) -> dict[str, object] | None:
    """The request parameters the target declares (see ``request-shape``)."""
    if target is None:
        return None
    try:
        return declared_params(target).to_json()
    except Exception as exc:  # the report is written whatever the adapter does
        return {"error": f"{type(exc).__name__}: {exc}"}


MUTATION_HEADING = "## Mutation testing"
_NOT_TESTED = ("not_checked", "skipped", "caught_by_type_check", "interrupted")


@dataclass
class Survivor:
    """A mutant no check killed: where it is, what it changed, and how it got away."""

    file: str
    line: int
    mutant: str
    status: str
    diff: str
    equivalent: str | None = None
    """Why the mutant cannot change behaviour, when its diff shows it (else ``None``)."""


@dataclass
class MutationResult:
    """The suite's power on one target: mutmut's verdict on each mutant of its module(s).

    ``counts`` maps a status (``killed``, ``survived``, ``timeout``, ``suspicious``,
    ``no_tests``, ``segfault``, ``skipped``, ``not_checked``, ...) to a number of mutants.
    """

    target: str
    tool: str
    tool_version: str
    modules: list[str]
    counts: dict[str, int]
    survivors: list[Survivor] = field(default_factory=list)
    duration_s: float = 0.0
    sampled_from: int | None = None

    @property
    def tested(self) -> int:
        """Mutants with a verdict: every one but those not run, skipped or filtered."""
        return sum(n for status, n in self.counts.items() if status not in _NOT_TESTED)

    @property
    def score(self) -> float | None:
        """(killed + timeout) / tested; a mutant no check reaches counts against it."""
        if not self.tested:
            return None
        caught = self.counts.get("killed", 0) + self.counts.get("timeout", 0)
        return caught / self.tested

    @property
    def equivalent(self) -> int:
        """Survivors whose diff shows they cannot change behaviour."""
        return sum(1 for s in self.survivors if s.equivalent)

    @property
    def score_without_equivalent(self) -> float | None:
        """The score with the provably equivalent mutants left out of the tested ones."""
        tested = self.tested - self.equivalent
        if tested <= 0:
            return None
        caught = self.counts.get("killed", 0) + self.counts.get("timeout", 0)
        return caught / tested

    def to_json(self) -> dict[str, object]:
        score = self.score
        return {
            "tool": self.tool,
            "tool_version": self.tool_version,
            "modules": list(self.modules),
            "counts": dict(self.counts),
            "tested": self.tested,
            "score": None if score is None else round(score, 4),
            "equivalent": self.equivalent,
            "score_without_equivalent": _rounded(self.score_without_equivalent),
            "sampled_from": self.sampled_from,
            "duration_s": round(self.duration_s, 1),
            "survivors": [asdict(s) for s in self.survivors],
        }

    def summary(self) -> str:
        score = self.score
        shown = "n/a" if score is None else f"{score:.1%}"
        others = ", ".join(
            f"{n} {status.replace('_', ' ')}"
            for status, n in self.counts.items()
            if n and status not in ("killed",)
        )
        sample = f", a sample of {self.tested} of {self.sampled_from}" if self.sampled_from else ""
        without = self.score_without_equivalent
        equivalent = (
            f"; {self.equivalent} equivalent, {without:.1%} without them"
            if self.equivalent and without is not None
            else ""
        )
        return (
            f"score {shown}: {self.counts.get('killed', 0)} of {self.tested} mutants killed"
            f"{f' ({others})' if others else ''}{sample}{equivalent}, {self.duration_s:.0f} s"
        )

    def markdown_lines(self) -> list[str]:
        modules = ", ".join(f"`{m}`" for m in self.modules)
        lines = [
            f"### {self.target}",
            "",
            f"{modules} with {self.tool} {self.tool_version}: {self.summary()}.",
            "",
        ]
        for survivor in self.survivors:
            why = f" — equivalent: {survivor.equivalent}" if survivor.equivalent else ""
            lines += [
                f"- `{survivor.file}:{survivor.line}` {survivor.status.replace('_', ' ')}: "
                f"`{survivor.mutant}`{why}",
                "",
                "  ```diff",
                *(f"  {line}" for line in survivor.diff.splitlines()),
                "  ```",
                "",
            ]
        return lines


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def mutation_markdown(results: list[MutationResult]) -> str:
    """The report.md section for ``results``: score, then every survivor with its diff."""
    lines = [
        MUTATION_HEADING,
        "",
        "Score: mutants killed (or timed out) over mutants tested; a mutant in code no check "
        "runs (`no tests`) counts as surviving.",
        "",
    ]
    for result in results:
        lines += result.markdown_lines()
    return "\n".join(lines).rstrip("\n") + "\n"


def write_mutation(folder: Path, results: list[MutationResult]) -> list[Path]:
    """Add ``results`` to report.json (a ``mutation`` entry per target) and report.md (its
    mutation section, replaced if there was one) in ``folder``, creating them if needed."""
    from conformance import SUITE_VERSION

    folder.mkdir(parents=True, exist_ok=True)
    blank = ConformanceReport(suite_version=SUITE_VERSION)
    json_path, md_path = folder / "report.json", folder / "report.md"
    data: dict[str, Any] = (
        json.loads(json_path.read_text(encoding="utf-8"))
        if json_path.is_file()
        else blank.to_json()
    )
    targets: list[dict[str, Any]] = data.setdefault("targets", [])
    for result in results:
        entry = next((t for t in targets if t.get("target") == result.target), None)
        if entry is None:
            entry = {"target": result.target, "checks": []}
            targets.append(entry)
        entry["mutation"] = result.to_json()
    markdown = md_path.read_text(encoding="utf-8") if md_path.is_file() else ""
    kept = markdown.split(MUTATION_HEADING, 1)[0].rstrip("\n")
    if not kept:
        kept = f"# Provara conformance report (suite {SUITE_VERSION})"
    outputs = {
        json_path: json.dumps(data, indent=2, ensure_ascii=False) + "\n",
        md_path: kept + "\n\n" + mutation_markdown(results),
    }
    for path, text in outputs.items():
        path.write_text(blank.scrub(text), encoding="utf-8")
    return list(outputs)
