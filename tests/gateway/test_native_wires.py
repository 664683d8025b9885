"""The built-in native adapters through the real gateway: each wire's upstream served over
loopback HTTP in its own framing (Gemini's streamed JSON array or SSE, Ollama's NDJSON,
Bedrock's signed requests and AWS event-stream), answered to an OpenAI client, whole and
streamed, with the cost the pricing table gives."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pytest
from openai import OpenAI

from provara_kit.pricing import MODEL_PRICING
from provara_kit.registry import REGISTRY
from tests.gateway.conftest import GatewayServer, make_settings
from tests.gateway.test_path_a import Upstream

GEMINI_KEY = "AIza-native-wire-test-key-0123456789"
AWS_ACCESS = "AKIANATIVEWIRETEST01"
AWS_SECRET = "native/wire/secret/access/key/0123456789ab"


@dataclass(frozen=True)
class Wire:
    provider: str
    dialect: str
    api_key: str | None
    environ: dict[str, str]
    suffix: str = ""


WIRES = [
    Wire(
        "gemini",
        "gemini-generate-content",
        GEMINI_KEY,
        {"GEMINI_API_KEY": GEMINI_KEY},
        suffix="/v1beta",
    ),
    Wire("ollama", "ollama-chat", None, {}),
    Wire(
        "bedrock",
        "bedrock-converse",
        f"{AWS_ACCESS}:{AWS_SECRET}",
        {"AWS_ACCESS_KEY_ID": AWS_ACCESS, "AWS_SECRET_ACCESS_KEY": AWS_SECRET},
    ),
]


@pytest.mark.parametrize("wire", WIRES, ids=lambda w: w.provider)
def test_native_wire_through_the_gateway(tmp_path: Path, wire: Wire) -> None:
    spec = {s.name: s for s in REGISTRY.specs()}[wire.provider]
    model = spec.default_models[0]
    with Upstream(wire.dialect, api_key=wire.api_key, models=[model], suffix=wire.suffix) as up:
        assert spec.base_url_env, f"{wire.provider} names no base-URL variable"
        environ = {**wire.environ, spec.base_url_env: up.url}
        settings = replace(make_settings(tmp_path), environ=environ)
        with GatewayServer(settings, registry=REGISTRY) as gateway:
            client = OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.tenant("ops"))
            messages = [{"role": "user", "content": "hi"}]
            whole = client.chat.completions.create(
                model=f"{wire.provider}/{model}",
                messages=messages,  # type: ignore[arg-type]
            )
            chunks = list(
                client.chat.completions.create(
                    model=f"{wire.provider}/{model}",
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                )
            )
    assert whole.choices[0].message.content == "Verified through the gateway"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Verified through the gateway"
    input_price, output_price = MODEL_PRICING[f"{wire.provider}/{model}"]
    want = Decimal(1000) * Decimal(input_price) / 1_000_000
    want += Decimal(500) * Decimal(output_price) / 1_000_000
    for meta in ((whole.model_extra or {})["provara"], (chunks[-1].model_extra or {})["provara"]):
        assert (meta["provider"], meta["input_tokens"], meta["output_tokens"]) == (
            wire.provider,
            1000,
            500,
        )
        assert meta["priced"] is True
        assert Decimal(meta["cost_usd"]) == want
    completions = [r for r in up.script.requests if r.method == "POST"]
    assert len(completions) == 2
    if wire.api_key is not None:
        assert all(r.authorized for r in completions), [r.headers for r in completions]
