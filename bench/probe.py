"""One request through a target before it is loaded: is the answer the upstream's?

wrk counts answers, not what they say; a target that answers quickly with an error (or a
stream that breaks off) must not be reported as fast. :func:`probe` sends the bench's
request once and compares the text that comes back with :data:`bench.upstream.TEXT`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from bench.upstream import TEXT

__all__ = ["answer_problem", "new_error_line", "probe"]


def _stream_text(body: str) -> tuple[str, bool]:
    text, done = [], False
    for line in body.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        try:
            event = json.loads(data)
        except ValueError:
            continue
        for choice in event.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if isinstance(content, str):
                text.append(content)
    return "".join(text), done


def answer_problem(status: int, body: str, stream: bool) -> str | None:
    """What is wrong with an answer (``None``: the upstream's text, a stream ended by
    ``[DONE]``)."""
    if status != 200:
        return f"HTTP {status}: {body.strip()[:200]}"
    if stream:
        text, done = _stream_text(body)
        if text != TEXT:
            return f"the stream carried {text!r}, not {TEXT!r}: {body.strip()[:200]}"
        return None if done else "the stream ended without data: [DONE]"
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return f"not a chat completion: {body.strip()[:200]}"
    return None if content == TEXT else f"the answer was {content!r}, not {TEXT!r}"


def probe(url: str, body: str, headers: dict[str, str], stream: bool) -> str | None:
    """Send ``body`` once; ``None`` if the answer is right, else what was wrong."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return answer_problem(response.status, response.read().decode(errors="replace"), stream)
    except urllib.error.HTTPError as exc:
        return answer_problem(exc.code, exc.read().decode(errors="replace"), stream)
    except (urllib.error.URLError, OSError) as exc:
        return f"request failed: {exc}"


def new_error_line(log: Path | None, offset: int) -> str | None:
    """The first line naming an error that ``log`` gained past ``offset`` bytes."""
    if log is None:
        return None
    try:
        with log.open("rb") as file:
            file.seek(offset)
            added = file.read(65536).decode(errors="replace")
    except OSError:
        return None
    for line in added.splitlines():
        if "Error" in line or "error" in line:
            return " ".join(line.split())[:300]
    return None
