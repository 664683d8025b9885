"""The suite with streaming off: built-ins deployed with ``<NAME>_STREAMING=0`` pass, the
checks about the upstream's stream itself say why they do not apply, and the option
``--conformance-streaming-off`` checks any target that way."""

from __future__ import annotations

import pytest

from conformance import CHECKS, ConformanceTarget
from conformance.suite import run_check
from provara_kit.nostream import streaming_env_var
from tests.conformance.test_plugin import adapter_package, project, read_report, rows, run

pytest_plugins = ["pytester"]

STREAM_ONLY = {
    "stream-timeout": "no upstream stream is read, so none can stall",
    "sse-framing": "the wire's stream framing is never read",
    "stream-pacing": "the whole answer arrives at once from one completion",
}
ONLY_STREAMS_RECORDED = {
    **STREAM_ONLY,
    "replay-fixtures": "its recordings are all streams, which it never requests",
}


def test_stream_only_checks_exist() -> None:
    assert set(STREAM_ONLY) <= set(CHECKS)


@pytest.mark.parametrize("check_id", list(CHECKS))
@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_builtin_with_streaming_off_passes(
    name: str, check_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(streaming_env_var(name), "0")
    target = ConformanceTarget.from_registry(name)
    assert target.streaming is False
    if check_id in STREAM_ONLY:
        with pytest.raises(pytest.skip.Exception, match=f"streaming is off for {name}: "):
            run_check(check_id, target)
    else:
        run_check(check_id, target)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_an_adapter_package_is_checked_with_streaming_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    adapter_package(pytester)
    if how == "environment":
        monkeypatch.setenv("ACME_STREAMING", "No")
    result = run(pytester, *(["--conformance-streaming-off"] if how == "option" else []))

    assert result.ret == pytest.ExitCode.OK
    skipped = ONLY_STREAMS_RECORDED  # the package's recordings are streams
    result.assert_outcomes(passed=len(CHECKS) - len(skipped), skipped=len(skipped))
    folder = pytester.path / "conformance-report"
    report = read_report(folder)
    [target] = report["targets"]
    assert target["streaming"] is False
    for check_id, row in rows(report).items():
        if check_id in skipped:
            assert row["status"] == "skipped"
            assert row["reason"].startswith("streaming is off for acme: ")
            assert skipped[check_id] in row["reason"]
        else:
            assert row["status"] == "passed", (check_id, row["reason"])
    assert "test_acme.GoodAcme 1.2.3 (streaming off)" in (folder / "report.md").read_text()


def test_a_registered_target_is_checked_as_its_environment_deploys_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_STREAMING", "off")
    project(pytester)
    result = run(pytester, "--pyargs", "conformance.registered", "--conformance-target", "groq")

    assert result.ret == pytest.ExitCode.OK
    report = read_report(pytester.path / "conformance-report")
    [target] = report["targets"]
    assert target["streaming"] is False
    skipped = {k for k, row in rows(report, "groq").items() if row["status"] == "skipped"}
    # replay-fixtures runs when the corpus holds a recorded completion for groq.
    assert set(STREAM_ONLY) <= skipped <= set(ONLY_STREAMS_RECORDED)
    assert report["summary"]["failed"] == 0


def test_a_bad_streaming_value_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_STREAMING", "sometimes")
    project(pytester)
    result = run(pytester, "--pyargs", "conformance.registered", "--conformance-target", "groq")

    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection stops, saying why
    result.stdout.fnmatch_lines(["*UsageError: GROQ_STREAMING must be 0 or 1*'sometimes'*"])
