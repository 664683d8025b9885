"""The modules a run mutates, and the throwaway workspace mutmut runs in."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MutatedModule", "Workspace", "adapter_module", "module_from_path", "resolve_module"]

SUITE_DIR = "suite"
TEST_FILE = "test_conformance_mutation.py"

_TEST_SOURCE = '''\
"""The conformance suite against {name!r}: the test command of a mutation run."""

from pathlib import Path

import pytest

from conformance.suite import ProviderConformance
from conformance.target import ConformanceTarget

FIXTURES = {fixtures}


class TestConformanceMutation(ProviderConformance):
    @pytest.fixture
    def conformance_target(self) -> ConformanceTarget:
        return ConformanceTarget.from_registry({name!r}, fixtures_dir=FIXTURES)
'''


@dataclass(frozen=True)
class MutatedModule:
    """A module to mutate: ``relpath`` (``provara_kit/providers/anthropic.py``) under
    ``root``, the directory its top-level package (or the module itself) is imported from."""

    name: str
    root: Path
    relpath: Path

    @property
    def top(self) -> str:
        return self.relpath.parts[0]

    @property
    def source(self) -> Path:
        return self.root / self.relpath


def resolve_module(name: str) -> MutatedModule:
    """The importable module ``name`` (dotted), found where the suite would import it from."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise LookupError(f"module {name!r} cannot be found: {exc}") from None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise LookupError(
            f"no Python source module named {name!r} is importable here: install its package "
            "(or name a module with --mutate-module)"
        )
    origin = Path(spec.origin).resolve()
    depth = name.count(".") + (1 if origin.name == "__init__.py" else 0)
    root = origin.parents[depth]
    return MutatedModule(name=name, root=root, relpath=origin.relative_to(root))


def module_from_path(path: Path) -> str:
    """The dotted name of the module in file ``path`` (its packages have ``__init__.py``)."""
    path = path.resolve()
    if path.suffix != ".py" or not path.is_file():
        raise LookupError(f"{path} is not a Python source file")
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def adapter_module(target: str) -> str:
    """The module of the adapter class the registered provider ``target`` builds."""
    from conformance.target import ConformanceTarget, registered_targets

    registered_targets([target])
    adapter = ConformanceTarget.from_registry(target).adapter
    return adapter.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Workspace:
    """A directory with the packages to mutate, a mutmut configuration and the suite's test."""

    path: Path

    @property
    def mutants(self) -> Path:
        return self.path / "mutants"

    def build(
        self,
        target: str,
        modules: list[MutatedModule],
        *,
        fixtures: Path | None,
        pytest_args: list[str],
    ) -> None:
        """Copy each module's top-level package, write the configuration and the test."""
        self.path.mkdir(parents=True, exist_ok=True)
        roots: dict[str, Path] = {}
        for module in modules:
            if roots.setdefault(module.top, module.root) != module.root:
                raise LookupError(f"two packages named {module.top!r} cannot be mutated at once")
        for top, root in roots.items():
            _copy(root / top, self.path / top)
        suite = self.path / SUITE_DIR
        suite.mkdir(exist_ok=True)
        fixture_literal = f"Path({str(fixtures)!r})" if fixtures else "None"
        test = _TEST_SOURCE.format(name=target, fixtures=fixture_literal)
        (suite / TEST_FILE).write_text(test, encoding="utf-8")
        config = mutmut_config(sorted(roots), [m.relpath for m in modules], pytest_args)
        (self.path / "pyproject.toml").write_text(config, encoding="utf-8")


def mutmut_config(tops: list[str], files: list[Path], pytest_args: list[str]) -> str:
    """A pyproject.toml: mutmut mutates only ``files`` and runs the suite's test; pytest runs
    with the suite's own settings (strict xfails), not the project's."""

    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    return (
        "[tool.mutmut]\n"
        f"source_paths = {toml_list(tops)}\n"
        f"only_mutate = {toml_list([f.as_posix() for f in files])}\n"
        f"also_copy = {toml_list([SUITE_DIR])}\n"
        f"pytest_add_cli_args_test_selection = {toml_list([SUITE_DIR])}\n"
        f"pytest_add_cli_args = {toml_list(pytest_args)}\n"
        "use_git_change_detection = false\n"
        "\n"
        "[tool.pytest.ini_options]\n"
        "xfail_strict = true\n"
    )


def _copy(source: Path, destination: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants")
    if source.is_dir():
        shutil.copytree(source, destination, ignore=ignore, dirs_exist_ok=True)
    else:
        shutil.copy2(source, destination)
