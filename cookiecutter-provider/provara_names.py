"""Every name the template derives from the provider's display name, and the input rules.

Loaded by cookiecutter as a Jinja extension (``_extensions`` in ``cookiecutter.json``): the
filters below turn the answers into names, and :func:`problems` is what the pre-generation
hook refuses. The filters never raise, so a bad answer reaches the hook and gets a clear
message instead of a traceback.
"""

from __future__ import annotations

import logging
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment
from jinja2.ext import Extension

WIRE_SHAPES: dict[str, str] = {
    "anthropic-messages": "messages",
    "openai-chat": "chat",
    "ollama-chat": "ndjson",
}
"""Starting wire shape -> suffix of the adapter's own wire name (``<slug>-messages``)."""

LICENSES = ("Apache-2.0", "MIT", "Proprietary")

BUILTIN_PROVIDERS = frozenset(
    {
        "anthropic",
        "bedrock",
        "deepseek",
        "fireworks",
        "gemini",
        "groq",
        "mistral",
        "ollama",
        "openai",
        "openrouter",
        "perplexity",
        "together",
        "xai",
        "zai",
    }
)
"""Providers provara-kit registers itself; an adapter package named so would replace one."""

# Lengths that keep every generated line within 100 characters.
MAX_NAME = 40
MAX_SLUG = 24
MAX_MODEL_ID = 64
MAX_PRICE = 9
_SLUG = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_NAME_PUNCTUATION = frozenset(" .-_&+'()")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
_PRICE = re.compile(r"^\d+(\.\d+)?$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*$")


def _words(display_name: str) -> list[str]:
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    return re.findall(r"[A-Za-z0-9]+", ascii_name)


def provider_slug(display_name: str) -> str:
    """``Acme AI`` -> ``acme-ai``: the provider name, distribution and wire name stem."""
    return "-".join(word.lower() for word in _words(display_name))


def provider_camel(display_name: str) -> str:
    """``Acme AI`` -> ``AcmeAI``, ``deep infra`` -> ``DeepInfra``: the class name stem.

    A word typed all lower-case is capitalized; any other keeps its capitals.
    """
    return "".join(
        w.capitalize() if w.islower() else w[0].upper() + w[1:] for w in _words(display_name)
    )


def wire_suffix(shape: str) -> str:
    return WIRE_SHAPES.get(shape, "custom")


def base_url(url: str) -> str:
    """The base URL as the adapter stores it: no surrounding blanks, no trailing slash."""
    return url.strip().rstrip("/")


def model_prices(text: str) -> list[tuple[str, str, str]]:
    """``a=3.00/15.00,b=0.25/1.25`` -> ``[("a", "3.00", "15.00"), ...]``; ``[]`` if malformed."""
    try:
        return parse_models(text)
    except ValueError:
        return []


def model_ids(text: str) -> list[str]:
    return [model for model, _, _ in model_prices(text)]


def first_model(text: str) -> str:
    """The first model id (``""`` if the list is malformed): fixtures are recorded with it."""
    return next(iter(model_ids(text)), "")


def parse_models(text: str) -> list[tuple[str, str, str]]:
    """The model list, or ValueError saying what is wrong with it."""
    rows: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for number, item in enumerate(text.split(","), 1):
        entry = item.strip()
        model, sep, prices = entry.partition("=")
        model, prices = model.strip(), prices.strip()
        price_in, slash, price_out = prices.partition("/")
        price_in, price_out = price_in.strip(), price_out.strip()
        if not entry:
            raise ValueError(f"entry {number} is empty (a stray comma?)")
        if not sep or not slash:
            raise ValueError(f"entry {number} ({entry!r}) is not id=input/output")
        if not _MODEL_ID.match(model):
            raise ValueError(
                f"model id {model!r} may use only letters, digits and . _ : / @ + -, "
                "starting with a letter or digit"
            )
        if len(model) > MAX_MODEL_ID:
            raise ValueError(f"model id {model!r} is longer than {MAX_MODEL_ID} characters")
        for side, price in (("input", price_in), ("output", price_out)):
            if not _PRICE.match(price) or len(price) > MAX_PRICE:
                raise ValueError(
                    f"{side} price {price!r} of {model} must be a plain non-negative number "
                    f"of USD per 1M tokens, like 3 or 0.25 (at most {MAX_PRICE} characters)"
                )
        if model in seen:
            raise ValueError(f"model {model} is listed twice")
        seen.add(model)
        rows.append((model, price_in, price_out))
    return rows


