"""One mutation run: build the workspace, run mutmut in it (bounded), read the verdicts."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from conformance.mutation.results import count_statuses, is_reported, read_verdicts, survivor
from conformance.mutation.results import status_name as _status_name
from conformance.mutation.workspace import (
    SUITE_DIR,
    TEST_FILE,
    MutatedModule,
    Workspace,
    adapter_module,
    module_from_path,
    resolve_module,
)
from conformance.report import MutationResult, Survivor

__all__ = ["MUTMUT_REQUIREMENT", "MutationError", "MutationOptions", "run_mutation"]

MUTMUT_REQUIREMENT = "mutmut>=3.8,<4"
_MUTMUT = "from mutmut.__main__ import cli; cli()"
_SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
# mutmut reruns only the checks that reach a mutated function, so the suite's guard against
# a partial run is off inside the workspace (its clean run still collects every check).
_PYTEST_ARGS = ["-p", "no:cacheprovider", "--conformance-partial"]


class MutationError(Exception):
    """A mutation run that could not give a verdict; the message says why and what to do."""


@dataclass(frozen=True)
class MutationOptions:
    """How to run: which modules (default: the adapter's), how many workers, bounds."""

    modules: tuple[str, ...] = ()
    """Dotted module names or ``.py`` paths to mutate instead of the adapter's module."""
    max_children: int = 2
    max_mutants: int | None = None
    """Test an evenly spread sample of this many mutants instead of all of them."""
    timeout_s: float | None = None
    """Stop mutmut after this many seconds; mutants not reached count as not checked."""
    workspace: Path | None = None
    """Keep the workspace here (for ``mutmut browse``); default a temporary one, removed."""
    fixtures: Mapping[str, Path] = field(default_factory=dict)
    package: Path | None = None
    """The adapter package the target came from: survivors' files are shown relative to it."""


def mutmut_version() -> str:
    """The installed mutmut's version; a :class:`MutationError` says how to install it."""
    try:
        found = version("mutmut")
    except PackageNotFoundError:
        raise MutationError(
            "mutmut is not installed: pip install 'provara-kit[mutate]' (or "
            f"'{MUTMUT_REQUIREMENT}'); nox -s conformance -- TARGET --mutate installs it"
        ) from None
    if not found.startswith("3."):
        raise MutationError(f"mutmut {found} is installed; this runner needs {MUTMUT_REQUIREMENT}")
    return found


def run_mutation(target: str, options: MutationOptions | None = None) -> MutationResult:
    """Mutate ``target``'s adapter module and run the suite against every mutant."""
    options = options or MutationOptions()
    tool_version = mutmut_version()
    modules = _modules(target, options.modules)
    workspace, temporary = _workspace(target, options.workspace)
    started = time.monotonic()
    try:
        workspace.build(
            target,
            modules,
            fixtures=options.fixtures.get(target),
            pytest_args=[*_PYTEST_ARGS, f"--report-dir={workspace.path / 'checks'}"],
        )
        names = _sample(workspace, modules, options.max_mutants)
        _run_mutmut(workspace, target, options, names)
        result = _result(workspace, target, modules, names, options.package)
    finally:
        if temporary:
            shutil.rmtree(workspace.path, ignore_errors=True)
    result.tool_version = tool_version
    result.duration_s = time.monotonic() - started
    return result


def _modules(target: str, requested: tuple[str, ...]) -> list[MutatedModule]:
    try:
        names = [module_from_path(Path(m)) if m.endswith(".py") else m for m in requested]
        return [resolve_module(name) for name in names or [adapter_module(target)]]
    except LookupError as exc:
        raise MutationError(str(exc)) from None


def _workspace(target: str, requested: Path | None) -> tuple[Workspace, bool]:
    if requested is None:
        return Workspace(Path(tempfile.mkdtemp(prefix=f"provara-mutation-{target}-"))), True
    folder = requested.resolve()
    if (folder / SUITE_DIR / TEST_FILE).is_file():
        shutil.rmtree(folder)  # a workspace of an earlier run
    elif folder.exists() and any(folder.iterdir()):
        raise MutationError(f"{folder} is not empty: give --mutate-workspace a new directory")
    return Workspace(folder), False


def _sample(workspace: Workspace, modules: list[MutatedModule], limit: int | None) -> list[str]:
    """An evenly spread, repeatable sample of ``limit`` mutant names (none: all of them)."""
    if limit is None:
        return []
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    names: list[str] = []
    # mutmut reads its settings from the working directory: the workspace's, not the caller's.
    with contextlib.chdir(workspace.path):
        for module in modules:
            code = (workspace.path / module.relpath).read_text(encoding="utf-8")
            mutated = mutate_file_contents(str(module.relpath), code)
            names += [get_mutant_name(module.relpath, name) for name in mutated.mutant_names]
    if limit >= len(names):
        return []
    return [names[index * len(names) // limit] for index in range(limit)]


def _run_mutmut(
    workspace: Workspace, target: str, options: MutationOptions, names: list[str]
) -> None:
    command = [sys.executable, "-c", _MUTMUT, "run", "--max-children", str(options.max_children)]
    log = workspace.path / "mutmut.log"
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [*command, *names],
            cwd=workspace.path,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=options.timeout_s)
        except subprocess.TimeoutExpired:
            _stop(process)
            print(f"{target}: mutmut stopped after {options.timeout_s:g} s", file=sys.stderr)
            return
        except BaseException:
            _stop(process)
            raise
    if code != 0:
        raise MutationError(_failure(target, log.read_text(encoding="utf-8", errors="replace")))


def _environment() -> dict[str, str]:
    """This environment, less what would steer the inner pytest or mutmut; the directory
    the run was started from stays importable for ``PROVARA_PROVIDER_MODULES``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("MUTANT_UNDER_TEST", None)
    if env.get("PROVARA_PROVIDER_MODULES"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure(target: str, log: str) -> str:
    tail = _readable_tail(log)
    if "Failed to run clean test" in log:
        return (
            f"the conformance suite fails against the unmutated {target}, so no mutant can be "
            f"judged: run nox -s conformance -- {target} and fix that first.\n{tail}"
        )
    if "Unable to force test failures" in log:
        return (
            f"the suite still passes with every function of the mutated module failing: the "
            f"module is not what {target} runs (pick it with --mutate-module).\n{tail}"
        )
    return f"mutmut failed on {target}:\n{tail}"


def _readable_tail(log: str, count: int = 40) -> str:
    """The last lines of mutmut's output, without its progress spinner."""
    lines = log.replace("\r", "\n").splitlines()
    kept = [line for line in lines if line.strip() and not _SPINNER & set(line)]
    return "\n".join(kept[-count:])


def _result(
    workspace: Workspace,
    target: str,
    modules: list[MutatedModule],
    names: list[str],
    package: Path | None,
) -> MutationResult:
    from mutmut.stats import status_by_exit_code

    def status_of(code: int | None) -> str:
        return status_by_exit_code[code]

    counts: dict[str, int] = {}
    survivors: list[Survivor] = []
    total = 0
    for module in modules:
        verdicts = read_verdicts(workspace.mutants / f"{module.relpath}.meta")
        total += len(verdicts)
        if names:
            verdicts = {n: code for n, code in verdicts.items() if n in names}
        for key, n in count_statuses(verdicts, status_of).items():
            counts[key] = counts.get(key, 0) + n
        survivors += _survivors(workspace, module, verdicts, status_of, package)
    return MutationResult(
        target=target,
        tool="mutmut",
        tool_version="",
        modules=[_display(module, package) for module in modules],
        counts=counts,
        survivors=survivors,
        sampled_from=total if names else None,
    )


def _survivors(
    workspace: Workspace,
    module: MutatedModule,
    verdicts: Mapping[str, int | None],
    status_of: Callable[[int | None], str],
    package: Path | None,
) -> list[Survivor]:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    source = (workspace.path / module.relpath).read_text(encoding="utf-8")
    rows = []
    with contextlib.chdir(workspace.path):
        for name, code in verdicts.items():
            status = _status_name(status_of(code))
            if is_reported(status):
                diff = get_diff_for_mutant(name, path=module.relpath)
                file = _display(module, package)
                rows.append(survivor(name, status, diff, source=source, file=file))
    return sorted(rows, key=lambda row: (row.file, row.line, row.mutant))


def _display(module: MutatedModule, package: Path | None) -> str:
    """The module's file as its author knows it: relative to the adapter package given as
    the target (``src/acme/provider.py``), else to its import root."""
    if package is not None:
        for candidate in (package / "src" / module.relpath, package / module.relpath):
            if candidate.is_file():
                return candidate.relative_to(package).as_posix()
    return module.relpath.as_posix()
