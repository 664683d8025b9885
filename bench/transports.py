"""The transport under the adapters' httpx client, chosen by measurement.

One OpenAI-compatible adapter (the SDK's :class:`OpenAICompatibleProvider`, as the gateway
builds it) calls the nginx mock upstream in this process, on uvloop, through each
candidate ``httpx.AsyncBaseTransport``:

* ``provara FastTransport``: the gateway's own (``reference_gateway.transport``);
* ``httpx default``: ``httpx.AsyncHTTPTransport`` (httpcore), what a plain client uses;
* ``httpx-aiohttp``: ``httpx_aiohttp.AiohttpTransport``, aiohttp under httpx.

Each does complete calls and full streams, one at a time (concurrency 1) and from 16
concurrent callers, for a fixed time; requests/s of the best of ``repetitions`` runs
count. A transport whose package is missing is reported as missing, not skipped silently.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from provara_kit.providers.openai_compatible import OpenAICompatibleProvider
from provara_kit.types import ChatRequest

__all__ = ["run"]

_REQUEST = ChatRequest(model="bench-model", messages=[{"role": "user", "content": "Say hello."}])


def _candidates() -> tuple[dict[str, Callable[[], httpx.AsyncBaseTransport]], dict[str, str]]:
    found: dict[str, Callable[[], httpx.AsyncBaseTransport]] = {}
    missing: dict[str, str] = {}
    try:
        from reference_gateway.transport import FastTransport

        found["provara FastTransport"] = FastTransport
    except ImportError as exc:  # pragma: no cover - the gateway extra is part of the bench
        missing["provara FastTransport"] = str(exc)
    found["httpx default"] = httpx.AsyncHTTPTransport
    try:
        # Imported by name: an optional package of the bench session, not of the lint one.
        found["httpx-aiohttp"] = importlib.import_module("httpx_aiohttp").AiohttpTransport
    except ImportError as exc:
        missing["httpx-aiohttp"] = str(exc)
    return found, missing


async def _rate(call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def _measure(
    make: Callable[[], httpx.AsyncBaseTransport],
    base_url: str,
    stream_base_url: str,
    seconds: float,
    repetitions: int,
) -> dict[str, float]:
    complete = OpenAICompatibleProvider(
        name="mock", base_url=base_url, api_key="sk-bench", transport=make(), pricing={}
    )
    streaming = OpenAICompatibleProvider(
        name="mock", base_url=stream_base_url, api_key="sk-bench", transport=make(), pricing={}
    )
    streaming.stream_timeout = 30.0

    async def one_stream() -> None:
        async with streaming.complete_stream(_REQUEST) as stream:
            async for _ in stream:
                pass

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "json": lambda: complete.complete(_REQUEST),
        "stream": one_stream,
    }
    rates: dict[str, float] = {}
    try:
        for mode, call in calls.items():
            await call()  # warm the connection pool
            for concurrency in (1, 16):
                best = 0.0
                for _ in range(repetitions):
                    best = max(best, await _rate(call, concurrency, seconds))
                rates[f"{mode} c{concurrency}"] = round(best, 1)
    finally:
        await complete.aclose()
        await streaming.aclose()
    return rates


def run(
    base_url: str, stream_base_url: str, *, seconds: float = 2.0, repetitions: int = 3
) -> dict[str, Any]:
    """Requests/s per transport and mode (``json c1``, ``json c16``, ``stream c1``, ...)."""
    import uvloop

    found, missing = _candidates()
    results: dict[str, dict[str, float]] = {}
    for name, make in found.items():
        try:
            results[name] = uvloop.run(
                _measure(make, base_url, stream_base_url, seconds, repetitions)
            )
        except Exception as exc:  # a candidate that cannot talk to nginx is reported
            missing[name] = f"{type(exc).__name__}: {exc}"
    return {"requests_per_s": results, "missing": missing, "seconds": seconds}
