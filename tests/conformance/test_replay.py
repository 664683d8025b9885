from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from conformance import ConformanceTarget
from conformance.context import CheckContext
from conformance.replay import (
    Exchange,
    Fixture,
    RecordingTransport,
    ReplayTransport,
    corpus_fixtures,
    load_fixtures,
)
from conformance.suite import run_check
from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.registry import ProviderFactory
from provara_kit.streaming import StreamDone
from provara_kit.testing import CannedReply, ScriptedUpstream, get_dialect
from provara_kit.types import ChatRequest

KEY = "sk-record-me-0123456789abcdef0123"
REQUEST = ChatRequest(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def openai_factory(
    *, api_key: str | None, base_url: str | None, transport: httpx.AsyncBaseTransport | None
) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        name="acme",
        api_key=api_key,
        base_url=base_url or "https://acme.test/v1",
        transport=transport,
    )


def target(fixtures: Path, factory: ProviderFactory = openai_factory) -> ConformanceTarget:
    return ConformanceTarget(
        name="acme",
        factory=factory,
        dialect=get_dialect("openai-chat"),
        models=("gpt-4o-mini",),
        fixtures_dir=fixtures,
    )


async def record(tmp_path: Path) -> Path:
    upstream = ScriptedUpstream("openai-chat", reply=CannedReply(("Hi", " there")))
    recorder = RecordingTransport(secrets=(KEY,), inner=upstream)
    provider = openai_factory(api_key=KEY, base_url=None, transport=recorder)
    async with provider:
        await provider.complete(REQUEST)
        await provider.complete_stream(REQUEST).collect()
    path = recorder.save(tmp_path / "fixtures", "status-200-1", provider="acme")
    assert path is not None
    return path


async def test_recording_strips_secrets_and_replays(tmp_path: Path) -> None:
    path = await record(tmp_path)
    text = path.read_text()
    assert KEY not in text and "authorization" not in text.lower()
    data = json.loads(text)
    assert [e["request"]["path"] for e in data["exchanges"]] == ["/v1/chat/completions"] * 2
    assert data["exchanges"][1]["request"]["body"]["stream"] is True

    [fixture] = load_fixtures(path.parent)
    transport = ReplayTransport(fixture.exchanges)
    provider = openai_factory(api_key="other", base_url=None, transport=transport)
    async with provider:
        assert (await provider.complete(REQUEST)).text == "Hi there"
        assert (await provider.complete_stream(REQUEST).collect()).text == "Hi there"
    assert transport.pending == [] and transport.mismatches == []


def test_replay_fixtures_check_passes_on_a_good_recording(tmp_path: Path) -> None:
    path = asyncio.run(record(tmp_path))
    run_check("replay-fixtures", target(path.parent))


def test_requests_that_do_not_fit_the_recording_fail_the_check(tmp_path: Path) -> None:
    path = asyncio.run(record(tmp_path))
    data = json.loads(path.read_text())
    data["exchanges"][0]["request"]["path"] = "/v1/messages"  # not where the adapter posts
    path.write_text(json.dumps(data))
    with pytest.raises(AssertionError, match="the recording has POST /v1/messages"):
        run_check("replay-fixtures", target(path.parent))


class SkippingAdapter(OpenAICompatibleProvider):
    """Known bad: answers non-streamed calls from a cache instead of asking upstream."""

    async def complete(self, request: ChatRequest):  # type: ignore[no-untyped-def]
        raise ValueError("refused before sending")


def test_unplayed_exchanges_fail_the_check(tmp_path: Path) -> None:
    path = asyncio.run(record(tmp_path))

    def factory(*, api_key, base_url, transport):  # type: ignore[no-untyped-def]
        return SkippingAdapter(
            name="acme", api_key=api_key, base_url="https://a/v1", transport=transport
        )

    with pytest.raises(AssertionError, match="1 recorded exchanges were never requested"):
        run_check("replay-fixtures", target(path.parent, factory))


class ForgivingAdapter(OpenAICompatibleProvider):
    """Known bad: calls any body that ends a clean end, even mid-error."""

    async def _map_stream(self, events, request):  # type: ignore[no-untyped-def, override]
        try:
            async for event in super()._map_stream(events, request):
                yield event
        except Exception:
            pass
        yield StreamDone()


def forgiving_factory(
    *, api_key: str | None, base_url: str | None, transport: httpx.AsyncBaseTransport | None
) -> ForgivingAdapter:
    return ForgivingAdapter(
        name="acme",
        api_key=api_key,
        base_url=base_url or "https://acme.test/v1",
        transport=transport,
    )


