"""A generated adapter package, installed in a fresh virtualenv, passes the suite on day one.

For each starting wire shape: generate the package, install it with this checkout's
provara-kit into a new uv virtualenv, run its own tests and the suite against it as a
registered provider (what ``nox -s conformance -- PATH`` runs, and then that command
itself), check the registry finds it, run its own noxfile (tests, conformance, lint) and
its README's walkthrough against an API on loopback. Then break the adapter the way
authors do and show the suite names the right checks.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance import CHECKS
from tests.cookiecutter.project import (
    KIT,
    SHAPES,
    WIRE_SUFFIXES,
    Result,
    Venv,
    generate,
    report_statuses,
    serve_api,
)

TIMINGS: dict[str, dict[str, float]] = {}
"""shape -> step -> seconds, printed at the end of the run (see conftest.py)."""

ANSWERS = {
    "anthropic-messages": {"provider_name": "Acme AI", "wire_shape": "anthropic-messages"},
    # The longest names the template accepts, so every line limit is exercised.
    "openai-chat": {
        "provider_name": "Contoso Inference Cloud",
        "wire_shape": "openai-chat",
        "base_url": "http://127.0.0.1:8080/openai/v1/",
        "models": (
            "accounts/contoso/models/contoso-large-instruct-v2-2026-01-15-ftx=1234.5678/9999.9999"
            ", contoso-small = 0.1/0.4"
        ),
    },
    # A server on the operator's own machine, with Ollama-style model tags.
    "ollama-chat": {
        "provider_name": "Initech Local",
        "wire_shape": "ollama-chat",
        "base_url": "http://127.0.0.1:11434",
        "models": "initech-large:70b=0.20/0.60,initech-small:8b=0/0",
    },
}
SLUGS = {
    "anthropic-messages": "acme-ai",
    "openai-chat": "contoso-inference-cloud",
    "ollama-chat": "initech-local",
}


@dataclass
class Generated:
    shape: str
    slug: str
    project: Path
    venv: Venv
    tmp: Path

    @property
    def module(self) -> str:
        return "provara_provider_" + self.slug.replace("-", "_")

    @property
    def env_prefix(self) -> str:
        return self.slug.replace("-", "_").upper()

    def nox(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        """nox from this venv, with uv as its virtualenv backend."""
        self.venv.install("nox")
        from uv import find_uv_bin

        path = os.pathsep.join([str(Path(find_uv_bin()).parent), os.environ.get("PATH", "")])
        return self.venv.run(
            str(self.venv.bin / "nox"),
            *("--default-venv-backend", "uv"),
            *args,
            cwd=cwd,
            env={"PATH": path, **(env or {})},
        )

    def registered_suite(self, report_dir: Path) -> Result:
        """The suite against the installed package as a registered provider, the way the
        kit's ``nox -s conformance -- PATH`` runs it (its own ini, not this project's)."""
        ini = self.tmp / "conformance.ini"
        ini.write_text("[pytest]\nxfail_strict = true\n", encoding="utf-8")
        return self.venv.run(
            *("python", "-m", "pytest", "-c", str(ini), "--rootdir", str(self.tmp)),
            *("-p", "no:cacheprovider", "--pyargs", "conformance.registered"),
            f"--conformance-target={self.slug}",
            f"--report-dir={report_dir}",
            cwd=self.tmp,
            env={"PYTHONDONTWRITEBYTECODE": "1"},
        )


@pytest.fixture(scope="module", params=SHAPES)
def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Generated]:
    shape: str = request.param
    tmp = tmp_path_factory.mktemp(shape)
    timings = TIMINGS.setdefault(shape, {})
    started = time.perf_counter()
    project = generate(tmp / "out", **ANSWERS[shape])
    timings["generate"] = time.perf_counter() - started
    venv = Venv.create(tmp / "venv")
    started = time.perf_counter()
    venv.install("-e", str(KIT), "-e", f"{project}[test]")
    timings["venv + install"] = time.perf_counter() - started + venv.timings["venv"]
    yield Generated(shape, SLUGS[shape], project, venv, tmp)


def test_its_own_tests_pass_with_every_check(generated: Generated) -> None:
    report = generated.tmp / "own-report"
    result = generated.venv.run(
        *("python", "-m", "pytest", "-p", "no:cacheprovider", f"--report-dir={report}"),
        cwd=generated.project,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    TIMINGS[generated.shape]["own tests"] = result.seconds
    assert result.returncode == 0, result.output
    assert report_statuses(report / "report.json") == dict.fromkeys(CHECKS, "passed")


def test_the_suite_passes_it_as_a_registered_provider(generated: Generated) -> None:
    report = generated.tmp / "registered-report"
    result = generated.registered_suite(report)
    TIMINGS[generated.shape]["registered suite"] = result.seconds
    assert result.returncode == 0, result.output
    expected = dict.fromkeys(CHECKS, "passed")
    # The registered target knows no fixtures folder; the package's own run replays them.
    expected["replay-fixtures"] = "skipped"
    assert report_statuses(report / "report.json") == expected


REGISTRY_PROBE = """
import json, sys
from conformance import resolve_dialect
from provara_kit.pricing import MODEL_PRICING
from provara_kit.registry import default_registry

