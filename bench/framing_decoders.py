"""Stream-framing decoding throughput: the kit's NDJSON, JSON-array and AWS event-stream
decoders against the library peers that do the same job.

Each body (about 5 MB, shaped like the provider that streams so, some non-ASCII text) is
decoded whole, fed in 4 KiB reads; the best of several repetitions counts. Peers:

* NDJSON (Ollama): httpx's line decoder, which ``ollama``'s Python client reads its stream
  with (``Response.aiter_lines``). Both hand over one line of text per frame.
* Streamed JSON array (Gemini without ``alt=sse``): ijson's incremental ``items`` parser,
  which yields parsed elements, so the kit is timed both ways: frames only, and frames
  parsed (``json_codec.loads``) as an adapter reads them.
* AWS event-stream (Bedrock): botocore's ``EventStreamBuffer`` alone, which the kit's
  framing wraps (CRC checks included): the figure is what the wrapper costs.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from provara_kit.framings import Framing

__all__ = ["run"]

_WORDS = ["hello", " world", " the", " quick", "\n", " brown", " fox", " jumps", ","]


def _texts(target: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    texts: list[str] = []
    size = 0
    while size < target:
        text = "".join(rnd.choice(_WORDS) for _ in range(rnd.randint(1, 4)))
        if len(texts) % 25 == 0:
            text += " café 日本 🙂"
        texts.append(text)
        size += len(text) + 150
    return texts


def ndjson_stream(target: int = 5_000_000) -> bytes:
    lines = []
    for text in _texts(target):
        chunk = {
            "model": "llama3.2",
            "created_at": "2025-01-01T00:00:00.000000Z",
            "message": {"role": "assistant", "content": text},
            "done": False,
        }
        lines.append(json.dumps(chunk, ensure_ascii=False, separators=(",", ":")) + "\n")
    lines.append('{"model":"llama3.2","done":true,"done_reason":"stop","eval_count":9}\n')
    return "".join(lines).encode()


def json_array_stream(target: int = 5_000_000) -> bytes:
    elements = []
    for text in _texts(target // 2):  # pretty-printed elements are about twice the size
        chunk = {
            "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}}],
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
            "modelVersion": "gemini-2.0-flash",
        }
        elements.append(json.dumps(chunk, ensure_ascii=False, indent=2))
    return ("[" + "\n,\r\n".join(elements) + "\n]").encode()


def event_stream_body(target: int = 5_000_000) -> bytes:
    from provara_kit.testing.event_stream import encode_message

    frames = []
    for text in _texts(target):
        payload = json.dumps(
            {"contentBlockIndex": 0, "delta": {"text": text}, "p": "abcdefghijklmnopqrstuv"},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        frames.append(
            encode_message(
                {
                    ":event-type": "contentBlockDelta",
                    ":content-type": "application/json",
                    ":message-type": "event",
                },
                payload,
            )
        )
    return b"".join(frames)


def _kit(framing_name: str, parse: bool = False) -> Callable[[list[bytes]], int]:
    def decode(chunks: list[bytes]) -> int:
        from provara_kit import framings, json_codec

        framing = {
            "ndjson": framings.NDJSON,
            "json-array": framings.JSON_ARRAY,
        }.get(framing_name) or _event_stream_framing()
        decoder = framing.decoder()
        count = 0
        loads = json_codec.loads
        for chunk in chunks:
            frames = decoder.feed(chunk)
            if parse:
                for frame in frames:
                    loads(frame)
            count += len(frames)
        count += len(decoder.end())
        return count

    return decode


def _event_stream_framing() -> Framing[Any]:
    from provara_kit.framings.event_stream import EVENT_STREAM

    return EVENT_STREAM


def _httpx_lines(chunks: list[bytes]) -> int:
    from httpx._decoders import LineDecoder, TextDecoder

    text = TextDecoder("utf-8")
    lines = LineDecoder()
    count = 0
    for chunk in chunks:
        count += sum(1 for line in lines.decode(text.decode(chunk)) if line)
    count += sum(1 for line in lines.decode(text.flush()) + lines.flush() if line)
    return count


def _ijson(chunks: list[bytes]) -> int:
    import ijson  # type: ignore[import-untyped]

    events = ijson.sendable_list()
    parser = ijson.items_coro(events, "item")
    count = 0
    for chunk in chunks:
        parser.send(chunk)
        count += len(events)
        del events[:]
    parser.close()
    return count + len(events)


def _botocore(chunks: list[bytes]) -> int:
    from botocore.eventstream import EventStreamBuffer  # type: ignore[import-untyped]

    buffer = EventStreamBuffer()
    count = 0
    for chunk in chunks:
        buffer.add_data(chunk)
        count += sum(1 for _ in buffer)
    return count


_CASES: dict[str, tuple[Callable[[], bytes], dict[str, Callable[[list[bytes]], int]]]] = {
    "ndjson": (
        ndjson_stream,
        {"provara_kit.framings": _kit("ndjson"), "httpx lines (ollama client)": _httpx_lines},
    ),
    "json-array": (
        json_array_stream,
        {
            "provara_kit.framings": _kit("json-array"),
            "provara_kit.framings + parse": _kit("json-array", parse=True),
            "ijson items (parses)": _ijson,
        },
    ),
    "event-stream": (
        event_stream_body,
        {"provara_kit.framings": _kit("event-stream"), "botocore EventStreamBuffer": _botocore},
    ),
}


def run(repetitions: int = 5, chunk_size: int = 4096) -> dict[str, object]:
    """MB/s per framing and decoder; a decoder or body that cannot run is reported under
    ``missing`` with the reason (never as a figure)."""
    results: dict[str, object] = {}
    for framing, (make, decoders) in _CASES.items():
        missing: dict[str, str] = {}
        try:
            data = make()
        except ImportError as exc:
            results[framing] = {"mb_per_s": {}, "missing": {"body": f"not measured: {exc}"}}
            continue
        chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
        best: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(repetitions):
            for name, decode in decoders.items():
                if name in missing:
                    continue
                started = time.perf_counter()
                try:
                    counts[name] = decode(chunks)
                except ImportError as exc:
                    missing[name] = f"not measured: {exc}"
                    continue
                elapsed = time.perf_counter() - started
                best[name] = min(best.get(name, elapsed), elapsed)
        if len(set(counts.values())) > 1:
            raise RuntimeError(f"{framing} decoders disagree on the frame count: {counts}")
        mb = len(data) / 1e6
        results[framing] = {
            "stream_mb": round(mb, 2),
            "frames": next(iter(counts.values()), 0),
            "mb_per_s": {name: round(mb / seconds, 1) for name, seconds in best.items()},
            "missing": missing,
        }
    return {"chunk_bytes": chunk_size, "framings": results}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
