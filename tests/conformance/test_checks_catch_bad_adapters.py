"""Every check catches a known-bad adapter, for the right reason; the built-ins pass them all.

"A check that can never fail is a bug": each case runs one check against one adapter from
``bad_adapters`` and expects the check's own problem text, and the same check on the
unbroken parent adapter (same target, same data) passes, so the failure is the bug's.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

from conformance import CHECKS, ConformanceTarget
from conformance.suite import run_check
from provara_kit.providers.base import HTTPProvider
from provara_kit.registry import REGISTRY
from tests.conformance import bad_adapters as bad
from tests.conformance.bad_adapters import MODEL, PREFIXED_MODEL, UNPRICED_MODEL
from tests.conformance.case import Case

CORE_CASES: tuple[Case, ...] = (
    # status-200
    Case(
        "status-200",
        bad.StripsVendorPrefix,
        r"meta\.model 'acme-large' != 'acme-labs/acme-large'",
        models=(PREFIXED_MODEL,),
    ),
    Case("status-200", bad.RawStopReason, r"complete: finish_reason 'end_turn' != 'stop'"),
    Case("status-200", bad.NoIncludeUsage, r"stream: usage \(\d+, \d+\) != upstream's \(21, 4\)"),
    Case(
        "status-200",
        bad.ReadsAnthropicUsageKeys,
        r"complete: usage sources \('estimated', 'estimated'\)",
    ),
    Case("status-200", bad.ForgetsMeta, r"stream: 0 meta events"),
    # status-4xx
    Case("status-4xx", bad.RetriesOnlyServerErrors, r"HTTP 429 \(complete\): retryable False"),
    Case(
        "status-4xx",
        bad.GenericStatusErrors,
        r"HTTP 401 \(complete\): raised ProviderStatusError, expected AuthenticationError",
    ),
    Case("status-4xx", bad.DropsUpstreamMessage, r"the upstream's message is not in the error"),
    Case(
        "status-4xx",
        bad.IgnoresRetryAfter,
        r"HTTP 429 \(stream\): retry_after None, upstream sent Retry-After: 7",
    ),
    Case(
        "status-4xx",
        bad.KeyInErrorMessage,
        r"HTTP 401 \(complete\): the API key leaks into the error's str",
    ),
    Case(
        "status-4xx",
        bad.UnscrubbedUpstreamEcho,
        r"HTTP 401 \(stream\): the API key leaks into the error's str",
    ),
    Case("status-4xx", bad.KeyInRepr, r"the API key leaks into repr\(provider\)"),
    # status-5xx
    Case(
        "status-5xx",
        bad.Overloaded529AsServerError,
        r"HTTP 529 \(complete\): raised UpstreamServerError, expected OverloadedError",
    ),
    Case("status-5xx", bad.IgnoresRetryAfter, r"HTTP 503 \(complete\): retry_after None"),
    Case("status-5xx", bad.KeyInRepr, r"the API key leaks into repr\(provider\)"),
    # stream-aborted
    Case("stream-aborted", bad.MetaAfterAbort, r"dropped after the first byte: a _provara meta"),
    Case(
        "stream-aborted",
        bad.EndOfBodyIsClean,
        r"before the terminal marker: ended with a clean end, expected StreamAbortedError",
    ),
    Case(
        "stream-aborted",
        bad.ErrorEventEndsStream,
        r"error event after the first content: ended with a clean end",
    ),
    Case(
        "stream-aborted",
        bad.LeavesResponseOpen,
        r"in the middle of an event: the upstream response was left open",
    ),
    # stream-timeout
    Case(
        "stream-timeout",
        bad.NoStreamTimeout,
        r"PROVARA_STREAM_TIMEOUT_MS=100 ended with a clean end, expected StreamTimeoutError",
    ),
    # empty-chunk-filter
    Case(
        "empty-chunk-filter",
        bad.ForwardsEmptyFirstChunk,
        r"keep-alives: event 0 is empty content TextDelta\(text=''\)",
    ),
    Case(
        "empty-chunk-filter",
        bad.ForwardsKeepAlives,
        r"is not a content event: (ResponseStarted|KeepAlive)",
    ),
    # early-close
    Case("early-close", bad.LeavesResponseOpen, r"stopping after the first event left .* open"),
    Case("early-close", bad.MetaFirst, r"the first event was the meta"),
    # meta-event
    Case("meta-event", bad.ForgetsMeta, r"stream \(text\): 0 meta events, expected exactly 1"),
    Case("meta-event", bad.EmitsTwoMetas, r"stream \(text\): 2 meta events, expected exactly 1"),
    Case("meta-event", bad.MetaFirst, r"stream \(text\): the meta is not the last event"),
    Case(
        "meta-event",
        bad.AddsCumulativeUsage,
        r"stream \(text\): tokens \(2468, 568\) != upstream's \(1234, 567\)",
    ),
    Case(
        "meta-event",
        bad.UnpricedCostsZero,
        r"unpriced model reported priced=True, cost=Decimal\('0'\)",
        models=(UNPRICED_MODEL,),
    ),
    Case("meta-event", bad.StalePriceTable, r"cost Decimal\('[\d.]+'\) != [\d.]+ from the pricing"),
    Case(
        "meta-event",
        bad.StopReasonAlwaysStop,
        r"stream \(tool call\): finish_reason 'stop' != 'tool_calls'",
    ),
    # token-fallback
    Case(
        "token-fallback",
        bad.ZeroIsMissing,
        r"a real zero \(stream\): input \(\d+, 'estimated'\) != \(0, 'upstream'\)",
    ),
    Case(
        "token-fallback",
        bad.EstimatesBytes,
        r"usage null \(stream\): input \(16, 'estimated'\) != \(14, 'estimated'\)",
    ),
    # pricing-presence
    Case(
        "pricing-presence",
        bad.DeclaresUnpricedModel,
        r'1 of 2 models are unpriced .* MODEL_PRICING\["acme/acme-preview"\]',
        models=(MODEL, UNPRICED_MODEL),
        control_models=(MODEL,),
    ),
    Case(
        "pricing-presence",
        bad.FiltersModelsByPrefix,
        r"discover_models lost served models: \['acme-large', 'acme-small'\]",
        models=("acme-large", "acme-small"),
    ),
    # properties
    Case("rechunk-invariance", bad.DecodesEachNetworkChunk, r"-byte pieces .* changed the events"),
    Case("rechunk-invariance", bad.ForwardsKeepAlives, r"-byte pieces .* changed the events"),
    Case("unicode-roundtrip", bad.AsciiOnly, r"streamed text '.*' != '.*'"),
    # replay-fixtures: a real recording starts with a role-only chunk (content "")
    Case("replay-fixtures", bad.ForwardsEmptyFirstChunk, r"an empty content event was yielded"),
)


# Each check family keeps its broken adapters and cases in a module of its own
# (``bad_<family>.py`` with a ``CASES`` tuple); they all join this table.
FAMILY_MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"tests.conformance.{info.name}")
    for info in pkgutil.iter_modules([str(Path(__file__).parent)])
    if info.name.startswith("bad_") and info.name != "bad_adapters"
)
CASES: tuple[Case, ...] = CORE_CASES + tuple(
    case for module in FAMILY_MODULES for case in module.CASES
)


def _params() -> list[object]:
    return [pytest.param(case, id=case.id) for case in CASES]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one recorded exchange, so ``replay-fixtures`` has something to play."""
    folder = tmp_path_factory.mktemp("recordings")
    bad.write_recording(folder)
    return folder


