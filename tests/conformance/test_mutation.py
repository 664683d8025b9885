"""Mutation runs: mutmut's verdicts read back right, and one whole run on a tiny adapter."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.mutation import MutationError, MutationOptions, run_mutation
from conformance.mutation.__main__ import main
from conformance.mutation.results import (
    changed_line,
    count_statuses,
    function_of,
    is_reported,
    read_verdicts,
)
from conformance.mutation.runner import mutmut_version
from conformance.mutation.workspace import module_from_path, resolve_module
from conformance.report import MutationResult, Survivor, write_mutation

KIT = Path(__file__).resolve().parents[2]
TINY = KIT / "tests" / "conformance" / "tiny_adapter.py"

SOURCE = textwrap.dedent(
    '''\
    """A module."""

    import functools


    def helper(x):
        return x + 1


    class Acme:
        """A class."""

        def first(self):
            return "a"

        # a comment that belongs to the method below

        @functools.cache
        def second(self, y):
            if y > 2:
                return y * 3
            if y < 0:
                return y - 1
            return y - 1
    '''
)


def mutmut_diff(function: str, before: str, after: str) -> str:
    """A diff of one function's text, as mutmut 3 shows a mutant (the function alone), with
    the last ``before`` changed to ``after``."""
    old = textwrap.dedent(function).strip()
    head, _, tail = old.rpartition(before)
    lines = difflib.unified_diff(
        old.split("\n"),
        (head + after + tail).split("\n"),
        fromfile="m.py",
        tofile="m.py",
        lineterm="",
    )
    return "\n".join(lines)


def line_of(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if text in line)


# --- names, lines and counts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pkg.mod.x_helper__mutmut_3", (None, "helper")),
        ("pkg.mod.xǁAcmeǁsecond__mutmut_12", ("Acme", "second")),
        ("pkg.mod.xǁAcmeǁ__init____mutmut_5", ("Acme", "__init__")),
    ],
)
def test_function_of_a_mutant_name(name: str, expected: tuple[str | None, str]) -> None:
    assert function_of(name) == expected


def test_function_of_rejects_a_name_mutmut_does_not_make() -> None:
    with pytest.raises(ValueError, match="not a mutmut 3 mutant name"):
        function_of("pkg.mod.helper__mutmut_1")


def test_changed_line_of_a_function() -> None:
    diff = mutmut_diff("def helper(x):\n    return x + 1\n", "x + 1", "x - 1")
    assert changed_line(SOURCE, "m.x_helper__mutmut_1", diff) == line_of(SOURCE, "return x + 1")


def test_changed_line_counts_the_comment_and_decorator_above_a_method() -> None:
    method = SOURCE[SOURCE.index("    # a comment") :]
    diff = mutmut_diff(method, "y - 1", "y + 1")  # the second of two equal lines
    found = changed_line(SOURCE, "m.xǁAcmeǁsecond__mutmut_4", diff)
    assert found == len(SOURCE.splitlines())


def test_changed_line_falls_back_to_the_text_when_the_offset_is_off() -> None:
    method = SOURCE[SOURCE.index("    @functools") :]  # no comment: every offset is 2 short
    diff = mutmut_diff(method, "y * 3", "y / 3")
    found = changed_line(SOURCE, "m.xǁAcmeǁsecond__mutmut_2", diff)
    assert found == line_of(SOURCE, "return y * 3")


def test_changed_line_of_a_function_not_in_the_source() -> None:
    with pytest.raises(LookupError):
        changed_line(SOURCE, "m.xǁAcmeǁthird__mutmut_1", "")


def test_statuses_counted_with_mutmut_exit_codes() -> None:
    from mutmut.stats import status_by_exit_code

    verdicts = {"a": 1, "b": 3, "c": 0, "d": 33, "e": 36, "f": None, "g": 35}
    counts = count_statuses(verdicts, lambda code: status_by_exit_code[code])
    assert counts["killed"] == 2
    assert counts["survived"] == 1
    assert counts["no_tests"] == 1
    assert counts["timeout"] == 1
    assert counts["suspicious"] == 1
    assert counts["not_checked"] == 1
    assert [s for s in counts if is_reported(s) and counts[s]] == [
        "survived",
        "no_tests",
        "suspicious",
    ]


def test_score_is_caught_over_tested() -> None:
    counts = {"killed": 6, "timeout": 1, "survived": 2, "no_tests": 1, "not_checked": 5}
    result = MutationResult("acme", "mutmut", "3.8.1", ["m.py"], counts)
    assert result.tested == 10
    assert result.score == pytest.approx(0.7)
    assert MutationResult("acme", "mutmut", "3.8.1", [], {"not_checked": 3}).score is None


def test_read_verdicts(tmp_path: Path) -> None:
    meta = tmp_path / "m.py.meta"
    meta.write_text(json.dumps({"exit_code_by_key": {"m.x_f__mutmut_1": 1}}), encoding="utf-8")
    assert read_verdicts(meta) == {"m.x_f__mutmut_1": 1}
    meta.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="not a mutmut 3 result file"):
        read_verdicts(meta)


# --- the report ----------------------------------------------------------------------------


def _result(target: str, killed: int) -> MutationResult:
    survivor = Survivor("m.py", 7, "m.x_f__mutmut_2", "survived", "-    a\n+    b")
    counts = {"killed": killed, "survived": 1}
    return MutationResult(target, "mutmut", "3.8.1", ["m.py"], counts, [survivor], 4.0)


def test_write_mutation_adds_to_the_checks_report(tmp_path: Path) -> None:
    checks = {"suite": "provara-conformance", "targets": [{"target": "acme", "checks": [1]}]}
    (tmp_path / "report.json").write_text(json.dumps(checks), encoding="utf-8")
    (tmp_path / "report.md").write_text("# Provara conformance report\n\ntable\n", "utf-8")
    write_mutation(tmp_path, [_result("acme", 3), _result("other", 1)])
    write_mutation(tmp_path, [_result("acme", 9)])  # a second run replaces the section
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    acme, other = data["targets"]
    assert acme["checks"] == [1]
    assert acme["mutation"]["counts"] == {"killed": 9, "survived": 1}
    assert acme["mutation"]["score"] == 0.9
    assert other["mutation"]["survivors"][0]["line"] == 7
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Provara conformance report\n\ntable\n")
    assert markdown.count("## Mutation testing") == 1
    assert "- `m.py:7` survived: `m.x_f__mutmut_2`" in markdown
    assert "score 90.0%: 9 of 10 mutants killed (1 survived)" in markdown


# --- errors --------------------------------------------------------------------------------


def test_missing_mutmut_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import PackageNotFoundError

    import conformance.mutation.runner as runner

    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(runner, "version", missing)
    with pytest.raises(MutationError, match=r"pip install 'provara-kit\[mutate\]'"):
        mutmut_version()


def test_unknown_module_and_target() -> None:
    with pytest.raises(MutationError, match=r"no\.such\.module"):
        run_mutation("openai", MutationOptions(modules=("no.such.module",)))
    with pytest.raises(MutationError, match="no registered provider named 'nosuch'"):
        run_mutation("nosuch")


def test_cli_without_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "name a target" in capsys.readouterr().err


def test_modules_found_by_name_and_by_path() -> None:
    module = resolve_module("tests.conformance.tiny_adapter")
    assert module.relpath == Path("tests/conformance/tiny_adapter.py")
    assert module.source == TINY
    assert module_from_path(TINY) == "tests.conformance.tiny_adapter"


# --- a whole run ---------------------------------------------------------------------------


def test_mutation_run_on_a_tiny_adapter(tmp_path: Path) -> None:
    """mutmut over the tiny adapter, the suite as its test: the score, and the two places
    no check reaches reported with their lines and diffs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PROVARA_PROVIDER_MODULES"] = "tests.conformance.tiny_adapter"
    report = tmp_path / "report"
    command = [sys.executable, "-m", "conformance.mutation", "tiny", "--report-dir", str(report)]
    done = subprocess.run(
        command, cwd=KIT, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (target,) = json.loads((report / "report.json").read_text(encoding="utf-8"))["targets"]
    mutation = target["mutation"]
    assert mutation["tool"] == "mutmut"
    assert mutation["tool_version"].startswith("3.")
    assert mutation["modules"] == ["tests/conformance/tiny_adapter.py"]
    counts = mutation["counts"]
    assert counts["killed"] > 0
    assert mutation["tested"] == sum(counts.values())
    assert mutation["score"] == round(counts["killed"] / mutation["tested"], 4)
    source = TINY.read_text(encoding="utf-8")
    rows = {(row["line"], row["status"]): row for row in mutation["survivors"]}
    header = rows[(line_of(source, 'headers[CLIENT_HEADER] = "provara-kit"'), "survived")]
    assert header["file"] == "tests/conformance/tiny_adapter.py"
    assert '-    headers[CLIENT_HEADER] = "provara-kit"' in header["diff"]
    assert "xǁTinyProviderǁ_headers__mutmut_" in header["mutant"]
    assert (line_of(source, 'return self.name + " at "'), "no_tests") in rows
    killed_lines = {line_of(source, '"/chat/completions"')}
    assert not killed_lines & {line for line, _ in rows}
    markdown = (report / "report.md").read_text(encoding="utf-8")
    assert f"`tests/conformance/tiny_adapter.py:{header['line']}` survived" in markdown
    assert not (KIT / "mutants").exists()
