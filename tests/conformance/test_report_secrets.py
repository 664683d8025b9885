"""The report never carries a key: a failing check's reason is scrubbed of the suite's fake
key and of the live keys in the environment, in every file written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import FAKE_KEY
from conformance.report import CheckRow, ConformanceReport
from tests.conformance.test_plugin import project, run

# Module-level, as in test_plugin.py: pytest refuses pytest_plugins in a nested conftest.
pytest_plugins = ["pytester"]

LIVE_KEY = "sk-live-5f0e1d2c3b4a69788796a5b4c3d2e1f0"

LEAKY_PACKAGE = '''
"""An adapter whose errors quote its key and the live key from the environment."""

import os

from provara_kit.providers.openai_compatible import OpenAICompatibleProvider

from conformance import ProviderConformance


class QuotesKeys(OpenAICompatibleProvider):
    async def complete(self, request):
        raise RuntimeError(f"failed with {self._api_key} (live: {os.environ['ACME_API_KEY']})")


class TestAcmeConformance(ProviderConformance):
    provider_name = "acme"
    wire = "openai-chat"
    models = ("acme-large",)
    api_key_env = "ACME_API_KEY"
    pricing = {"acme/acme-large": ("3", "15")}

    def make_provider(self, *, api_key, base_url, transport):
        return QuotesKeys(
            name="acme", api_key=api_key, base_url=base_url, transport=transport,
            pricing=self.pricing,
        )
'''


def _written(folder: Path) -> str:
    return "".join(
        (folder / name).read_text(encoding="utf-8")
        for name in ("report.json", "report.md", "junit.xml")
    )


def test_the_writer_scrubs_the_fake_and_the_live_key(tmp_path: Path) -> None:
    report = ConformanceReport(suite_version="test")
    report.secrets.add(LIVE_KEY)
    reason = f"raised AuthenticationError: bad key {FAKE_KEY}, live {LIVE_KEY}"
    report.record(CheckRow(target="acme", id="status-4xx", status="failed", reason=reason))
    report.write(tmp_path)
    text = _written(tmp_path)
    assert FAKE_KEY not in text
    assert LIVE_KEY not in text
    assert "[REDACTED]" in text


def test_a_failing_checks_reason_reaches_no_report_file_with_a_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_API_KEY", LIVE_KEY)
    project(pytester)
    pytester.makepyfile(test_acme=LEAKY_PACKAGE)
    result = run(pytester, "--conformance-partial", "-k", "status_200 or request_shape")
    result.assert_outcomes(failed=2)
    folder = pytester.path / "conformance-report"
    text = _written(folder)
    assert FAKE_KEY not in text
    assert LIVE_KEY not in text
    assert FAKE_KEY not in result.stdout.str().split("Provara conformance")[-1]
    target = json.loads((folder / "report.json").read_text(encoding="utf-8"))["targets"][0]
    reasons = [check["reason"] for check in target["checks"]]
    assert all("[REDACTED]" in reason for reason in reasons), reasons
    assert "temperature" in target["params"]["supported"]
    assert target["params"]["source"] == "adapter"
