"""``PROVARA_CONFIG``: providers, prices and fallback chains declared in TOML or YAML are
served exactly as the path-A module declaring them; every error names the file, the line
and the key, and stops the gateway before it listens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from provara_kit.pricing import MODEL_PRICING, lookup_price
from provara_kit.registry import REGISTRY, ProviderSpec, Registry, default_registry
from provara_kit.vault import generate_master_key
from reference_gateway.app import create_app
from reference_gateway.cli import main
from reference_gateway.config import Settings
from reference_gateway.configfile import ConfigFileError, GatewayConfig, load_config
from tests.gateway.conftest import GatewayServer
from tests.gateway.test_path_a import UPSTREAM_KEY, Upstream

EXAMPLES = Path(__file__).parent / "config_files"
MODULE = "tests.gateway.config_file_provider"
ROUTES = ["module", "toml", "yaml"]


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """The process-wide registry and price list as they were: what a test registers there
    (through a module or a file) is taken out after it."""
    assert "acme" not in REGISTRY and "acme/acme-large" not in MODEL_PRICING
    saved = (
        dict(REGISTRY._specs),
        dict(REGISTRY.models),
        dict(REGISTRY.last_refresh),
        dict(MODEL_PRICING),
    )
    yield
    sys.modules.pop(MODULE, None)
    for live, before in zip(
        (REGISTRY._specs, REGISTRY.models, REGISTRY.last_refresh, MODEL_PRICING),
        saved,
        strict=True,
    ):
        live.clear()
        live.update(before)  # type: ignore[arg-type]


def _environ(route: str, **extra: str) -> dict[str, str]:
    if route == "module":
        return {"PROVARA_PROVIDER_MODULES": MODULE, **extra}
    return {"PROVARA_CONFIG": str(EXAMPLES / f"gateway.{route}"), **extra}


def _settings(tmp_path: Path, environ: dict[str, str]) -> Settings:
    return Settings.from_env(
        environ,
        database_url=f"sqlite:///{tmp_path / 'gateway.db'}",
        master_key=generate_master_key(),
        discover_models=False,
        usage_flush_ms=50,
        stream_timeout_ms=5_000,
    )


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- the same registrations as the module ------------------------------------------------


def _registered(route: str) -> tuple[ProviderSpec, dict[str, Any]]:
    """What ``route`` registers in the process-wide registry (taken out again)."""
    specs, prices = dict(REGISTRY._specs), dict(MODEL_PRICING)
    try:
        Settings.from_env(_environ(route)).load_provider_modules()
        spec = REGISTRY.get("acme")
        priced = {m: lookup_price("acme", m) for m in ("acme-large", "acme-small", "other")}
        return spec, priced
    finally:
        sys.modules.pop(MODULE, None)
        REGISTRY._specs.clear()
        REGISTRY._specs.update(specs)
        REGISTRY.models.pop("acme", None)
        MODEL_PRICING.clear()
        MODEL_PRICING.update(prices)


def test_toml_and_yaml_register_what_the_module_does() -> None:
    module_spec, module_prices = _registered("module")
    assert module_spec.source == "user"
    for route in ("toml", "yaml"):
        spec, prices = _registered(route)
        assert spec.source == f"config:{EXAMPLES / f'gateway.{route}'}"
        # The factory too: same name, key variable, URLs, models and extra headers.
        assert replace(spec, source="user") == module_spec
        assert prices == module_prices
        assert prices["other"] is None
    assert module_prices["acme-large"] is not None
    assert module_prices["acme-large"].output_per_million == Decimal("1.5")


def test_the_two_examples_declare_the_same() -> None:
    toml, yaml = load_config(EXAMPLES / "gateway.toml"), load_config(EXAMPLES / "gateway.yaml")
    assert replace(toml, file="", lines={}) == replace(yaml, file="", lines={})
    assert toml.fallbacks == {"acme/acme-large": ("acme/acme-small", "local/echo")}
    assert toml.prices["acme/acme-small"] == (Decimal("0.05"), Decimal("0.2"))


@pytest.mark.parametrize("route", ROUTES)
def test_served_as_declared(tmp_path: Path, route: str) -> None:
    with Upstream(models=["acme-large", "acme-small"]) as upstream:
        settings = _settings(
            tmp_path, _environ(route, ACME_API_KEY=UPSTREAM_KEY, ACME_BASE_URL=upstream.url)
        )
        with GatewayServer(settings, registry=REGISTRY) as gateway:
            headers = {"Authorization": f"Bearer {gateway.tenant('ops')}"}
            listed = httpx.get(f"{gateway.url}/v1/models", headers=headers, timeout=10)
            answer = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                headers=headers,
                json={"model": "acme/acme-large", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
    assert listed.status_code == 200, listed.text
    acme = {m["id"]: m["pricing"] for m in listed.json()["data"] if m["owned_by"] == "acme"}
    assert acme == {
        "acme/acme-large": {"input_per_million": "0.5", "output_per_million": "1.5"},
        "acme/acme-small": {"input_per_million": "0.05", "output_per_million": "0.2"},
    }
    assert answer.status_code == 200, answer.text
    meta = answer.json()["provara"]
    assert (meta["provider"], meta["priced"]) == ("acme", True)
    assert Decimal(meta["cost_usd"]) == Decimal("0.00125")  # 1000 x 0.5/1M + 500 x 1.5/1M
    sent = [r for r in upstream.script.requests if r.path.endswith("/chat/completions")]
    assert sent and all(r.authorized for r in sent)
    assert all(r.headers.get("x-acme-project") == "gateway" for r in sent)
    expected = {} if route == "module" else {"acme/acme-large": ("acme/acme-small", "local/echo")}
    assert dict(settings.fallbacks) == expected


def test_streaming_off_in_either_format(tmp_path: Path) -> None:
    toml = _write(
        tmp_path,
        "off.toml",
        '[providers.slow]\nbase_url = "http://127.0.0.1:9/v1"\nstreaming = false\n'
        'api_key_env = "SLOW_KEY"\nbase_url_env = "SLOW_URL"\n',
    )
    yaml = _write(
        tmp_path,
        "off.yml",
        "providers:\n  slow:\n    base_url: http://127.0.0.1:9/v1\n    streaming: off\n"
        "    api_key_env: SLOW_KEY\n    base_url_env: SLOW_URL\n",
    )
    for file in (toml, yaml):
        registry = Registry()
        load_config(file).apply(registry, pricing={})
        spec = registry.get("slow")
        assert (spec.streaming, spec.streams({}), spec.api_key_env, spec.base_url_env) == (
            False,
            False,
            "SLOW_KEY",
            "SLOW_URL",
        )
        assert spec.base_url({"SLOW_URL": "http://127.0.0.1:8/v1"}) == "http://127.0.0.1:8/v1"


def test_a_gateway_on_its_own_registry_leaves_the_process_wide_one_alone(tmp_path: Path) -> None:
    settings = _settings(tmp_path, _environ("toml"))
    registry = default_registry(plugins=False)
    with GatewayServer(settings, registry=registry):
        pass
    assert "acme" in registry and "acme" not in REGISTRY


def test_applying_twice_changes_nothing() -> None:
    config = load_config(EXAMPLES / "gateway.toml")
    registry = default_registry(plugins=False)
    pricing: dict[str, Any] = {}
    config.apply(registry, pricing=pricing)
    first = registry.get("acme")
    config.apply(registry, pricing=pricing)
    assert registry.get("acme") == first and len(pricing) == 2


def test_header_values_stay_out_of_repr_and_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(
        tmp_path,
        "secret.toml",
        '[providers.vendor]\nbase_url = "https://vendor.example/v1"\n'
        'headers = { "X-Vendor-Token" = "vt-secret-0123456789" }\n',
    )
    config = load_config(file)
    settings = _settings(tmp_path, {"PROVARA_CONFIG": file})
    assert "vt-secret" not in repr(config) + repr(settings) + "\n".join(config.describe())
    assert main(["config", "check", file]) == 0
    out = capsys.readouterr().out
    assert "X-Vendor-Token" in out and "vt-secret" not in out


# -- errors: the file, the line, the key ---------------------------------------------------

TRICKY_TOML = """\
# a comment with [brackets] and key = "value"
top = 1
[providers.acme]
base_url = "https://x.example/v1"  # [ not a table
models = [
  "a",  # ]
  "b",
]
note = \"\"\"
[not.a.table]
fake = 1
\"\"\"
literal = '''
also = "not a key"
'''
headers = { "X-A" = "b", 'X-B' = "c" }
"quoted".'literal'.bare = true

