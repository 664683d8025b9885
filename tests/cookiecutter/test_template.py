"""``cookiecutter-provider`` itself: names from one answer, refusals, placeholders, provenance.

Fast: nothing is installed here (``test_generated.py`` installs and runs the packages).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from cookiecutter.exceptions import FailedHookException

from conformance.replay import default_corpus, load_fixtures
from provara_kit.registry import default_registry
from tests.cookiecutter import corpus_fixtures
from tests.cookiecutter.project import SHAPES, TEMPLATE, generate

LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter|_shapes")


def _names() -> ModuleType:
    spec = importlib.util.spec_from_file_location("provara_names", TEMPLATE / "provara_names.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(project: Path) -> dict[str, str]:
    return {
        str(path.relative_to(project)): path.read_text(encoding="utf-8")
        for path in sorted(project.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(
    ("display_name", "slug", "module", "adapter", "env"),
    [
        ("Acme", "acme", "provara_provider_acme", "AcmeProvider", "ACME"),
        ("Acme AI", "acme-ai", "provara_provider_acme_ai", "AcmeAIProvider", "ACME_AI"),
        (
            "deep infra",
            "deep-infra",
            "provara_provider_deep_infra",
            "DeepInfraProvider",
            "DEEP_INFRA",
        ),
        (
            "Zhīpǔ Cloud",
            "zhipu-cloud",
            "provara_provider_zhipu_cloud",
            "ZhipuCloudProvider",
            "ZHIPU_CLOUD",
        ),
        (
            "Kimi (K2) 0905",
            "kimi-k2-0905",
            "provara_provider_kimi_k2_0905",
            "KimiK20905Provider",
            "KIMI_K2_0905",
        ),
    ],
)
def test_every_name_derives_from_the_display_name(
    tmp_path: Path, display_name: str, slug: str, module: str, adapter: str, env: str
) -> None:
    project = generate(tmp_path, provider_name=display_name)
    assert project.name == f"provara-provider-{slug}"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == f"provara-provider-{slug}"
    entry_points = pyproject["project"]["entry-points"]
    assert entry_points["provara.providers"] == {slug: f"{module}:register"}
    dialect = adapter.removesuffix("Provider") + "Dialect"
    assert entry_points["provara.dialects"] == {f"{slug}-messages": f"{module}.dialect:{dialect}"}
    provider = (project / "src" / module / "provider.py").read_text(encoding="utf-8")
    assert f"class {adapter}(AnthropicProvider):" in provider
    assert f'PROVIDER_NAME: Final = "{slug}"' in provider
    assert f'API_KEY_ENV: Final = "{env}_API_KEY"' in provider
    assert f'BASE_URL_ENV: Final = "{env}_BASE_URL"' in provider
    assert f'DEFAULT_BASE_URL: Final = "https://api.{slug}.example/v1"' in provider
    pricing = (project / "src" / module / "pricing.py").read_text(encoding="utf-8")
    assert f'    "{slug}-large": ("3.00", "15.00"),' in pricing


@pytest.mark.parametrize("shape", SHAPES)
def test_a_shape_gets_its_own_files_and_no_placeholders(tmp_path: Path, shape: str) -> None:
    project = generate(tmp_path, wire_shape=shape)
    files = _files(project)
    fixtures = {f"tests/fixtures/{name}.fixture.json" for name in corpus_fixtures.SOURCES[shape]}
    assert set(files) == {
        ".github/workflows/ci.yml",
        ".gitignore",
        "README.md",
        "noxfile.py",
        "pyproject.toml",
        "src/provara_provider_acme/__init__.py",
        "src/provara_provider_acme/dialect.py",
        "src/provara_provider_acme/pricing.py",
        "src/provara_provider_acme/provider.py",
        "src/provara_provider_acme/py.typed",
        "tests/test_conformance.py",
        "tests/test_provider.py",
        "tests/test_registration.py",
        *fixtures,
    }
    for name, text in files.items():
        assert not LEFTOVER.search(text), f"{name}: {LEFTOVER.search(text)}"
        if name.endswith(".py"):
            compile(text, name, "exec")
    parent = {
        "anthropic-messages": "AnthropicProvider",
        "openai-chat": "OpenAICompatibleProvider",
        "ollama-chat": "OllamaProvider",
    }[shape]
    assert f"class AcmeProvider({parent}):" in files["src/provara_provider_acme/provider.py"]
    for fixture in load_fixtures(project / "tests" / "fixtures"):
        (exchange,) = fixture.exchanges
        assert exchange.path == corpus_fixtures.COMPLETION_PATHS[shape]
        models = re.findall(r'"model"\s*:\s*"([^"]*)"', exchange.body.decode())
        assert set(models) <= {"acme-large"}, fixture.name
        assert exchange.request_body["model"] == "acme-large"


@pytest.mark.parametrize("shape", SHAPES)
def test_the_longest_accepted_names_fit_in_100_columns(tmp_path: Path, shape: str) -> None:
    names = _names()
    model = "m" * names.MAX_MODEL_ID
    price = "1" * (names.MAX_PRICE - 2) + ".5"
    project = generate(
        tmp_path,
        provider_name="Contoso Inference Cloud",
        wire_shape=shape,
        models=f"{model}={price}/{price},small=0/0",
    )
    for name, text in _files(project).items():
        if name.endswith(".py"):
            long = [line for line in text.splitlines() if len(line) > 100]
            assert not long, f"{name}: {long}"


REFUSED = {
    "": ("provider_name is empty",),
    "123 Cloud": ("must start with a letter",),
    "OpenAI": ("'openai' is a provider provara-kit registers itself",),
    "云": ("has no ASCII letters",),
    'Acme "Quoted"': ("may use only letters",),
    "A" * 41: ("longer than 40 characters",),
    "Extremely Long Provider Name": ("longer than 24 characters",),
}
REFUSED_ANSWERS = [
    *({"provider_name": name} for name in REFUSED),
    {"base_url": "api.acme.example"},
    {"base_url": "ftp://api.acme.example"},
    {"base_url": "https://api.acme.example/v1?key=1"},
    {"base_url": "https://user:pw@api.acme.example/v1"},
    {"models": ""},
    {"models": "acme-large=3/15,,"},
    {"models": "acme-large=3"},
    {"models": "acme large=3/15"},
    {"models": "acme-large=-1/15"},
    {"models": "acme-large=1/2,acme-large=3/4"},
    {"models": "acme-large=1e3/2"},
    {"author_name": ""},
]
EXPECTED = {
    "base_url": "base_url",
    "models": "models:",
    "author_name": "author_name is empty",
}


@pytest.mark.parametrize("answers", REFUSED_ANSWERS, ids=lambda a: f"{a}")
def test_the_hook_refuses_bad_answers_and_leaves_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str]
) -> None:
    with pytest.raises(FailedHookException):
        generate(tmp_path, **answers)
    err = capfd.readouterr().err
    ((key, value),) = answers.items()
    expected = REFUSED[value] if key == "provider_name" else (EXPECTED[key],)
    assert "Cannot generate the adapter package:" in err
    for fragment in expected:
        assert fragment in err
    assert not list(tmp_path.glob("provara-provider-*"))


@pytest.mark.parametrize(("key", "value"), [("wire_shape", "gemini"), ("license", "GPL-3.0")])
def test_cookiecutter_itself_refuses_an_unknown_choice(
    tmp_path: Path, key: str, value: str
) -> None:
    with pytest.raises(ValueError, match=f"{value} provided for choice variable {key}"):
        generate(tmp_path, **{key: value})


def _cookiecutter_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("cookiecutter", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "cookiecutter"]
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {json.dumps(str(tmp_path / 'replay'))}\n", encoding="utf-8")
    return subprocess.run(
        [*command, "--no-input", "--config-file", str(config), str(TEMPLATE), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_line_generates_with_no_input(tmp_path: Path) -> None:
    done = _cookiecutter_command(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "provara-provider-acme" / "pyproject.toml").is_file()
    assert "ACME_API_KEY" in done.stdout


def test_the_command_line_refuses_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    done = _cookiecutter_command(tmp_path, "provider_name=OpenAI", "models=acme-large=3")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "'openai' is a provider provara-kit registers itself" in output
    assert "models: entry 1 ('acme-large=3') is not id=input/output" in output
    assert "Traceback" not in output
    assert not list(tmp_path.glob("provara-provider-*"))


def test_the_built_in_names_the_hook_refuses_are_the_kits() -> None:
    assert set(default_registry(plugins=False).names()) == _names().BUILTIN_PROVIDERS


@pytest.mark.parametrize(
    ("shape", "name"),
    [(shape, name) for shape, names in corpus_fixtures.SOURCES.items() for name in names],
)
def test_the_template_fixtures_are_wire_corpus_recordings(shape: str, name: str) -> None:
    corpus = default_corpus()
    if corpus is None:
        pytest.skip("shared/wire-corpus is not beside this checkout")
    expected = corpus_fixtures.build(shape, name, corpus)
    assert corpus_fixtures.template_path(shape, name).read_text(encoding="utf-8") == expected


def test_the_template_ships_only_the_listed_fixtures() -> None:
    for shape, names in corpus_fixtures.SOURCES.items():
        shipped = {p.name for p in (corpus_fixtures.SHAPES_DIR / shape / "fixtures").iterdir()}
        assert shipped == {f"{name}.fixture.json" for name in names}


def test_the_template_is_self_contained(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "cookiecutter-provider"
    shutil.copytree(TEMPLATE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    project = generate(tmp_path / "out", copy)
    assert len(load_fixtures(project / "tests" / "fixtures")) == len(
        corpus_fixtures.SOURCES["anthropic-messages"]
    )
