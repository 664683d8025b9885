"""Small pieces of the gateway that need no server: settings, faults, chunk encoding."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from provara_kit.errors import ConfigurationError
from provara_kit.types import ProvaraMeta, ToolCallDelta
from reference_gateway.config import Settings, sqlite_path
from reference_gateway.local import LocalFault
from reference_gateway.sse import ChunkEncoder


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./provara-gateway.db", "./provara-gateway.db"),
        ("sqlite:///data/gw.db", "data/gw.db"),
        ("sqlite:////var/lib/gw.db", "/var/lib/gw.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("plain/path.db", "plain/path.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["postgres://db/x", "sqlite://relative.db", "sqlite:///", ""])
def test_bad_database_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        sqlite_path(url)


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "PROVARA_MASTER_KEY": "secret-value",
            "PROVARA_STREAM_TIMEOUT_MS": "2500",
            "PROVARA_MIN_SAMPLES": "7",
            "PROVARA_DEFAULT_MODEL": "openai/gpt-4o-mini",
            "PROVARA_LOCAL_UPSTREAM": "false",
        }
    )
    assert settings.stream_timeout == 2.5
    assert settings.min_samples == 7
    assert settings.default_model == "openai/gpt-4o-mini"
    assert settings.local_upstream is False
    assert settings.database_path == "./provara-gateway.db"
    assert "secret-value" not in repr(settings)


@pytest.mark.parametrize(
    "environ",
    [
        {"PROVARA_STREAM_TIMEOUT_MS": "0"},
        {"PROVARA_MIN_SAMPLES": "many"},
        {"PROVARA_LOCAL_UPSTREAM": "maybe"},
        {"PROVARA_DEFAULT_MODEL": "auto"},
    ],
)
def test_bad_settings(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(environ)


def test_local_fault_parsing() -> None:
    fault = LocalFault.parse(" stall=200 ; abort")
    assert fault == LocalFault(abort=True, stall_ms=200)
    assert LocalFault.parse(fault.header()) == fault
    assert LocalFault.parse("status=429; retry-after=3").header() == "status=429; retry-after=3"
    for bad in (
        "",
        "explode",
        "stall",
        "stall=-1",
        "stall=999999",
        "status=200",
        "abort=1",
        "retry-after=2",
    ):
        with pytest.raises(ValueError):
            LocalFault.parse(bad)


META = ProvaraMeta(
    provider="p",
    model="m",
    input_tokens=3,
    output_tokens=4,
    input_tokens_source="upstream",
    output_tokens_source="estimated",
    cost_usd=Decimal("0.0000123"),
    priced=True,
    finish_reason="stop",
    ttft_ms=1.5,
    latency_ms=3.0,
)


def data(frame: bytes) -> dict:
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert b"\n" not in frame[:-2]
    return orjson.loads(frame[6:-2])


def test_chunk_encoder() -> None:
    encoder = ChunkEncoder("chatcmpl-1", 123, "p/m")
    first = data(encoder.text("line one\nline two\r\n"))
    assert first["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "line one\nline two\r\n",
    }
    assert first["object"] == "chat.completion.chunk" and first["model"] == "p/m"
    assert data(encoder.reasoning("hm"))["choices"][0]["delta"] == {"reasoning_content": "hm"}
    call = data(encoder.tool_call(ToolCallDelta(index=0, id="c1", name="f", arguments="{")))
    assert call["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{"}}
    ]
    frames = [f + b"\n\n" for f in encoder.end(META, include_usage=True).split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]\n\n"
    finish, usage, meta = (data(f) for f in frames[:-1])
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 7
    assert meta["choices"] == [] and meta["provara"]["cost_usd"] == "0.0000123"
    assert meta["provara"]["output_tokens_source"] == "estimated"
    assert (meta["provara"]["input_tokens_method"], meta["provara"]["output_tokens_method"]) == (
        "upstream",
        "chars/4",
    )
    assert b'"usage"' not in ChunkEncoder("c", 1, "m").end(META, include_usage=False)


def test_finish_carries_the_role_when_nothing_streamed() -> None:
    frame = ChunkEncoder("c", 1, "m").end(META, include_usage=False).split(b"\n\n")[0]
    assert data(frame + b"\n\n")["choices"][0]["delta"] == {"role": "assistant"}
