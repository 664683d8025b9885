"""A generated adapter package, once installed, is served by the reference gateway with no
code change.

For each starting wire shape: generate the package, install it with this checkout's
provara-kit (``gateway`` extra) into a fresh uv virtualenv, start an API that speaks the
package's own wire dialect (``<slug>-messages``, ``<slug>-chat`` or ``<slug>-ndjson``, from
its ``provara.dialects`` entry point) over real HTTP on loopback, and start
``provara-gateway serve`` from that virtualenv with nothing but environment settings: the
operator key and base URL of the provider, a temporary database, a fresh master key, no
``PROVARA_PROVIDER_MODULES``. The provider arrives through its ``provara.providers`` entry
point only. Then the OpenAI SDK drives the gateway: streamed and not, the text comes back,
the ``provara`` meta names the provider and is priced at the template's list prices, and
``GET /v1/models`` lists the package's models with those prices.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cookiecutter.project import (
    KIT,
    SHAPES,
    UPSTREAM_SCRIPT,
    WIRE_SUFFIXES,
    Service,
    Venv,
    clean_environment,
    free_port,
    generate,
)
from tests.cookiecutter.test_generated import ANSWERS, SLUGS, TIMINGS

openai = pytest.importorskip("openai", reason="the openai SDK is in provara-kit's test extra")

UPSTREAM_KEY = "sk-gateway-loopback-7d41c9e2a05b3f86"
PROMPT = "Served by the gateway, unchanged: ünïcode ✓"
MESSAGES = [
    # A system message makes the input longer than the echoed output, so swapped input and
    # output prices would show in the cost.
    {"role": "system", "content": "Answer with the user's words, exactly as they are given."},
    {"role": "user", "content": PROMPT},
]
DEFAULT_MODELS = "{slug}-large=3.00/15.00,{slug}-small=0.25/1.25"  # cookiecutter.json


def list_prices(shape: str) -> dict[str, tuple[Decimal, Decimal]]:
    """model id -> (input, output) USD per 1M tokens, as answered to the template."""
    text = ANSWERS[shape].get("models") or DEFAULT_MODELS.format(slug=SLUGS[shape])
    prices = {}
    for item in text.split(","):
        model, _, price = item.rpartition("=")
        given_input, _, given_output = price.partition("/")
        prices[model.strip()] = (Decimal(given_input.strip()), Decimal(given_output.strip()))
    return prices


@dataclass
class Served:
    shape: str
    slug: str
    url: str
    token: str
    prices: dict[str, tuple[Decimal, Decimal]]

    @property
    def model(self) -> str:
        return next(iter(self.prices))

    def client(self) -> Any:
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key=self.token, max_retries=0, timeout=30
        )

    def assert_priced(self, meta: dict[str, Any]) -> None:
        """``meta`` names the provider and model and costs what the list prices say for
        its token counts."""
        assert (meta["provider"], meta["model"], meta["priced"]) == (self.slug, self.model, True)
        assert meta["input_tokens"] > meta["output_tokens"] > 0, meta
        assert (meta["input_tokens_source"], meta["output_tokens_source"]) == ("upstream",) * 2
        price_in, price_out = self.prices[self.model]
        expected = (meta["input_tokens"] * price_in + meta["output_tokens"] * price_out) / 10**6
        assert Decimal(meta["cost_usd"]) == expected, meta


def _healthy(url: str) -> bool:
    return httpx.get(f"{url}/healthz", timeout=2).status_code == 200


def _start_gateway(venv: Venv, tmp: Path, env: dict[str, str]) -> tuple[Service, str]:
    """``provara-gateway serve`` on a free loopback port, ready; retried on another port if
    something took the one picked."""
    for attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [str(venv.bin / "provara-gateway"), "serve", "--host", "127.0.0.1"]
        gateway = Service(
            [*command, "--port", str(port)], env=env, cwd=tmp, log=tmp / f"gateway-{attempt}.log"
        )
        try:
            gateway.wait_until(lambda url=url: _healthy(url), what="the gateway", timeout=30)
        except RuntimeError:
            gateway.stop()
            if "address already in use" in gateway.output().lower() and attempt < 2:
                continue
            raise
        return gateway, url
    raise AssertionError("unreachable")


@pytest.fixture(scope="module", params=SHAPES)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    shape: str = request.param
    slug = SLUGS[shape]
    env_prefix = slug.replace("-", "_").upper()
    wire = f"{slug}-{WIRE_SUFFIXES[shape]}"
    prices = list_prices(shape)
    tmp = tmp_path_factory.mktemp(f"gateway-{shape}")
    timings = TIMINGS.setdefault(f"{shape} via the gateway", {})

    started = time.perf_counter()
    project = generate(tmp / "out", **ANSWERS[shape])
    venv = Venv.create(tmp / "venv")
    venv.install("-e", f"{KIT}[gateway]", "-e", str(project))
    timings["generate + venv + install"] = time.perf_counter() - started

    started = time.perf_counter()
    base = clean_environment(PYTHONDONTWRITEBYTECODE="1")
    made = venv.run("python", "-m", "provara_kit.vault", cwd=tmp, env=base)
    assert made.returncode == 0, made.output
    script = tmp / "upstream.py"
    script.write_text(UPSTREAM_SCRIPT, encoding="utf-8")
    port_file = tmp / "upstream.port"
    with Service(
        [venv.python, str(script), wire, str(port_file), *prices],
        env={**base, "UPSTREAM_KEY": UPSTREAM_KEY},
        cwd=tmp,
        log=tmp / "upstream.log",
    ) as upstream:
        port = upstream.wait_until(
            lambda: port_file.exists() and port_file.read_text(encoding="utf-8"),
            what="the loopback API",
        )
        upstream_url = f"http://127.0.0.1:{port}/v1"
        # Up, and refusing a request without the key (so answers prove the gateway sent it).
        upstream.wait_until(
            lambda: httpx.get(f"{upstream_url}/models", timeout=2).status_code == 401,
            what="the loopback API",
        )
        env = {
            **base,
            "PROVARA_DATABASE_URL": f"sqlite:///{tmp / 'gateway.db'}",
            "PROVARA_MASTER_KEY": made.stdout.strip(),
            "PROVARA_DISCOVER_MODELS": "0",
            "PROVARA_LOCAL_UPSTREAM": "0",
            f"{env_prefix}_API_KEY": UPSTREAM_KEY,
            f"{env_prefix}_BASE_URL": upstream_url,
        }
        # No setting names the package: it arrives through its entry point only.
        module = "provara_provider_" + slug.replace("-", "_")
        assert not any(module in value for value in env.values())
        assert "PROVARA_PROVIDER_MODULES" not in env
        gateway, url = _start_gateway(venv, tmp, env)
        with gateway:
            timings["start upstream + gateway"] = time.perf_counter() - started
            tenant = venv.run(
                str(venv.bin / "provara-gateway"), "tenants", "create", "verify", cwd=tmp, env=env
            )
            assert tenant.returncode == 0, tenant.output
            started = time.perf_counter()
            yield Served(shape, slug, url, tenant.stdout.strip(), prices)
            timings["requests"] = time.perf_counter() - started
            assert gateway.alive(), gateway.output()
            assert upstream.alive(), upstream.output()


def test_a_completion_is_served_and_priced(served: Served) -> None:
    with served.client() as client:  # closed here, not whenever it is collected
        completion = client.chat.completions.create(
            model=f"{served.slug}/{served.model}", messages=MESSAGES
        )
    assert completion.choices[0].message.content == PROMPT
    assert completion.choices[0].finish_reason == "stop"
    served.assert_priced((completion.model_extra or {})["provara"])


def test_a_stream_is_served_and_priced(served: Served) -> None:
    with served.client() as client:
        stream = client.chat.completions.create(
            model=f"{served.slug}/{served.model}",
            messages=MESSAGES,
            stream=True,
        )
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == PROMPT
    *_, last = chunks
    assert last.choices == []
    served.assert_priced((last.model_extra or {})["provara"])
    assert all("provara" not in (c.model_extra or {}) for c in chunks[:-1])


def test_the_models_are_listed_with_their_list_prices(served: Served) -> None:
    listed = httpx.get(
        f"{served.url}/v1/models", headers={"Authorization": f"Bearer {served.token}"}, timeout=30
    )
    assert listed.status_code == 200, listed.text
    ours = {m["id"]: m for m in listed.json()["data"] if m["owned_by"] == served.slug}
    assert {
        model_id: (
            Decimal(m["pricing"]["input_per_million"]),
            Decimal(m["pricing"]["output_per_million"]),
        )
        for model_id, m in ours.items()
    } == {f"{served.slug}/{model}": price for model, price in served.prices.items()}
