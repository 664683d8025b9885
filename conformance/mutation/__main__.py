"""``python -m conformance.mutation TARGET ... [--report-dir DIR] [--mutate-max N] ...``

TARGET is a registered provider name or the path of an installed adapter package (every
provider its ``pyproject.toml`` registers). ``nox -s conformance -- TARGET --mutate`` runs
it after the plain check run, with the same ``--report-dir`` and fixtures.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from conformance.mutation.runner import MutationError, MutationOptions, run_mutation
from conformance.report import MutationResult, write_mutation


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m conformance.mutation",
        allow_abbrev=False,
        description="Mutation score of the conformance suite on an adapter (mutmut 3).",
    )
    cli.add_argument("targets", nargs="*", metavar="TARGET", help="provider name or package path")
    cli.add_argument("--conformance-target", action="append", default=[], metavar="NAME")
    cli.add_argument("--report-dir", default="conformance-report", type=Path, metavar="DIR")
    cli.add_argument("--conformance-fixtures", action="append", default=[], metavar="NAME=DIR")
    cli.add_argument(
        "--mutate-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="a dotted module or .py file to mutate instead of the adapter's (repeatable)",
    )
    cli.add_argument("--mutate-max", type=int, metavar="N", help="test a sample of N mutants")
    cli.add_argument("--mutate-children", type=int, default=2, metavar="N", help="default 2")
    cli.add_argument("--mutate-timeout", type=float, metavar="SECONDS", help="per target")
    cli.add_argument("--mutate-workspace", type=Path, metavar="DIR", help="keep it there")
    cli.add_argument("--mutate", action="store_true", help=argparse.SUPPRESS)
    return cli


def package_targets(folder: Path) -> list[str]:
    """Provider names an adapter package registers under ``provara.providers``."""
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        raise MutationError(f"{folder} has no pyproject.toml: is it an adapter package?")
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    names = list(data.get("project", {}).get("entry-points", {}).get("provara.providers", {}))
    if not names:
        raise MutationError(f"{pyproject} registers no provider under provara.providers")
    return names


def _fixtures(pairs: list[str]) -> dict[str, Path]:
    folders = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise MutationError(f"--conformance-fixtures takes NAME=DIR, got {pair!r}")
        folders[name] = Path(folder).resolve()
    return folders


def _jobs(args: argparse.Namespace) -> list[tuple[str, MutationOptions]]:
    """(provider name, options) for each target on the command line."""
    fixtures = _fixtures(args.conformance_fixtures)
    common = {
        "modules": tuple(args.mutate_module),
        "max_children": max(1, args.mutate_children),
        "max_mutants": args.mutate_max,
        "timeout_s": args.mutate_timeout,
    }
    jobs = []
    for target in [*args.targets, *args.conformance_target]:
        folder = Path(target)
        package = folder.resolve() if folder.is_dir() else None
        names = package_targets(package) if package else [target]
        for name in names:
            recorded = package / "tests" / "fixtures" if package else None
            if name not in fixtures and recorded is not None and recorded.is_dir():
                fixtures[name] = recorded
            workspace = args.mutate_workspace / name if args.mutate_workspace else None
            options = MutationOptions(
                **common, workspace=workspace, fixtures=fixtures, package=package
            )
            jobs.append((name, options))
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        jobs = _jobs(args)
    except MutationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not jobs:
        print("error: name a target to mutate (a provider name or a package path)", file=sys.stderr)
        return 2
    results: list[MutationResult] = []
    failed = False
    for name, options in jobs:
        print(f"{name}: mutating (mutmut, {options.max_children} workers) ...", flush=True)
        try:
            result = run_mutation(name, options)
        except MutationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        results.append(result)
        print(f"{name}: {result.summary()}", flush=True)
        for row in result.survivors:
            print(f"    {row.file}:{row.line} {row.status} {row.mutant}")
    if results:
        paths = write_mutation(args.report_dir, results)
        print("report: " + ", ".join(str(p) for p in paths))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