def test_replay_catches_an_adapter_that_forgives_real_error_events(tmp_path: Path) -> None:
    folder = tmp_path / "fixtures"
    folder.mkdir()
    body = (
        'data: {"id":"x","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        'data: {"error":{"message":"Token limit reached","code":400}}\n\n'
        "data: [DONE]\n\n"
    )
    fixture = {
        "provider": "acme",
        "exchanges": [
            {
                "request": {
                    "method": "POST",
                    "path": "/chat/completions",
                    "body": {"stream": True},
                },
                "response": {
                    "status": 200,
                    "headers": {"content-type": "text/event-stream"},
                    "body": body,
                },
            }
        ],
    }
    (folder / "error-in-stream.fixture.json").write_text(json.dumps(fixture))
    run_check("replay-fixtures", target(folder))  # the real adapter aborts: passes
    with pytest.raises(AssertionError, match=r"never finishes cleanly .* reported a clean end"):
        run_check("replay-fixtures", target(folder, forgiving_factory))


def test_corpus_fixtures_parse_raw_http(tmp_path: Path) -> None:
    raw = (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b'19\r\n{"error":{"message":"x"}}\r\n0\r\n\r\n'
    )
    (tmp_path / "error.http").write_bytes(raw)
    [fixture] = corpus_fixtures(tmp_path)
    [exchange] = fixture.exchanges
    assert exchange.status == 429 and exchange.body == b'{"error":{"message":"x"}}'
    assert "transfer-encoding" not in exchange.headers


def test_replay_transport_notes_mismatched_requests() -> None:
    exchange = Exchange("GET", "/models", 200, {}, b"{}")
    transport = ReplayTransport([exchange])
    fixture = Fixture("f", [exchange])
    assert fixture.exchanges[0] is exchange

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.post("https://x.test/chat/completions")
            response = await client.get("https://x.test/extra")
            assert response.status_code == 599

    asyncio.run(go())
    assert "the recording has GET /models" in transport.mismatches[0]
    assert "unexpected extra request" in transport.mismatches[1]


def test_recorded_model_listing_replays_through_discover_models(tmp_path: Path) -> None:
    async def record_models() -> Path:
        upstream = ScriptedUpstream("openai-chat", models=["gpt-4o-mini", "acme-2"])
        recorder = RecordingTransport(secrets=(KEY,), inner=upstream)
        async with openai_factory(api_key=KEY, base_url=None, transport=recorder) as provider:
            assert await provider.discover_models() == ["gpt-4o-mini", "acme-2"]
        saved = recorder.save(tmp_path / "fixtures", "pricing-presence-1", provider="acme")
        assert saved is not None
        return saved

    path = asyncio.run(record_models())
    run_check("replay-fixtures", target(path.parent))

    class BlindAdapter(OpenAICompatibleProvider):
        """Known bad: reads no models out of a listing."""

        async def discover_models(self) -> list[str] | None:
            await self._get_json("/models")
            return []

    def factory(*, api_key, base_url, transport):  # type: ignore[no-untyped-def]
        return BlindAdapter(
            name="acme", api_key=api_key, base_url="https://a/v1", transport=transport
        )

    with pytest.raises(AssertionError, match="discover_models read no models"):
        run_check("replay-fixtures", target(path.parent, factory))


def test_recorded_paths_leave_out_the_base_url_so_they_replay_under_another(
    tmp_path: Path,
) -> None:
    """--record against a base URL of its own (an API behind a proxy's prefix, given as
    <NAME>_BASE_URL) writes the endpoints' paths; the replay, at the default base URL,
    fits them."""
    live = dataclasses.replace(target(tmp_path), base_url="https://proxy.test/acme/v1")
    ctx = CheckContext(live, live=True, record=True)
    provider = ctx.live_provider(api_key=KEY)
    [recorder] = ctx.recordings
    upstream = ScriptedUpstream("openai-chat", reply=CannedReply(("Hi", " there")))
    recorder.inner = upstream

    async def go() -> None:
        async with provider:
            await provider.complete(REQUEST)
            await provider.complete_stream(REQUEST).collect()

    asyncio.run(go())
    assert [request.path for request in upstream.requests] == ["/acme/v1/chat/completions"] * 2
    [path] = ctx.save_recordings("status-200", tmp_path / "fixtures")
    data = json.loads(path.read_text())
    assert [e["request"]["path"] for e in data["exchanges"]] == ["/chat/completions"] * 2
    run_check("replay-fixtures", target(path.parent))  # at https://conformance.invalid/v1

    def at_the_root(*, api_key, base_url, transport):  # type: ignore[no-untyped-def]
        return openai_factory(api_key=api_key, base_url="https://acme.test", transport=transport)

    run_check("replay-fixtures", target(path.parent, at_the_root))


def test_a_base_path_is_left_out_only_where_it_leads_the_path() -> None:
    recorder = RecordingTransport(
        inner=ScriptedUpstream("openai-chat", reply=CannedReply(("Hi",))), base_path="/v1/"
    )

    async def go() -> None:
        async with httpx.AsyncClient(transport=recorder) as client:
            await client.post("https://x.test/v1/chat/completions", json={"model": "m"})
            await client.post("https://x.test/v1x/chat/completions", json={"model": "m"})
            await client.post("https://x.test/v1", json={"model": "m"})

    asyncio.run(go())
    paths = [e.path for e in recorder.exchanges]
    assert paths == ["/chat/completions", "/v1x/chat/completions", "/v1"]