def problems(answers: Mapping[str, Any]) -> list[str]:
    """Everything wrong with the answers, one sentence each (empty: generate)."""
    found: list[str] = []
    name = str(answers.get("provider_name", ""))
    slug = provider_slug(name)
    if not name.strip():
        found.append("provider_name is empty: give the provider's display name, e.g. 'Acme AI'")
    elif len(name) > MAX_NAME:
        found.append(f"provider_name {name!r} is longer than {MAX_NAME} characters")
    elif any(not (c.isalnum() or c in _NAME_PUNCTUATION) for c in name):
        found.append(
            f"provider_name {name!r} may use only letters, digits, spaces and . - _ & + ' ( )"
        )
    elif not slug:
        found.append(f"provider_name {name!r} has no ASCII letters to derive a package name from")
    elif not _SLUG.match(slug):
        found.append(
            f"provider_name {name!r} gives the name {slug!r}, which must start with a letter"
        )
    elif len(slug) > MAX_SLUG:
        found.append(
            f"provider_name {name!r} gives the name {slug!r}, longer than {MAX_SLUG} characters"
        )
    elif slug in BUILTIN_PROVIDERS:
        found.append(
            f"{slug!r} is a provider provara-kit registers itself; an adapter package with that "
            f"name would replace it. Pick another name (e.g. '{name} Native')"
        )

    url = base_url(str(answers.get("base_url", "")))
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, host, port_ok = None, "", False
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not _HOST.match(host)
        or not port_ok
    ):
        found.append(f"base_url {url!r} must be an http:// or https:// URL with a host name")
    elif parts.query or parts.fragment or parts.username or parts.password:
        found.append(f"base_url {url!r} must not carry a query, a fragment or credentials")
    elif any(c.isspace() or c in "\"'\\<>{}" for c in url):
        found.append(f"base_url {url!r} contains blanks or quotes")

    shape = answers.get("wire_shape")
    if shape not in WIRE_SHAPES:
        found.append(f"wire_shape {shape!r} must be one of: {', '.join(WIRE_SHAPES)}")

    try:
        parse_models(str(answers.get("models", "")))
    except ValueError as exc:
        found.append(f"models: {exc}. Example: acme-large=3.00/15.00,acme-small=0.25/1.25")

    author = str(answers.get("author_name", ""))
    if not author.strip():
        found.append("author_name is empty")
    elif any(c in '"\\{}' or not c.isprintable() for c in author):
        found.append(f"author_name {author!r} must not contain quotes, backslashes or braces")

    if answers.get("license") not in LICENSES:
        found.append(f"license {answers.get('license')!r} must be one of: {', '.join(LICENSES)}")
    return found


def kit_source() -> str:
    """The provara-kit checkout this template sits in (its absolute path), or ``""`` when
    the template was copied out of one: where generated packages install the kit from."""
    root = Path(__file__).resolve().parent.parent
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    return str(root) if project.get("project", {}).get("name") == "provara-kit" else ""


class _RefusalIsNotACrash(logging.Filter):
    """Drop the traceback cookiecutter logs when the pre-generation hook refuses the answers:
    the hook has already said what is wrong, and nothing crashed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and type(record.exc_info[1]).__name__ == "FailedHookException":
            record.exc_info = None
            record.exc_text = None
        return True


_hooks_logger = logging.getLogger("cookiecutter.hooks")
if not any(isinstance(f, _RefusalIsNotACrash) for f in _hooks_logger.filters):
    _hooks_logger.addFilter(_RefusalIsNotACrash())


class ProvaraNames(Extension):
    """The template's filters: names derived from the answers, and the input rules."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters.update(
            provider_slug=provider_slug,
            provider_camel=provider_camel,
            wire_suffix=wire_suffix,
            base_url=base_url,
            model_prices=model_prices,
            model_ids=model_ids,
            first_model=first_model,
            template_problems=problems,
        )
        environment.globals.update(kit_source=kit_source)
