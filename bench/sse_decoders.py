"""SSE decoding throughput: ``provara_kit.sse`` against httpx-sse and the openai SDK.

A large OpenAI-shaped stream (5 MB, some non-ASCII text) is decoded whole, fed in
4 KiB chunks, by each decoder; the best of several repetitions counts. httpx-sse is driven
as ``EventSource.iter_sse`` drives it (incremental UTF-8 decoding, line splitting, event
assembly); the openai SDK's ``SSEDecoder.iter_bytes`` is its own streaming path.
"""

from __future__ import annotations

import codecs
import json
import random
import time
from collections.abc import Callable

__all__ = ["run"]


def make_stream(target: int = 5_000_000, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    words = ["hello", " world", " the", " quick", "\n", " brown", " fox", " jumps", ","]
    parts: list[bytes] = []
    size = 0
    i = 0
    while size < target:
        i += 1
        content = "".join(rnd.choice(words) for _ in range(rnd.randint(1, 4)))
        if i % 25 == 0:
            content += " café 日本 🙂"
        chunk = {
            "id": "chatcmpl-ABfw4IfQfCCrcuybFm41wJyxjbkz7",
            "object": "chat.completion.chunk",
            "created": 1727346172,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": None}
            ],
        }
        event = f"data: {json.dumps(chunk, ensure_ascii=False, separators=(',', ':'))}\n\n"
        data = event.encode()
        parts.append(data)
        size += len(data)
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def _provara(chunks: list[bytes]) -> int:
    from provara_kit.sse import SSEDecoder

    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    decoder.end()
    return count


def _httpx_sse(chunks: list[bytes]) -> int:
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    text = codecs.getincrementaldecoder("utf-8")("replace")
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            if decoder.decode(line.rstrip("\n")) is not None:
                count += 1
    for line in lines.flush():
        if decoder.decode(line.rstrip("\n")) is not None:
            count += 1
    return count


def _openai(chunks: list[bytes]) -> int:
    from openai._streaming import SSEDecoder

    return sum(1 for _ in SSEDecoder().iter_bytes(iter(chunks)))


def run(repetitions: int = 7, chunk_size: int = 4096) -> dict[str, object]:
    """MB/s per decoder (``None`` with a reason when a peer is not installed)."""
    data = make_stream()
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    decoders: dict[str, Callable[[list[bytes]], int]] = {
        "provara_kit.sse": _provara,
        "httpx-sse": _httpx_sse,
        "openai SDK": _openai,
    }
    best: dict[str, float] = {}
    missing: dict[str, str] = {}
    counts: dict[str, int] = {}
    for _ in range(repetitions):
        for name, decode in decoders.items():
            if name in missing:
                continue
            started = time.perf_counter()
            try:
                counts[name] = decode(chunks)
            except ImportError as exc:
                missing[name] = str(exc)
                continue
            elapsed = time.perf_counter() - started
            best[name] = min(best.get(name, elapsed), elapsed)
    if len(set(counts.values())) > 1:
        raise RuntimeError(f"decoders disagree on the event count: {counts}")
    mb = len(data) / 1e6
    return {
        "stream_mb": round(mb, 2),
        "events": counts.get("provara_kit.sse", 0),
        "chunk_bytes": chunk_size,
        "mb_per_s": {name: round(mb / seconds, 1) for name, seconds in best.items()},
        "missing": missing,
    }