name = sys.argv[1]
registry = default_registry()
spec = registry.get(name)
dialect = resolve_dialect(spec.wire)
print(json.dumps({
    "names": registry.names(),
    "plugin_errors": registry.plugin_errors,
    "source": spec.source,
    "wire": spec.wire,
    "api_key_env": spec.api_key_env,
    "base_url_env": spec.base_url_env,
    "default_base_url": spec.default_base_url,
    "models": list(registry.models[name]),
    "prices": {k: list(v) for k, v in MODEL_PRICING.items() if k.startswith(name + "/")},
    "dialect": f"{type(dialect).__module__}.{type(dialect).__qualname__}",
    "adapter": type(registry.create(name)).__qualname__,
}))
"""


def test_the_registry_finds_it_through_the_entry_point(generated: Generated) -> None:
    result = generated.venv.run("python", "-c", REGISTRY_PROBE, generated.slug, cwd=generated.tmp)
    assert result.returncode == 0, result.output
    found = json.loads(result.stdout)
    slug, env = generated.slug, generated.slug.replace("-", "_").upper()
    suffix = WIRE_SUFFIXES[generated.shape]
    assert slug in found["names"] and not found["plugin_errors"]
    assert found["source"] == f"entry-point:provara-provider-{slug}"
    assert found["wire"] == f"{slug}-{suffix}"
    assert (found["api_key_env"], found["base_url_env"]) == (f"{env}_API_KEY", f"{env}_BASE_URL")
    assert not found["default_base_url"].endswith("/")
    assert found["dialect"].startswith(f"{generated.module}.dialect.")
    assert found["adapter"].endswith("Provider")
    assert sorted(found["prices"]) == sorted(f"{slug}/{m}" for m in found["models"])


BREAKAGES = {
    "forwards an empty first chunk": (
        """
    def complete_stream(self, request: ChatRequest) -> ChatStream:
        # Broken on purpose: a "first-chunk fallback" that sends an empty chunk first.
        from provara_kit.streaming import ChatStream
        from provara_kit.types import TextDelta

        inner = super().complete_stream(request)

        async def events():
            async with inner:
                yield TextDelta("")
                async for event in inner:
                    yield event

        return ChatStream(events())
""",
        # The empty chunk also comes before a 200 error body, which must yield no event.
        {"empty-chunk-filter", "error-in-200"},
        True,
    ),
    "streams without the pipeline, so without the meta": (
        """
    def complete_stream(self, request: ChatRequest) -> ChatStream:
        # Broken on purpose: its own stream loop instead of the shared pipeline.
        from contextlib import aclosing

        from provara_kit.streaming import ChatStream
        from provara_kit.types import ReasoningDelta, TextDelta, ToolCallDelta

        upstream = self._upstream_events(request, self._build_payload(request, stream=True))

        async def events():
            async with aclosing(upstream):
                async for event in upstream:
                    if isinstance(event, TextDelta | ReasoningDelta | ToolCallDelta):
                        yield event

        return ChatStream(events())
""",
        {
            "meta-event",
            "status-200",
            "stream-aborted",
            "stream-timeout",
            "empty-chunk-filter",
            "token-fallback",
        },
        False,
    ),
    "maps every 4xx to a bad request": (
        """
    def _error(self, response: httpx.Response, body: bytes) -> Exception:
        # Broken on purpose: any 4xx is read as a bad request.
        from provara_kit.errors import BadRequestError

        error = super()._error(response, body)
        if 400 <= response.status_code < 500:
            return BadRequestError(
                str(error), status_code=response.status_code, provider=self.name
            )
        return error
