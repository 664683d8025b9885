"""Recorded real exchanges: record them from the live API, replay them through an adapter.

A fixture is one JSON file, ``<name>.fixture.json``::

    {"provider": "acme", "recorded_at": "...", "exchanges": [
        {"request": {"method": "POST", "path": "/messages", "body": {...}},
         "response": {"status": 200, "headers": {...}, "body": "event: ...\\n\\n"}}]}

A request's path is the endpoint's, under the adapter's base URL (``/messages``, not
``/v1/messages``): the base URL belongs to where the API was reached, so a recording made
with ``<NAME>_BASE_URL`` set replays against the default base URL. A replayed request fits
a recorded path its own path ends with. Auth headers are never written and the key is
scrubbed from bodies.

The recorded wire bodies of ``shared/wire-corpus`` (``.sse``, ``.ndjson``, AWS
``.eventstream``, raw ``.http`` files, and ``.json`` bodies whose request and status the
corpus README records) replay the same way; a streamed JSON array (a ``[`` body) is a stream.
A replay that leaves an exchange unplayed fails: the adapter did not make the calls the
recording holds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from provara_kit.errors import redact

__all__ = [
    "CORPUS_ENV",
    "Exchange",
    "Fixture",
    "RecordingTransport",
    "ReplayTransport",
    "corpus_fixtures",
    "default_corpus",
    "load_fixtures",
]

CORPUS_ENV = "PROVARA_WIRE_CORPUS"
_SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie"}
)
_DROPPED_HEADERS = _SECRET_HEADERS | {"content-length", "content-encoding", "transfer-encoding"}
# A corpus README line naming an extracted body and the request it answered:
#   * `ollama/extracted/x.i0.http`: POST http://localhost:11434/api/chat HTTP/1.1 -> ...
_RECORDED_REQUEST = re.compile(
    r"^\s*\* `(?:[^`]*/)?extracted/(?P<file>[^`/]+)`: [A-Z]+ (?P<url>\S+)", re.MULTILINE
)


@dataclass
class Exchange:
    """One request and the response the upstream gave to it."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes
    request_body: Any = None

    @property
    def framing(self) -> str | None:
        """The framing of a streamed body (``sse``, ``ndjson`` or ``json-array``, as
        :mod:`provara_kit.framings` names them); ``None`` for a whole body."""
        content_type = self.headers.get("content-type", "")
        if "text/event-stream" in content_type:
            return "sse"
        if "application/x-ndjson" in content_type:
            return "ndjson"
        if "application/vnd.amazon.eventstream" in content_type:
            return "event-stream"  # Bedrock's ConverseStream
        if "json" in content_type and self.body.lstrip()[:1] == b"[":
            return "json-array"  # Gemini's streamGenerateContent without alt=sse
        return None

    @property
    def is_stream(self) -> bool:
        return self.framing is not None


@dataclass
class Fixture:
    """A named, ordered list of exchanges to play back."""

    name: str
    exchanges: list[Exchange]
    source: Path | None = None


