"""Load recordings from the shared wire-fixture corpus (``../shared/wire-corpus``).

The corpus lives next to the repository, not inside it. Tests that need it call
:func:`corpus_dir` (or parametrize with :func:`corpus_params`), which skip with a clear
reason when it is absent instead of failing.

Formats read here:

* ``.http``: a raw HTTP response (status line, headers, a blank line, the body) as an
  httprr trace stored it; a ``Transfer-Encoding: chunked`` body is de-chunked.
* ``.sse`` / ``.json``: a response body as the recorder stored it.
* ``.chunks.txt``: vercel/ai fixtures, de-framed (one SSE ``data`` payload per line);
  :func:`reframe_chunks` puts the framing back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CORPUS_DIR",
    "HttpRecording",
    "corpus_dir",
    "corpus_files",
    "corpus_params",
    "dechunk",
    "parse_http",
    "read_body",
    "read_recording",
    "recorded_status",
    "reframe_chunks",
]

CORPUS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "wire-corpus"
SKIP_REASON = f"wire-fixture corpus not found at {CORPUS_DIR} (it lives beside the repository)"

# Lines of the corpus README that name an extracted file and the status it was recorded with:
#   * `openai/extracted/x.i0.json`: POST https://... -> HTTP 401; content-type ...
_README_STATUS = re.compile(
    r"^\s*\* `(?P<path>[^`]+/extracted/[^`]+)`: .*?-> HTTP(?:/\d(?:\.\d)?)? (?P<status>\d{3})\b",
    re.MULTILINE,
)
_NAME_STATUS = re.compile(r"(?:^|[-.])error-(?P<status>\d{3})-")


@dataclass(slots=True)
class HttpRecording:
    """A recorded HTTP response: status, headers in wire order, and the (de-chunked) body."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").lower()


def corpus_dir() -> Path:
    """The corpus directory; skips the calling test when it is absent."""
    if not CORPUS_DIR.is_dir():
        pytest.skip(SKIP_REASON)
    return CORPUS_DIR


def corpus_files(folders: Iterable[str], patterns: Iterable[str]) -> list[Path]:
    """Files under ``folders`` (relative to the corpus) matching any glob in ``patterns``.

    Returns ``[]`` when the corpus is absent, so this is safe at collection time.
    """
    if not CORPUS_DIR.is_dir():
        return []
    found: set[Path] = set()
    for folder in folders:
        base = CORPUS_DIR / folder
        for pattern in patterns:
            found.update(p for p in base.glob(pattern) if p.is_file())
    return sorted(found)


def corpus_params(paths: Sequence[Path]) -> list[Any]:
    """``pytest.param`` per file, id = path inside the corpus; one skipped param if none."""
    if not paths:
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=SKIP_REASON))]
    return [pytest.param(path, id=path.relative_to(CORPUS_DIR).as_posix()) for path in paths]


def dechunk(body: bytes) -> bytes:
    """Decode a ``Transfer-Encoding: chunked`` body (chunk extensions and trailers ignored)."""
    out = bytearray()
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("chunked body: missing chunk-size line")
        size_text = body[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ValueError(f"chunked body: bad chunk size {size_text!r}") from None
        pos = end + 2
        if size == 0:
            return bytes(out)
        if pos + size > len(body):
            raise ValueError("chunked body: chunk runs past the end of the body")
        out += body[pos : pos + size]
        pos += size
        if body[pos : pos + 2] != b"\r\n":
            raise ValueError("chunked body: chunk data not followed by CRLF")
        pos += 2


def parse_http(raw: bytes) -> HttpRecording:
    """Parse a raw HTTP response: status line, headers, body after the first blank line."""
    crlf = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        head, body = raw[:crlf], raw[crlf + 4 :]
    elif lf >= 0:
        head, body = raw[:lf], raw[lf + 2 :]
    else:
        head, body = raw, b""
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {lines[0]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    recording = HttpRecording(
        status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "", headers=headers
    )
    te = (recording.header("transfer-encoding") or "").lower()
    recording.body = dechunk(body) if "chunked" in te else body
    return recording


@cache
def _readme_statuses() -> dict[str, int]:
    readme = corpus_dir() / "README.md"
    if not readme.is_file():
        return {}
    text = readme.read_text(encoding="utf-8")
    return {m["path"]: int(m["status"]) for m in _README_STATUS.finditer(text)}


def recorded_status(path: Path) -> int | None:
    """The HTTP status ``path`` was recorded with.

    From the status line of an ``.http`` file; for an extracted body, from the corpus
    README (which names every extracted file's status: ``error-400-x.i1.json`` can be the
    200 retry that followed the 400); otherwise from an ``error-NNN-`` file name.
    """
    if path.name.endswith(".http"):
        return parse_http(path.read_bytes()).status
    relative = path.relative_to(corpus_dir()).as_posix()
    status = _readme_statuses().get(relative)
    if status is not None:
        return status
    match = _NAME_STATUS.search(path.name)
    return int(match["status"]) if match else None


def reframe_chunks(text: str, *, done: bool = True) -> bytes:
    """Re-frame a de-framed vercel ``.chunks.txt`` as ``data: <line>\\n\\n`` events.

    The de-framing dropped ``data: [DONE]``; ``done`` puts it back at the end.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if done:
        lines.append("[DONE]")
    return "".join(f"data: {line}\n\n" for line in lines).encode()


def read_recording(path: Path) -> HttpRecording:
    """Any corpus response file as an :class:`HttpRecording` (status None-safe: 200 default)."""
    if path.name.endswith(".http"):
        return parse_http(path.read_bytes())
    status = recorded_status(path) or 200
    if path.name.endswith(".chunks.txt"):
        body = reframe_chunks(path.read_text(encoding="utf-8"))
        return HttpRecording(status, "", [("content-type", "text/event-stream")], body)
    ctype = "text/event-stream" if path.suffix == ".sse" else "application/json"
    return HttpRecording(status, "", [("content-type", ctype)], path.read_bytes())


def read_body(path: Path) -> bytes:
    """The response body stored in ``path``, whatever its format."""
    return read_recording(path).body