[ prices . "acme/a" ]
input = 1
[[arr]]
k = 1
[[arr]]
k = 2
"""


def _key_paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*path, key)
            yield from _key_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _key_paths(value, (*path, index))


@pytest.mark.parametrize(
    "text",
    [TRICKY_TOML, (EXAMPLES / "gateway.toml").read_text(encoding="utf-8")],
    ids=["tricky", "example"],
)
def test_the_toml_locator_finds_the_line_of_every_key(text: str) -> None:
    """tomllib keeps no positions: every key's line, found by reading the text, must be a
    line that writes that key (strings, comments and multi-line values stepped over)."""
    import tomllib

    from reference_gateway.configfile.locate import line_of, toml_lines

    lines, source = toml_lines(text), text.splitlines()
    paths = list(_key_paths(tomllib.loads(text)))
    assert len(paths) > 5
    for path in paths:
        line = line_of(lines, path)
        assert line is not None, path
        key = next(part for part in reversed(path) if isinstance(part, str))
        assert key in source[line - 1], (path, line, source[line - 1])


def test_the_toml_locator_steps_over_strings_and_counts_arrays_of_tables() -> None:
    from reference_gateway.configfile.locate import toml_lines

    lines = toml_lines(TRICKY_TOML)
    assert lines[("providers", "acme", "headers")] == 16
    assert lines[("providers", "acme", "quoted", "literal", "bare")] == 17
    assert lines[("prices", "acme/a", "input")] == 20
    assert lines[("arr", 1, "k")] == 24
    assert ("not", "a", "table") not in lines and ("also",) not in lines


GOOD_TOML = '[providers.acme]\nbase_url = "https://api.acme.example/v1"\n'
GOOD_YAML = "providers:\n  acme:\n    base_url: https://api.acme.example/v1\n"

BROKEN = [
    # (file name, text, line, key, what the message says)
    (
        "type.toml",
        GOOD_TOML + 'streaming = "yes"\n',
        3,
        "providers.acme.streaming",
        "must be true or false",
    ),
    (
        "models.toml",
        GOOD_TOML + 'models = [\n  "a",\n  3,\n]\n',
        3,
        "providers.acme.models[1]",
        "must be a string",
    ),
    (
        "unknown.toml",
        GOOD_TOML + 'colour = "red"\n',
        3,
        "providers.acme.colour",
        "unknown key (expected one of: api_key_env, base_url",
    ),
    (
        "top.toml",
        GOOD_TOML + "\n[extras]\nx = 1\n",
        4,
        "extras",
        "unknown key (expected one of: fallbacks, prices, providers)",
    ),
    (
        "url.toml",
        '[providers.acme]\nbase_url = "ftp://acme.example"\n',
        2,
        "providers.acme.base_url",
        "must be an http(s) URL",
    ),
    (
        "noscheme.toml",
        '[providers.acme]\nbase_url = "acme.example/v1"\n',
        2,
        "providers.acme.base_url",
        "must be an http(s) URL",
    ),
    (
        "creds.toml",
        '[providers.acme]\nbase_url = "https://u:pw@acme.example"\n',
        2,
        "providers.acme.base_url",
        "must not carry credentials",
    ),
    (
        "missing.toml",
        "# acme\n\n[providers.acme]\nmodels = []\n",
        3,
        "providers.acme.base_url",
        "required",
    ),
    (
        "negative.toml",
        GOOD_TOML + '\n[prices]\n"acme/large" = { input = -0.5, output = 1 }\n',
        5,
        'prices."acme/large".input',
        "must be >= 0",
    ),
    (
        "nan.toml",
        GOOD_TOML + '\n[prices]\n"acme/large" = { input = nan, output = 1 }\n',
        5,
        'prices."acme/large".input',
        "must be a finite number",
    ),
    (
        "text.toml",
        GOOD_TOML + '\n[prices]\n"acme/large" = { input = "cheap", output = 1 }\n',
        5,
        'prices."acme/large".input',
        "must be a number",
    ),
    (
        "pricekey.toml",
        GOOD_TOML + "\n[prices]\nlarge = { input = 1, output = 1 }\n",
        5,
        "prices.large",
        "must name a model as provider/model",
    ),
    (
        "priceextra.toml",
        GOOD_TOML + '\n[prices]\n"acme/large" = { input = 1, output = 1, cached = 0.1 }\n',
        5,
        'prices."acme/large".cached',
        "unknown key",
    ),
    (
        "keyenv.toml",
        GOOD_TOML + 'api_key_env = "ACME-KEY"\n',
        3,
        "providers.acme.api_key_env",
        "environment variable name",
    ),
    (
        "header.toml",
        GOOD_TOML + 'headers = { Authorization = "Bearer x" }\n',
        3,
        "providers.acme.headers.Authorization",
        "set by the gateway",
    ),
    (
        "name.toml",
        '[providers.Acme]\nbase_url = "https://acme.example"\n',
        1,
        "providers.Acme",
        "lower-case letters",
    ),
    (
        "local.toml",
        '[providers.local]\nbase_url = "https://acme.example"\n',
        1,
        "providers.local",
        "the gateway's own provider",
    ),
    (
        "twice.toml",
        GOOD_TOML + 'models = ["a", "b", "a"]\n',
        3,
        "providers.acme.models[2]",
        "listed twice",
    ),
    (
        "dup.toml",
        GOOD_TOML + '\n[providers.acme]\nbase_url = "https://other.example"\n',
        4,
        "",
        "invalid TOML: Cannot declare ('providers', 'acme') twice",
    ),
    ("syntax.toml", GOOD_TOML + "models = [\n", 3, "", "invalid TOML: Invalid value"),
    (
        "syntax2.toml",
        GOOD_TOML + "streaming = \n",
        3,
        "",
        "invalid TOML: Invalid value (column 13)",
    ),
    (
        "cycle.toml",
        '[fallbacks]\n"a/x" = ["b/y"]\n"b/y" = ["c/z"]\n"c/z" = ["a/x"]\n',
        2,
        'fallbacks."a/x"',
        "a fallback cycle: a/x -> b/y -> c/z -> a/x",
    ),
    (
        "self.toml",
        '[fallbacks]\n"a/x" = ["b/y", "a/x"]\n',
        2,
        'fallbacks."a/x"[1]',
        "falls back to itself",
    ),
    ("empty.toml", '[fallbacks]\n"a/x" = []\n', 2, 'fallbacks."a/x"', "an empty chain"),
    (
        "notmodel.toml",
        '[fallbacks]\n"a/x" = ["gpt-4o"]\n',
        2,
        'fallbacks."a/x"[0]',
        "must name a model as provider/model",
    ),
    ("chain.toml", '[fallbacks]\n"a/x" = "b/y"\n', 2, 'fallbacks."a/x"', "must be a list"),
    ("providers.toml", 'providers = ["acme"]\n', 1, "providers", "must be a table"),
    (
        "type.yaml",
        GOOD_YAML + "    streaming: maybe\n",
        4,
        "providers.acme.streaming",
        "must be true or false",
    ),
    ("unknown.yaml", GOOD_YAML + "    colour: red\n", 4, "providers.acme.colour", "unknown key"),
    (
        "url.yaml",
        "providers:\n  acme:\n    base_url: acme\n",
        3,
        "providers.acme.base_url",
        "must be an http(s) URL",
    ),
    (
        "missing.yaml",
        "providers:\n  acme:\n    models: [a]\n",
        2,
        "providers.acme.base_url",
        "required",
    ),
    (
        "negative.yaml",
        GOOD_YAML + "prices:\n  acme/large:\n    input: 1\n    output: -2\n",
        7,
        'prices."acme/large".output',
        "must be >= 0",
    ),
    (
        "models.yaml",
        GOOD_YAML + "    models:\n      - a\n      - {b: c}\n",
        6,
        "providers.acme.models[1]",
        "must be a string",
    ),
    (
        "dup.yaml",
        GOOD_YAML + "  acme:\n    base_url: https://other.example\n",
        4,
        "providers.acme",
        "written twice (first on line 2)",
    ),
    ("syntax.yaml", GOOD_YAML + "    models: [a, b\n", 5, "", "invalid YAML:"),
    ("tab.yaml", "providers:\n\tacme: {}\n", 2, "", "invalid YAML:"),
    (
        "cycle.yaml",
        "fallbacks:\n  a/x: [b/y]\n  b/y: [a/x]\n",
        2,
        'fallbacks."a/x"',
        "a fallback cycle: a/x -> b/y -> a/x",
    ),
    ("list.yaml", "- providers\n", 1, "", "the file must be a mapping"),
    (
        "providers.yaml",
        "providers: [acme]\n",
        1,
        "providers",
        "must be a mapping",
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "line", "key", "message"), BROKEN, ids=[case[0] for case in BROKEN]
)
def test_every_error_names_the_file_the_line_and_the_key(
    tmp_path: Path, name: str, text: str, line: int, key: str, message: str
) -> None:
    file = _write(tmp_path, name, text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(file)
    where = f"{file}:{line}: {key}: " if key else f"{file}:{line}: "
    first = str(caught.value)
    assert first.startswith(where) and message in first, first
    assert "\n" not in first


def test_all_problems_are_listed_in_file_order(tmp_path: Path) -> None:
    file = _write(
        tmp_path,
        "many.toml",
        '[providers.acme]\nbase_url = "nope"\nstreaming = 1\n\n[prices]\n'
        '"acme/x" = { input = -1, output = 0 }\n',
    )
    with pytest.raises(ConfigFileError) as caught:
        load_config(file)
    assert caught.value.lines() == [
        f"{file}:2: providers.acme.base_url: must be an http(s) URL",
        f"{file}:3: providers.acme.streaming: must be true or false",
        f'{file}:6: prices."acme/x".input: must be >= 0 (USD per 1M tokens)',
    ]
    assert str(caught.value).endswith("(and 2 more; 'provara-gateway config check' lists all)")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("gateway.json", b"{}", "unknown file type; a config file ends in .toml, .yaml or .yml"),
        ("latin.toml", b"[providers.caf\xe9]\n", "not UTF-8 text"),
        ("absent.yaml", None, "no such file"),
        ("folder.toml", "dir", "cannot be read"),
    ],
)
def test_a_file_that_cannot_be_read(
    tmp_path: Path, name: str, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {message}")


def _module_registry() -> Registry:
    registry = default_registry(plugins=False)
    registry.register_openai_compatible(
        name="modprov", api_key_env="MODPROV_API_KEY", default_base_url="https://m.example/v1"
    )
    return registry


REGISTRY_BROKEN = [
    # (text, local upstream on, line, key, message)
    (
        '[fallbacks]\n"openai/gpt-4o" = ["acme/large"]\n',
        True,
        2,
        'fallbacks."openai/gpt-4o"[0]',
        "unknown provider 'acme'",
    ),
    (
        '[fallbacks]\n"nobody/x" = ["openai/gpt-4o"]\n',
        True,
        2,
        'fallbacks."nobody/x"',
        "unknown provider 'nobody'",
    ),
    (
        '[fallbacks]\n"openai/gpt-4o" = ["local/echo"]\n',
        False,
        2,
        'fallbacks."openai/gpt-4o"[0]',
        "the local provider is off",
    ),
    (
        '\n[prices]\n"nobody/x" = { input = 1, output = 1 }\n',
        True,
        3,
        'prices."nobody/x"',
        "unknown provider 'nobody'",
    ),
    (
        '# one place only\n[providers.modprov]\nbase_url = "https://m.example/v1"\n',
        True,
        2,
        "providers.modprov",
        "provider 'modprov' is also registered by a PROVARA_PROVIDER_MODULES module",
    ),
]


@pytest.mark.parametrize(("text", "local", "line", "key", "message"), REGISTRY_BROKEN)
def test_errors_found_against_the_registry_name_the_line_and_key_too(
    tmp_path: Path, text: str, local: bool, line: int, key: str, message: str
) -> None:
    file = _write(tmp_path, "gateway.toml", text)
    config = load_config(file)
    registry = _module_registry()
    before = registry.specs()
    pricing: dict[str, Any] = {}
    with pytest.raises(ConfigFileError) as caught:
        config.apply(registry, local=local, pricing=pricing)
    assert str(caught.value).startswith(f"{file}:{line}: {key}: {message}"), str(caught.value)
    assert registry.specs() == before and pricing == {}  # nothing half-registered


def test_declared_providers_and_built_ins_are_known_to_prices_and_fallbacks(tmp_path: Path) -> None:
    file = _write(
        tmp_path,
        "ok.toml",
        '[providers.acme]\nbase_url = "https://a.example/v1"\n\n[prices]\n'
        '"openai/my-tune" = { input = "0.035", output = 0 }\n"acme/x" = { input = 1, output = 2 }\n'
        '\n[fallbacks]\n"acme/x" = ["openai/my-tune", "modprov/m", "local/echo"]\n',
    )
    registry = _module_registry()
    pricing: dict[str, Any] = {}
    load_config(file).apply(registry, pricing=pricing)
    assert lookup_price("openai", "my-tune", pricing) is not None
    assert lookup_price("openai", "my-tune", pricing).input_per_million == Decimal("0.035")  # type: ignore[union-attr]
    assert registry.get("acme").source == f"config:{file}"


def test_a_file_may_replace_a_built_in(tmp_path: Path) -> None:
    file = _write(
        tmp_path, "proxy.yaml", "providers:\n  openai:\n    base_url: http://127.0.0.1:9/v1\n"
    )
    registry = default_registry(plugins=False)
    load_config(file).apply(registry, pricing={})
    assert registry.get("openai").default_base_url == "http://127.0.0.1:9/v1"
    assert registry.get("openai").api_key_env == "OPENAI_API_KEY"


def test_create_app_refuses_before_anything_listens(tmp_path: Path) -> None:
    file = _write(tmp_path, "gateway.toml", '[fallbacks]\n"openai/gpt-4o" = ["nobody/x"]\n')
    settings = _settings(tmp_path, {"PROVARA_CONFIG": file})
    with pytest.raises(
        ConfigFileError, match=r"gateway\.toml:2: fallbacks\.\"openai/gpt-4o\"\[0\]"
    ):
        create_app(settings, registry=default_registry(plugins=False))


def test_a_provider_in_a_module_and_the_file_is_refused(tmp_path: Path) -> None:
    file = _write(tmp_path, "gateway.toml", GOOD_TOML)
    settings = _settings(tmp_path, {"PROVARA_CONFIG": file, "PROVARA_PROVIDER_MODULES": MODULE})
    with pytest.raises(ConfigFileError) as caught:
        create_app(settings, registry=REGISTRY)
    assert str(caught.value).startswith(f"{file}:1: providers.acme: provider 'acme' is also")


def test_a_worker_process_app_registers_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --workers N`` builds each worker's app from the environment."""
    from reference_gateway.cli import worker_app

    monkeypatch.setenv("PROVARA_CONFIG", str(EXAMPLES / "gateway.yaml"))
    monkeypatch.setenv("PROVARA_DATABASE_URL", f"sqlite:///{tmp_path / 'gateway.db'}")
    monkeypatch.setenv("PROVARA_MASTER_KEY", generate_master_key())
    monkeypatch.delenv("PROVARA_PROVIDER_MODULES", raising=False)
    app: Any = worker_app()
    gateway = app.state.gateway
    assert gateway.registry.get("acme").source.startswith("config:")
    # The router prices the file's models for auto (expected cost), as the module's.
    assert gateway.router.expected_cost("acme/acme-large", 1000, 500) == Decimal("0.00125")
    assert gateway.settings.fallbacks["acme/acme-large"] == ("acme/acme-small", "local/echo")