@pytest.mark.parametrize("case", _params())
def test_check_catches_bad_adapter(case: Case, recordings: Path) -> None:
    with pytest.raises(AssertionError, match=case.match):
        run_check(case.check_id, case.target(recordings))


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_unbroken_parent_passes_the_same_check(case: Case, recordings: Path) -> None:
    run_check(case.check_id, case.target(recordings, control=True))


def test_every_check_has_a_known_bad_adapter() -> None:
    covered = {case.check_id for case in CASES}
    missing = sorted(set(CHECKS) - covered)
    assert not missing, (
        f"checks with no known-bad adapter that they catch: {missing}. A check that can "
        "never fail is a bug: add an adapter to tests/conformance/bad_adapters.py and a Case."
    )
    unknown = sorted({case.check_id for case in CASES} - set(CHECKS))
    assert not unknown, f"cases name checks that do not exist: {unknown}"


def test_every_bad_adapter_is_caught_and_says_why() -> None:
    adapters = {
        cls
        for module in (bad, *FAMILY_MODULES)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, HTTPProvider)
        and cls.__module__ == module.__name__
        and not cls.__name__.startswith("_")
    }
    caught = {case.adapter for case in CASES}
    assert sorted(cls.__name__ for cls in adapters - caught) == []
    for cls in adapters:
        assert cls.__doc__ and len(cls.__doc__.split()) >= 8, f"{cls.__name__}: name the bug"


# -- the built-in adapters pass everything ---------------------------------------------------

PROPERTY_CHECKS = ("rechunk-invariance", "unicode-roundtrip")
# One per wire: hypothesis runs cost the most.
PROPERTY_TARGETS = ("openai", "anthropic", "bedrock", "ollama", "gemini")
BUILTINS = [spec.name for spec in REGISTRY.specs() if spec.source == "builtin"]
FAST_CHECKS = [check_id for check_id in CHECKS if check_id not in PROPERTY_CHECKS]


def test_property_targets_cover_every_builtin_wire() -> None:
    assert set(PROPERTY_CHECKS) <= set(CHECKS)
    wires = {REGISTRY.get(name).wire for name in BUILTINS}
    assert {REGISTRY.get(name).wire for name in PROPERTY_TARGETS} == wires


@pytest.mark.parametrize("check_id", FAST_CHECKS)
@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_passes(name: str, check_id: str) -> None:
    run_check(check_id, ConformanceTarget.from_registry(name))


@pytest.mark.parametrize("check_id", PROPERTY_CHECKS)
@pytest.mark.parametrize("name", PROPERTY_TARGETS)
def test_builtin_passes_property_checks(name: str, check_id: str) -> None:
    run_check(check_id, ConformanceTarget.from_registry(name))