""",
        # The model list's 401 is a bad request too.
        {"status-4xx", "error-bodies", "retry-after", "model-discovery"},
        True,
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_suite_names_the_checks_a_broken_adapter_fails(
    generated: Generated, breakage: str
) -> None:
    code, expected, exactly = BREAKAGES[breakage]
    provider_py = generated.project / "src" / generated.module / "provider.py"
    original = provider_py.read_text(encoding="utf-8")
    suffix = WIRE_SUFFIXES[generated.shape]
    anchor = f'    wire: ClassVar[str] = "{generated.slug}-{suffix}"\n'
    assert anchor in original
    provider_py.write_text(original.replace(anchor, anchor + code), encoding="utf-8")
    report = generated.tmp / f"broken-{len(code)}"
    try:
        result = generated.registered_suite(report)
    finally:
        provider_py.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.output
    statuses = report_statuses(report / "report.json")
    failed = {check for check, status in statuses.items() if status == "failed"}
    if exactly:
        assert failed == expected, result.output
    else:
        assert expected <= failed, result.output
    assert "status-5xx" not in failed


def test_nox_conformance_installs_and_checks_the_package(generated: Generated) -> None:
    """The real ``nox -s conformance -- PATH`` of this checkout."""
    report = generated.tmp / "nox-report"
    result = generated.nox(
        *("--noxfile", str(KIT / "noxfile.py"), "--envdir", str(generated.tmp / "nox")),
        *("--sessions", "conformance", "--", str(generated.project), f"--report-dir={report}"),
        cwd=KIT,
    )
    TIMINGS[generated.shape]["nox -s conformance -- PATH"] = result.seconds
    if "interpreter" in result.stderr and "not found" in result.stderr:
        pytest.skip(f"nox found no interpreter for the conformance session:\n{result.stderr}")
    assert result.returncode == 0, result.output
    expected = dict.fromkeys(CHECKS, "passed")
    # nox passes PATH/tests/fixtures, so the package's recordings replay here too.
    assert report_statuses(report / "report.json") == expected


def test_its_own_noxfile_runs_every_session(generated: Generated) -> None:
    """``nox`` in the package: tests, conformance and lint, provara-kit from $PROVARA_KIT."""
    result = generated.nox(
        "--envdir",
        str(generated.tmp / "package-nox"),
        cwd=generated.project,
        env={"PROVARA_KIT": str(KIT)},
    )
    TIMINGS[generated.shape]["its own nox"] = result.seconds
    assert result.returncode == 0, result.output
    for session in ("tests", "conformance", "lint"):
        assert f"Session {session} was successful" in result.stderr, result.output


def test_the_readme_walkthrough_works_against_an_api_on_loopback(generated: Generated) -> None:
    """Record exchanges with the README's command, replay them offline without the starter
    recordings, and run the README's pinned completion: against a local API that speaks the
    starting wire over real HTTP."""
    readme = (generated.project / "README.md").read_text(encoding="utf-8")
    (record,) = [line for line in readme.splitlines() if " --live --record " in line]
    (pinned,) = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    probe = f"import json; from {generated.module}.provider import DEFAULT_MODELS as m; "
    probe += "print(json.dumps(m))"
    models = json.loads(generated.venv.run("python", "-c", probe, cwd=generated.tmp).stdout)
    key = "sk-loopback-3f9c2a7d51e04b68"
    fixtures = generated.project / "tests" / "fixtures"
    starters = generated.tmp / "starter-fixtures"
    shutil.copytree(fixtures, starters)
    try:
        with serve_api(generated.shape, api_key=key, models=models) as base_url:
            env = {
                f"{generated.env_prefix}_API_KEY": key,
                f"{generated.env_prefix}_BASE_URL": base_url,
            }
            recorded = generated.venv.run(
                "python", "-m", *shlex.split(record), cwd=generated.project, env=env
            )
            assert recorded.returncode == 0, recorded.output
            new = sorted(p.name for p in fixtures.iterdir() if not (starters / p.name).exists())
            assert new == [
                "status-200-1.fixture.json",
                "status-4xx-1.fixture.json",
                "status-4xx-2.fixture.json",
            ]
            assert not any(key in (fixtures / name).read_text(encoding="utf-8") for name in new)
            for starter in starters.iterdir():
                (fixtures / starter.name).unlink()
            report = generated.tmp / "replay-report"
            replayed = generated.venv.run(
                *("python", "-m", "pytest", "-p", "no:cacheprovider", f"--report-dir={report}"),
                cwd=generated.project,
            )
            assert replayed.returncode == 0, replayed.output
            assert report_statuses(report / "report.json")["replay-fixtures"] == "passed"
            answered = generated.venv.run("python", "-c", pinned, cwd=generated.tmp, env=env)
            assert answered.returncode == 0, answered.output
            assert f"'provider': '{generated.slug}'" in answered.stdout
            assert "TextDelta(text='Hi')" in answered.stdout
    finally:
        shutil.rmtree(fixtures)
        shutil.copytree(starters, fixtures)