def load_fixtures(folder: Path) -> list[Fixture]:
    """Every ``*.fixture.json`` under ``folder``."""
    fixtures = []
    for path in sorted(folder.rglob("*.fixture.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        exchanges = [
            Exchange(
                method=item["request"]["method"],
                path=item["request"]["path"],
                request_body=item["request"].get("body"),
                status=int(item["response"]["status"]),
                headers={k.lower(): v for k, v in item["response"].get("headers", {}).items()},
                body=item["response"]["body"].encode("utf-8"),
            )
            for item in data["exchanges"]
        ]
        fixtures.append(Fixture(path.name.removesuffix(".fixture.json"), exchanges, path))
    return fixtures


def default_corpus() -> Path | None:
    """The wire corpus: ``$PROVARA_WIRE_CORPUS``, else ``shared/wire-corpus`` beside the
    working directory or beside this checkout."""
    configured = os.environ.get(CORPUS_ENV)
    if configured:
        return Path(configured) if Path(configured).is_dir() else None
    checkout = Path(__file__).resolve().parents[1]
    for base in (Path.cwd(), checkout):
        candidate = base.parent / "shared" / "wire-corpus"
        if candidate.is_dir():
            return candidate
    return None


def corpus_fixtures(folder: Path, *, routes: Callable[[str], bool] | None = None) -> list[Fixture]:
    """The streamed and raw-HTTP bodies a corpus folder holds, one fixture each.

    With ``routes``, a body the corpus README says answered a request to a path ``routes``
    rejects (another endpoint of the same API: Ollama's ``/api/pull``) is left out. A
    ``.dechunked.ndjson`` body is left out too: the ``.http`` beside it replays the same
    bytes with their HTTP framing.
    """
    requested = _recorded_paths(folder.parent / "README.md") if routes is not None else {}
    fixtures = []
    streamed = [(path, "text/event-stream; charset=utf-8") for path in folder.rglob("*.sse")]
    streamed += [
        (path, "application/x-ndjson")
        for path in folder.rglob("*.ndjson")
        if not path.name.endswith(".dechunked.ndjson")
    ]
    streamed += [
        (path, "application/vnd.amazon.eventstream") for path in folder.rglob("*.eventstream")
    ]
    for path, content_type in sorted(streamed):
        body = path.read_bytes()
        exchange = Exchange("POST", "", 200, {"content-type": content_type}, body, {"stream": True})
        fixtures.append(Fixture(path.name, [exchange], path))
    for path in sorted(folder.rglob("*.http")):
        fixtures.append(Fixture(path.name, [_parse_http(path.read_bytes())], path))
    if routes is None:
        return fixtures
    # A whole JSON body carries no status of its own: only those the README records a
    # request (and so a status) for replay, and only where routes are judged.
    statuses = _recorded_statuses(folder.parent / "README.md")
    for path in sorted(folder.rglob("*.json")):
        if path.name in requested:
            headers = {"content-type": "application/json; charset=UTF-8"}
            exchange = Exchange(
                "POST", "", statuses.get(path.name, 200), headers, path.read_bytes()
            )
            exchange.request_body = {"stream": exchange.is_stream}
            fixtures.append(Fixture(path.name, [exchange], path))
    return [f for f in fixtures if f.name not in requested or routes(requested[f.name])]


def _recorded_paths(readme: Path) -> dict[str, str]:
    """File name -> the path of the request it answered, as the corpus README records it."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {
        match["file"]: urlsplit(match["url"]).path.rstrip("/")
        for match in _RECORDED_REQUEST.finditer(text)
    }


_RECORDED_STATUS = re.compile(
    r"^\s*\* `(?:[^`]*/)?extracted/(?P<file>[^`/]+)`: [A-Z]+ \S+ .*?-> HTTP(?:/[\d.]+)? "
    r"(?P<status>\d{3})",
    re.MULTILINE,
)


def _recorded_statuses(readme: Path) -> dict[str, int]:
    """File name -> the HTTP status its response had, as the corpus README records it."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return {}
    return {match["file"]: int(match["status"]) for match in _RECORDED_STATUS.finditer(text)}


def _parse_http(raw: bytes) -> Exchange:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not _:
        head, _, body = raw.partition(b"\n\n")
    lines = head.decode("latin-1").splitlines()
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    kept = {k: v for k, v in headers.items() if k not in _DROPPED_HEADERS}
    exchange = Exchange("POST", "", status, kept, body)
    exchange.request_body = {"stream": exchange.is_stream}
    return exchange


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    rest = body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


class ReplayTransport(httpx.AsyncBaseTransport):
    """Serves the exchanges of a fixture in order; notes any request that does not fit."""

    def __init__(self, exchanges: Iterable[Exchange]) -> None:
        self.pending = list(exchanges)
        self.played = 0
        self.mismatches: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.pending:
            self.mismatches.append(f"unexpected extra request {request.method} {request.url.path}")
            return httpx.Response(599, json={"error": {"message": "not in the recording"}})
        exchange = self.pending.pop(0)
        self.played += 1
        if exchange.method != request.method or not request.url.path.endswith(exchange.path):
            self.mismatches.append(
                f"request {self.played} was {request.method} {request.url.path}, the recording "
                f"has {exchange.method} {exchange.path}"
            )
        return httpx.Response(
            exchange.status, headers=exchange.headers, content=exchange.body, request=request
        )


@dataclass
class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the real network and keeps what came back, secrets removed.

    ``base_path`` is the path of the adapter's base URL (``/v1``); it is left out of the
    recorded paths."""

    secrets: tuple[str, ...] = ()
    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[Exchange] = field(default_factory=list)
    base_path: str = ""

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        await response.aclose()
        try:
            sent = json.loads(request.content) if request.content else None
        except ValueError:
            sent = None
        headers = {k.lower(): v for k, v in response.headers.items()}
        path = request.url.path
        base = self.base_path.rstrip("/")
        if base and path.startswith(base + "/"):
            path = path[len(base) :]
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=path,
                status=response.status_code,
                headers={k: v for k, v in headers.items() if k not in _DROPPED_HEADERS},
                body=redact(body.decode("utf-8", "replace"), self.secrets).encode("utf-8"),
                request_body=sent,
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    def save(self, folder: Path, name: str, *, provider: str) -> Path | None:
        """Write the exchanges as ``<folder>/<name>.fixture.json``; nothing if none."""
        if not self.exchanges:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.fixture.json"
        data = {
            "provider": provider,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "exchanges": [
                {
                    "request": {"method": e.method, "path": e.path, "body": e.request_body},
                    "response": {
                        "status": e.status,
                        "headers": e.headers,
                        "body": e.body.decode("utf-8", "replace"),
                    },
                }
                for e in self.exchanges
            ],
        }
        text = redact(json.dumps(data, indent=2, ensure_ascii=False), self.secrets)
        path.write_text(text + "\n", encoding="utf-8")
        return path