def test_settings_fill_fallbacks_and_keep_the_config(tmp_path: Path) -> None:
    settings = Settings.from_env(_environ("yaml"))
    assert isinstance(settings.config, GatewayConfig)
    assert dict(settings.fallbacks) == {"acme/acme-large": ("acme/acme-small", "local/echo")}
    assert Settings.from_env({}).config is None


# -- the command line ----------------------------------------------------------------------


def test_config_check_shows_what_would_be_registered(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVARA_CONFIG", raising=False)
    monkeypatch.delenv("PROVARA_PROVIDER_MODULES", raising=False)
    assert main(["config", "check", str(EXAMPLES / "gateway.toml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("gateway.toml: valid")
    assert "provider acme: https://api.acme.example/v1 (key ACME_API_KEY" in out[1]
    assert "price acme/acme-large: input $0.5, output $1.5 per 1M tokens" in out
    assert "fallback acme/acme-large -> acme/acme-small, local/echo" in out

    monkeypatch.setenv("PROVARA_CONFIG", str(EXAMPLES / "gateway.yaml"))
    assert main(["config", "check"]) == 0
    assert capsys.readouterr().out.startswith(str(EXAMPLES / "gateway.yaml"))

    monkeypatch.delenv("PROVARA_CONFIG")
    assert main(["config", "check"]) == 2
    assert "set PROVARA_CONFIG" in capsys.readouterr().err


def test_config_check_lists_every_problem_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _write(tmp_path, "bad.yaml", "providers:\n  acme:\n    base_url: x\n    colour: red\n")
    assert main(["config", "check", file]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"provara-gateway: {file}:3: providers.acme.base_url: must be an http(s) URL",
        f"provara-gateway: {file}:4: providers.acme.colour: unknown key (expected one of: "
        "api_key_env, base_url, base_url_env, headers, models, streaming)",
    ]


def test_config_check_imports_the_provider_modules_as_serve_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVARA_PROVIDER_MODULES", MODULE)
    file = _write(tmp_path, "gateway.toml", "# acme twice\n" + GOOD_TOML)
    assert main(["config", "check", file]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"provara-gateway: {file}:2: providers.acme: provider 'acme' is also registered by a "
        "PROVARA_PROVIDER_MODULES module or code of yours; declare it in one place"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[providers.acme]\nbase_url = "ftp://x"\n',
            "gateway.toml:2: providers.acme.base_url: must be an http(s) URL",
        ),
        (
            '[fallbacks]\n"openai/gpt-4o" = ["nobody/x"]\n',
            "gateway.toml:2: fallbacks.\"openai/gpt-4o\"[0]: unknown provider 'nobody'",
        ),
    ],
    ids=["schema", "registry"],
)
def test_serve_prints_one_line_and_exits_non_zero(tmp_path: Path, text: str, expected: str) -> None:
    _write(tmp_path, "gateway.toml", text)
    environ = {
        **os.environ,
        "PROVARA_CONFIG": "gateway.toml",
        "PROVARA_MASTER_KEY": generate_master_key(),
    }
    environ.pop("PROVARA_PROVIDER_MODULES", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reference_gateway.cli",
            "serve",
            "--port",
            "9",
            "--database",
            "gw.db",
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"provara-gateway: {expected}"), lines
    assert not (tmp_path / "gw.db").exists()  # nothing was created
