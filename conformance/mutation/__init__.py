"""The suite's power on an adapter: mutation testing with mutmut 3, the suite as the test.

``python -m conformance.mutation TARGET`` (what ``nox -s conformance -- TARGET --mutate``
runs) mutates the adapter's module, runs the conformance suite against every mutant, and
writes the score and each surviving mutant (file, line, diff) into the conformance report.

Each run builds a throwaway workspace: a copy of the top-level package that holds the
module, a generated ``[tool.mutmut]`` configuration that mutates only that module, and a
test file that runs every check against the target. mutmut puts its ``mutants/`` copy
first on ``sys.path``, so the mutated module shadows the installed one for the test run
only, even inside the installed ``provara_kit``.
"""

from __future__ import annotations

from conformance.mutation.runner import MutationError, MutationOptions, run_mutation

__all__ = ["MutationError", "MutationOptions", "run_mutation"]
