"""The {{ cookiecutter.provider_name }} adapter, for an Ollama-shaped API (``/api/chat``, NDJSON).

What the wire shares with Ollama's (message, image and tool mapping, ``options``, a stream of
newline-delimited JSON that ends at the ``"done": true`` line, ``{"error": ...}`` lines,
counts that may be missing, tool calls without ids) comes from
:class:`~provara_kit.providers.ollama.OllamaProvider`; this class holds what is
{{ cookiecutter.provider_name }}'s own, in the hooks below.

Status mapping, key scrubbing, empty-chunk filtering, abort and timeout detection, token
fallback, pricing and the final ``_provara`` meta event happen in provara-kit's shared
pipeline (:class:`~provara_kit.providers.base.HTTPProvider`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from provara_kit.providers.ollama import DONE_REASONS as OLLAMA_DONE_REASONS
from provara_kit.providers.ollama import OllamaProvider

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODELS",
    "DONE_REASONS",
    "KEY_HEADER",
    "PROVIDER_NAME",
    "{{ cookiecutter.__class }}",
]

PROVIDER_NAME: Final = "{{ cookiecutter.__slug }}"
DEFAULT_BASE_URL: Final = "{{ cookiecutter.__base_url }}"
API_KEY_ENV: Final = "{{ cookiecutter.__env }}_API_KEY"
BASE_URL_ENV: Final = "{{ cookiecutter.__env }}_BASE_URL"
DEFAULT_MODELS: Final[tuple[str, ...]] = (
{%- for model, _, _ in cookiecutter.models | model_prices %}
    "{{ model }}",
{%- endfor %}
)
"""Served before ``discover_models`` has run; each one needs a price in ``pricing.PRICES``."""

# Decide: the header your API takes the key in. Ollama Cloud and most proxies in front of
# Ollama want "authorization" with "Bearer <key>" (a local server wants none, and gets none
# when no key is set); the dialect's auth_header names the one the suite expects.
KEY_HEADER: Final = "authorization"

# Decide: the request fields your API has no place for, beyond those Ollama's has none for
# (user, metadata, logprobs, logit_bias, a tool_choice other than auto), which the kit
# already refuses. They are refused with UnsupportedParameterError before anything is sent;
# the conformance suite sends every other one and checks it arrives.
_UNSUPPORTED: Final[frozenset[str]] = frozenset()

# Decide: your API's done_reason values, as OpenAI finish reasons (one not listed passes
# unchanged; "stop" after tool calls is always tool_calls); the dialect's finish_reasons
# must agree.
DONE_REASONS: Final[Mapping[str, str]] = OLLAMA_DONE_REASONS


class {{ cookiecutter.__class }}(OllamaProvider):
    """{{ cookiecutter.provider_name }} models through its Ollama-shaped chat API."""

    wire: ClassVar[str] = "{{ cookiecutter.__wire }}"
    # Decide: the model list's path under the base URL (Ollama: GET /api/tags); the
    # dialect's models_path must be the same.
    models_path: ClassVar[str] = "/api/tags"
    supported_params: ClassVar[frozenset[str] | None] = (
        OllamaProvider.supported_params or frozenset()
    ) - _UNSUPPORTED
    unsupported_params: ClassVar[frozenset[str]] = OllamaProvider.unsupported_params | _UNSUPPORTED
    done_reasons: ClassVar[Mapping[str, str]] = DONE_REASONS

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        name: str = PROVIDER_NAME,
        default_models: tuple[str, ...] = DEFAULT_MODELS,
        **options: Any,
    ) -> None:
        """Talk to ``base_url`` with ``api_key``.

        ``options`` go to :class:`OllamaProvider`: ``transport`` replaces the network (a
        scripted upstream in tests), ``stream_timeout`` the idle limit in seconds (default:
        from ``PROVARA_STREAM_TIMEOUT_MS``), ``pricing`` the global price table.
        """
        super().__init__(
            name=name,
            base_url=base_url,
            api_key=api_key,
            default_models=default_models,
            **options,
        )

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}  # the JSON body brings its own content-type
        if self._api_key:
            # Decide: how your API takes the key, and any header every request needs.
            headers[KEY_HEADER] = f"Bearer {self._api_key}"
        return headers

    def _completion_path(self) -> str:
        # Decide: the chat endpoint's path under the base URL (DEFAULT_BASE_URL, or
        # BASE_URL_ENV when set); the dialect's completion_path must be the same.
        return "/api/chat"

    async def discover_models(self) -> list[str] | None:
        # Decide: how your API lists models. This reads Ollama's GET /api/tags
        # (models[].model); return None if your API cannot list them (the default models
        # are served then).
        return await super().discover_models()
