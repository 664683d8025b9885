"""Read a config file, validate it and find the line of every error: :func:`load_config`."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reference_gateway.configfile.declared import LOCAL_PROVIDER, GatewayConfig, ProviderConfig
from reference_gateway.configfile.errors import ConfigFileError, Problem
from reference_gateway.configfile.locate import (
    DuplicateKeyError,
    KeyPath,
    line_of,
    toml_lines,
    yaml_document,
)
from reference_gateway.configfile.schema import ConfigSchema, PriceSchema, ProviderSchema

__all__ = ["CONFIG_ENV", "load_config"]

CONFIG_ENV = "PROVARA_CONFIG"
"""The environment variable naming the config file."""

_FORMATS = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}
_TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")  # ProviderSpec's rule
_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be {table}",
    "model_type": "must be {table}",
    "model_attributes_type": "must be {table}",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "missing": "required",
}
_FIELDS = {
    1: sorted(ConfigSchema.model_fields),
    3: {
        "providers": sorted(ProviderSchema.model_fields),
        "prices": sorted(PriceSchema.model_fields),
    },
}


def load_config(file: str | Path) -> GatewayConfig:
    """Read, parse and validate a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config file.

    Raises :class:`ConfigFileError` naming the file, and for each problem its line and
    key. Providers are checked against each other here; against the registry (a name
    also registered by a module, a price or fallback naming an unknown provider) when the
    config is applied.
    """
    name = str(file)
    kind = _FORMATS.get(Path(name).suffix.lower())
    if kind is None:
        raise ConfigFileError(
            name,
            [Problem(None, (), "unknown file type; a config file ends in .toml, .yaml or .yml")],
        )
    try:
        text = Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(name, [Problem(None, (), "no such file")]) from None
    except UnicodeDecodeError:
        raise ConfigFileError(name, [Problem(None, (), "not UTF-8 text")]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigFileError(name, [Problem(None, (), f"cannot be read: {reason}")]) from None
    data, lines = _parse_toml(name, text) if kind == "TOML" else _parse_yaml(name, text)
    return _validate(name, data, lines, table="a table" if kind == "TOML" else "a mapping")


def _parse_toml(name: str, text: str) -> tuple[Any, dict[KeyPath, int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = max(1, len(text.splitlines()))
        if match is not None:
            message = message[: match.start()]
            if match.group(1):
                line = int(match.group(1))
                message += f" (column {match.group(2)})"
        raise ConfigFileError(name, [Problem(line, (), f"invalid TOML: {message}")]) from None
    return data, toml_lines(text)


def _parse_yaml(name: str, text: str) -> tuple[Any, dict[KeyPath, int]]:
    import yaml

    try:
        data, lines = yaml_document(text)
    except DuplicateKeyError as exc:
        raise ConfigFileError(name, [Problem(exc.line, exc.path, str(exc))]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        column = "" if mark is None else f" (column {mark.column + 1})"
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigFileError(
            name, [Problem(line, (), f"invalid YAML: {problem}{column}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(name, [Problem(None, (), f"invalid YAML: {exc}")]) from None
    return ({} if data is None else data), lines


def _validate(name: str, data: Any, lines: Mapping[KeyPath, int], *, table: str) -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigFileError(
            name, [Problem(1, (), "the file must be a mapping of providers, prices and fallbacks")]
        )
    try:
        schema = ConfigSchema.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, lines, table) for error in exc.errors()]
        raise ConfigFileError(name, _in_file_order(problems)) from None
    config = GatewayConfig(
        file=name,
        providers=tuple(_provider(key, entry) for key, entry in schema.providers.items()),
        prices={key: (price.input, price.output) for key, price in schema.prices.items()},
        fallbacks={key: tuple(chain) for key, chain in schema.fallbacks.items()},
        lines=dict(lines),
    )
    problems = _cross_checks(config)
    if problems:
        raise ConfigFileError(name, _in_file_order(problems))
    return config


def _provider(name: str, entry: ProviderSchema) -> ProviderConfig:
    prefix = name.upper().replace("-", "_")
    return ProviderConfig(
        name=name,
        base_url=entry.base_url,
        api_key_env=entry.api_key_env or f"{prefix}_API_KEY",
        base_url_env=entry.base_url_env or f"{prefix}_BASE_URL",
        models=tuple(entry.models),
        streaming=entry.streaming,
        headers=tuple(entry.headers.items()),
    )


def _problem(error: Mapping[str, Any], lines: Mapping[KeyPath, int], table: str) -> Problem:
    path: KeyPath = tuple(part for part in error["loc"] if part != "[key]")
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _FIELDS.get(len(path))
        if isinstance(allowed, dict):
            allowed = allowed.get(str(path[0]))
        message = "unknown key" + (f" (expected one of: {', '.join(allowed)})" if allowed else "")
    elif kind == "greater_than_equal":
        message = "must be >= 0 (USD per 1M tokens)"
    elif kind in _TYPE_MESSAGES:
        message = _TYPE_MESSAGES[kind].replace("{table}", table)
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
    return Problem(line_of(lines, path), path, message)


def _model_ref(value: str) -> str | None:
    """Why ``value`` is not a ``provider/model`` reference, or None when it is one."""
    provider, sep, model = value.partition("/")
    if not sep or not provider or not model.strip():
        return "must name a model as provider/model"
    if not _NAME.match(provider):
        return f"{provider!r} is not a provider name (lower-case letters, digits, '-', '_')"
    return None


def _cross_checks(config: GatewayConfig) -> list[Problem]:
    problems: list[Problem] = []
    for provider in config.providers:
        path: KeyPath = ("providers", provider.name)
        if provider.name == LOCAL_PROVIDER:
            problems.append(config.problem(path, "'local' is the gateway's own provider"))
        elif not _NAME.match(provider.name):
            problems.append(
                config.problem(
                    path,
                    "a provider name is lower-case letters, digits, '-' or '_', starting with a "
                    "letter",
                )
            )
        seen: set[str] = set()
        for index, model in enumerate(provider.models):
            if model in seen:
                problems.append(
                    config.problem((*path, "models", index), f"{model!r} is listed twice")
                )
            seen.add(model)
    for key in config.prices:
        why = _model_ref(key)
        if why is not None:
            problems.append(config.problem(("prices", key), why))
    problems.extend(_fallback_checks(config))
    return problems


def _fallback_checks(config: GatewayConfig) -> list[Problem]:
    problems: list[Problem] = []
    for key, chain in config.fallbacks.items():
        path: KeyPath = ("fallbacks", key)
        why = _model_ref(key)
        if why is not None:
            problems.append(config.problem(path, why))
        if not chain:
            problems.append(config.problem(path, "an empty chain; list the models to try"))
        seen: set[str] = set()
        for index, model in enumerate(chain):
            why = _model_ref(model)
            if why is None and model == key:
                why = f"{model!r} falls back to itself"
            elif why is None and model in seen:
                why = f"{model!r} is listed twice"
            if why is not None:
                problems.append(config.problem((*path, index), why))
            seen.add(model)
    cycle = _cycle(config.fallbacks)
    if cycle is not None:
        problems.append(
            config.problem(("fallbacks", cycle[0]), "a fallback cycle: " + " -> ".join(cycle))
        )
    return problems


def _cycle(fallbacks: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """The first cycle of two or more models through the chains (in file order), if any;
    a model falling back to itself is reported on its own."""
    done: set[str] = set()
    for start in fallbacks:
        found = _visit(start, fallbacks, [], done)
        if found is not None:
            return found
    return None


def _visit(
    model: str, fallbacks: Mapping[str, tuple[str, ...]], stack: list[str], done: set[str]
) -> list[str] | None:
    if model in stack:
        return [*stack[stack.index(model) :], model]
    if model in done:
        return None
    stack.append(model)
    for following in fallbacks.get(model, ()):
        if following != model:
            found = _visit(following, fallbacks, stack, done)
            if found is not None:
                return found
    stack.pop()
    done.add(model)
    return None


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)
