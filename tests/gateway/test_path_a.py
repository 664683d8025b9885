"""The runbook's path A end to end: register a provider in a module, price it, store the
tenant's key on the dashboard API, and verify with a completion pinned to it."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn
from openai import OpenAI

from provara_kit import registry as registry_module
from provara_kit.pricing import MODEL_PRICING
from provara_kit.testing import CannedReply, ScriptedUpstream
from tests.gateway.conftest import GatewayServer, make_settings

UPSTREAM_KEY = "pathacme-secret-key-0123456789"


class Upstream:
    """A scripted API over real HTTP on a free loopback port (OpenAI-compatible unless
    ``wire`` names another dialect); :attr:`url` is its base URL plus ``suffix``."""

    def __init__(
        self,
        wire: str = "openai-chat",
        *,
        api_key: str | None = UPSTREAM_KEY,
        models: list[str] | None = None,
        suffix: str = "/v1",
    ) -> None:
        self.script = ScriptedUpstream(
            wire,
            reply=CannedReply(
                ("Verified", " through", " the gateway"), input_tokens=1000, output_tokens=500
            ),
            expected_api_key=api_key,
            models=["pathacme-large"] if models is None else models,
        )
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}{suffix}"
        config = uvicorn.Config(self.script, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> Upstream:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the scripted upstream did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@pytest.fixture
def operator_module() -> Iterator[str]:
    name = "tests.gateway.path_a_provider"
    yield name
    sys.modules.pop(name, None)
    registry_module.REGISTRY._specs.pop("pathacme", None)
    registry_module.REGISTRY.models.pop("pathacme", None)
    MODEL_PRICING.pop("pathacme/pathacme-large", None)


def test_path_a_through_the_gateway(tmp_path: Path, operator_module: str) -> None:
    with Upstream() as upstream:
        settings = replace(
            make_settings(tmp_path),
            provider_modules=(operator_module,),
            environ={"PATHACME_BASE_URL": upstream.url},
        )
        with GatewayServer(settings, registry=registry_module.REGISTRY) as gateway:
            token = gateway.tenant("ops")
            headers = {"Authorization": f"Bearer {token}"}
            stored = httpx.post(
                f"{gateway.url}/api/provider-keys",
                headers=headers,
                json={"name": "PATHACME_API_KEY", "value": UPSTREAM_KEY},
            )
            assert stored.status_code in (200, 201), stored.text
            client = OpenAI(base_url=f"{gateway.url}/v1", api_key=token)
            completion = client.chat.completions.create(
                model="pathacme/pathacme-large", messages=[{"role": "user", "content": "hi"}]
            )
            stream = client.chat.completions.create(
                model="pathacme/pathacme-large",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
            chunks = list(stream)
        assert completion.choices[0].message.content == "Verified through the gateway"
        meta = (completion.model_extra or {})["provara"]
        assert (meta["provider"], meta["priced"]) == ("pathacme", True)
        assert Decimal(meta["cost_usd"]) == Decimal("0.00125")  # 1000 x 0.5/1M + 500 x 1.5/1M
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Verified through the gateway"
        assert (chunks[-1].model_extra or {})["provara"]["provider"] == "pathacme"
        assert all(
            r.authorized for r in upstream.script.requests if r.path.endswith("/completions")
        )
        assert UPSTREAM_KEY.encode() not in Path(settings.database_path).read_bytes()
