"""The scripted upstream's model listing: pages, errors, raw bodies, and 200 error bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from provara_kit.testing import CannedReply, ErrorFault, ScriptedUpstream, get_dialect

IDS = [f"model-{n}" for n in range(5)]


async def _get(upstream: ScriptedUpstream, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=upstream, base_url="https://upstream.test") as client:
        return await client.get(path)


async def test_anthropic_pages_follow_after_id_and_before_id() -> None:
    upstream = ScriptedUpstream("anthropic-messages", models=IDS, models_page_size=2)
    first = (await _get(upstream, "/v1/models?limit=1000")).json()
    assert [m["id"] for m in first["data"]] == ["model-0", "model-1"]
    assert (first["has_more"], first["first_id"], first["last_id"]) == (True, "model-0", "model-1")
    last = (await _get(upstream, "/v1/models?after_id=model-3")).json()
    assert [m["id"] for m in last["data"]] == ["model-4"] and last["has_more"] is False
    before = (await _get(upstream, "/v1/models?before_id=model-3&limit=1")).json()
    assert [m["id"] for m in before["data"]] == ["model-2"] and before["has_more"] is True
    assert first["data"][0]["display_name"] == "Model 0"


async def test_anthropic_limit_defaults_to_20() -> None:
    ids = [f"m{n}" for n in range(25)]
    body = (await _get(ScriptedUpstream("anthropic-messages", models=ids), "/v1/models")).json()
    assert len(body["data"]) == 20 and body["has_more"] is True


async def test_openai_list_forms() -> None:
    forms = get_dialect("openai-chat").model_list_forms()
    bodies = [json.loads(dialect.render_models(["a/b", "c:d"])) for dialect in forms.values()]
    assert [m["id"] for m in bodies[0]["data"]] == ["a/b", "c:d"]
    assert [m["id"] for m in bodies[1]] == ["a/b", "c:d"]
    assert [m.get("id") for m in bodies[2]["data"]] == ["a/b", None, "c:d", None]


async def test_models_error_and_raw_body() -> None:
    fault = ErrorFault(429, message="slow down", retry_after=3)
    upstream = ScriptedUpstream(models=IDS, models_error=fault)
    response = await _get(upstream, "/v1/models")
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert "slow down" in response.text
    raw = await _get(ScriptedUpstream(models=IDS, models_body=b"<html>"), "/v1/models")
    assert (raw.status_code, raw.content) == (200, b"<html>")


async def test_error_body_with_a_success_status() -> None:
    fault = ErrorFault(502, message="Provider returned error", wire_status=200)
    upstream = ScriptedUpstream(reply=CannedReply(("hi",)), error=fault)
    async with httpx.AsyncClient(transport=upstream, base_url="https://upstream.test") as client:
        response = await client.post("/v1/chat/completions", json={"model": "m", "messages": []})
    assert response.status_code == 200
    assert response.json()["error"]["message"] == "Provider returned error"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="wire_status"):
        ErrorFault(500, wire_status=100)
    with pytest.raises(ValueError, match="models_page_size"):
        ScriptedUpstream(models_page_size=0)
