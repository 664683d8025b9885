"""The template's replay fixtures, rebuilt from the real recordings in ``shared/wire-corpus``.

The template ships copies (it must not need ``shared/`` to generate); this module says where
each one came from, and ``test_template.py`` checks the copies still match their sources.
Model ids are the only change: each becomes the generated package's first model.

Rewrite the template's fixtures after changing :data:`SOURCES` with::

    python -m tests.cookiecutter.corpus_fixtures
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.replay import corpus_fixtures, default_corpus

TEMPLATE = Path(__file__).resolve().parents[2] / "cookiecutter-provider"
SHAPES_DIR = TEMPLATE / "{{cookiecutter.__dist}}" / "_shapes"
MODEL_PLACEHOLDER = "{{ cookiecutter.__model }}"
SLUG_PLACEHOLDER = "{{ cookiecutter.__slug }}"
_MODEL_FIELD = re.compile(r'("model"\s*:\s*)"([^"\\]+)"')
_JINJA = re.compile(r"\{[{%#]")


@dataclass(frozen=True)
class Source:
    """One recorded exchange: the cassette (or httprr trace) and the body extracted from it."""

    original: str
    extracted: str
    recorded_by: str
    interaction: int = 0

    @property
    def api(self) -> str:
        if self.original.startswith("anthropic/"):
            return "Anthropic's Messages API"
        if self.original.startswith("ollama/"):
            return "Ollama's native chat API"
        return "OpenAI's Chat Completions API"


SOURCES: dict[str, dict[str, Source]] = {
    "anthropic-messages": {
        "stream-text": Source(
            "anthropic/messages-stream-text.llm-anthropic.yaml",
            "anthropic/extracted/messages-stream-text.llm-anthropic.i0.sse",
            "simonw/llm-anthropic",
        ),
        "stream-thinking": Source(
            "anthropic/messages-stream-thinking-signature.llm-anthropic.yaml",
            "anthropic/extracted/messages-stream-thinking-signature.llm-anthropic.i0.sse",
            "simonw/llm-anthropic",
        ),
        "stream-tool-use": Source(
            "anthropic/messages-stream-tool-use-input-json-delta.llm-anthropic.yaml",
            "anthropic/extracted/messages-stream-tool-use-input-json-delta.llm-anthropic.i0.sse",
            "simonw/llm-anthropic",
        ),
        "complete-text": Source(
            "anthropic/messages-nonstream.raw-http.httprr",
            "anthropic/extracted/messages-nonstream.raw-http.i0.http",
            "tmc/langchaingo",
        ),
        "error-401": Source(
            "anthropic/error-401-authentication-error.mirascope.yaml",
            "anthropic/extracted/error-401-authentication-error.mirascope.i0.json",
            "Mirascope/mirascope",
        ),
    },
    "openai-chat": {
        "stream-text": Source(
            "openai/chat-stream-include-usage.raw-http.httprr",
            "openai/extracted/chat-stream-include-usage.raw-http.i0.http",
            "tmc/langchaingo",
        ),
        "stream-utf8": Source(
            "openai/chat-stream-utf8-portuguese.fantasy.yaml",
            "openai/extracted/chat-stream-utf8-portuguese.fantasy.i0.sse",
            "charmbracelet/fantasy",
        ),
        "stream-tool-call": Source(
            "openai/chat-stream-tool-call-args-fragmented.fantasy.yaml",
            "openai/extracted/chat-stream-tool-call-args-fragmented.fantasy.i0.sse",
            "charmbracelet/fantasy",
        ),
        "complete-text": Source(
            "openai/chat-nonstream.raw-http.httprr",
            "openai/extracted/chat-nonstream.raw-http.i0.http",
            "tmc/langchaingo",
        ),
        "error-401": Source(
            "openai/error-401-invalid-api-key.mirascope.yaml",
            "openai/extracted/error-401-invalid-api-key.mirascope.i0.json",
            "Mirascope/mirascope",
        ),
    },
    # No Ollama error body was ever recorded (the corpus README says so): none is shipped.
    "ollama-chat": {
        "stream-text": Source(
            "ollama/chat-stream-ndjson-chunked.raw-http.httprr",
            "ollama/extracted/chat-stream-ndjson-chunked.raw-http.i0.http",
            "tmc/langchaingo",
        ),
        "stream-length-utf8": Source(
            "ollama/chat-stream-done-reason-length-utf8.raw-http.httprr",
            "ollama/extracted/chat-stream-done-reason-length-utf8.raw-http.i0.http",
            "tmc/langchaingo",
        ),
        "complete-text": Source(
            "ollama/chat-nonstream.openllmetry.yaml",
            "ollama/extracted/chat-nonstream.openllmetry.i0.json",
            "traceloop/openllmetry",
        ),
    },
}

COMPLETION_PATHS = {
    "anthropic-messages": "/messages",
    "openai-chat": "/chat/completions",
    "ollama-chat": "/api/chat",
}


def build(shape: str, name: str, corpus: Path) -> str:
    """The text of template fixture ``name`` for ``shape``, from the corpus recordings."""
    source = SOURCES[shape][name]
    request, status, headers = _original(corpus / source.original, source.interaction)
    body = _extracted_body(corpus / source.extracted)
    request = json.loads(_rename_models(json.dumps(request, ensure_ascii=False)))
    content_type = headers.get("content-type") or (
        "text/event-stream; charset=utf-8" if request.get("stream") else "application/json"
    )
    fixture: dict[str, Any] = {
        "provider": SLUG_PLACEHOLDER,
        "source": (
            f"{source.api}, recorded by {source.recorded_by} "
            f"(shared/wire-corpus/{source.original}), model ids renamed. Replace it with "
            "recordings of your own API: see the README."
        ),
    }
    if "date" in headers:
        fixture["recorded_at"] = email.utils.parsedate_to_datetime(headers["date"]).isoformat()
    fixture["exchanges"] = [
        {
            "request": {"method": "POST", "path": COMPLETION_PATHS[shape], "body": request},
            "response": {
                "status": status,
                "headers": {"content-type": content_type},
                "body": _rename_models(body),
            },
        }
    ]
    text = json.dumps(fixture, indent=2, ensure_ascii=False) + "\n"
    if _JINJA.search(text.replace(MODEL_PLACEHOLDER, "").replace(SLUG_PLACEHOLDER, "")):
        raise ValueError(f"{shape}/{name}: the recording contains Jinja delimiters")
    return text


def template_path(shape: str, name: str) -> Path:
    return SHAPES_DIR / shape / "fixtures" / f"{name}.fixture.json"


def _rename_models(text: str) -> str:
    return _MODEL_FIELD.sub(lambda m: f'{m.group(1)}"{MODEL_PLACEHOLDER}"', text)


def _extracted_body(path: Path) -> str:
    if path.suffix == ".http":
        (fixture,) = [f for f in corpus_fixtures(path.parent) if f.name == path.name]
        return fixture.exchanges[0].body.decode("utf-8")
    return path.read_text(encoding="utf-8")


def _original(path: Path, interaction: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """(request body, status, response headers) of one exchange of a cassette or trace."""
    if path.suffix == ".httprr":
        return _httprr(path.read_bytes(), interaction)
    item = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"][interaction]
    response = item["response"]
    status = response["status"]
    code = status["code"] if isinstance(status, dict) else response["code"]
    headers = {
        k.lower(): v[0] if isinstance(v, list) else v for k, v in response["headers"].items()
    }
    return json.loads(item["request"]["body"]), int(code), headers


def _httprr(raw: bytes, interaction: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    _, rest = raw.split(b"\n", 1)
    for _ in range(interaction + 1):
        sizes, rest = rest.split(b"\n", 1)
        request_size, response_size = (int(n) for n in sizes.split())
        request, response = rest[:request_size], rest[request_size : request_size + response_size]
        rest = rest[request_size + response_size :]
    request_body = re.split(rb"\r?\n\r?\n", request, maxsplit=1)[1]
    head = re.split(rb"\r?\n\r?\n", response, maxsplit=1)[0].decode("latin-1").splitlines()
    headers = {}
    for line in head[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return json.loads(request_body), int(head[0].split()[1]), headers


def main() -> None:
    corpus = default_corpus()
    if corpus is None:
        raise SystemExit("shared/wire-corpus not found (set PROVARA_WIRE_CORPUS)")
    for shape, names in SOURCES.items():
        for name in names:
            path = template_path(shape, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(build(shape, name, corpus), encoding="utf-8")
            print(path.relative_to(TEMPLATE))


if __name__ == "__main__":
    main()
