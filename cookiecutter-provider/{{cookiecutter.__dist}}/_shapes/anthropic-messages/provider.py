"""The {{ cookiecutter.provider_name }} adapter, for an Anthropic Messages-shaped API.

What the wire shares with Anthropic's (message, tool and image mapping, cache-aware usage,
stream events that end at ``message_stop``, errors inside a 200 stream) comes from
:class:`~provara_kit.providers.anthropic.AnthropicProvider`; this class holds what is
{{ cookiecutter.provider_name }}'s own, in the hooks below.

Status mapping, key scrubbing, empty-chunk filtering, abort and timeout detection, token
fallback, pricing and the final ``_provara`` meta event happen in provara-kit's shared
pipeline (:class:`~provara_kit.providers.base.HTTPProvider`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from provara_kit.providers.anthropic import AnthropicProvider

__all__ = [
    "API_KEY_ENV",
    "API_VERSION",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODELS",
    "KEY_HEADER",
    "PROVIDER_NAME",
    "STOP_REASONS",
    "VERSION_HEADER",
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

# Decide: the version header your API wants, if any (Anthropic's anthropic-version is
# "2023-06-01"); the dialect's version_headers must name the same.
VERSION_HEADER: Final = "anthropic-version"
API_VERSION: Final = "2023-06-01"

# Decide: the header your API takes the key in. Anthropic's wire sends it as x-api-key;
# many Messages-shaped endpoints want "authorization" with "Bearer <key>" instead (change
# _headers below then); the dialect's auth_header names the one the suite expects.
KEY_HEADER: Final = "x-api-key"

# Decide: what to send as max_tokens when a request names none (Messages-shaped APIs
# require it).
DEFAULT_MAX_TOKENS: Final = 4096

# Decide: the request fields Anthropic's API takes that yours has no equivalent for (top_k,
# metadata, ...). They are refused with UnsupportedParameterError before anything is sent,
# like those no Messages API expresses (seed, response_format, penalties, logprobs), which
# the kit already refuses; the conformance suite sends every other one and checks it arrives.
_UNSUPPORTED: Final[frozenset[str]] = frozenset()

# Decide: your API's stop reasons, as OpenAI finish reasons (one not listed passes
# unchanged); the dialect's finish_reasons must agree.
STOP_REASONS: Final[Mapping[str, str]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class {{ cookiecutter.__class }}(AnthropicProvider):
    """{{ cookiecutter.provider_name }} models through its Messages-shaped API."""

    wire: ClassVar[str] = "{{ cookiecutter.__wire }}"
    supported_params: ClassVar[frozenset[str] | None] = (
        AnthropicProvider.supported_params or frozenset()
    ) - _UNSUPPORTED
    unsupported_params: ClassVar[frozenset[str]] = (
        AnthropicProvider.unsupported_params | _UNSUPPORTED
    )
    default_max_tokens: ClassVar[int] = DEFAULT_MAX_TOKENS
    stop_reasons: ClassVar[Mapping[str, str]] = STOP_REASONS

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

        ``options`` go to :class:`AnthropicProvider`: ``transport`` replaces the
        network (a scripted upstream in tests), ``stream_timeout`` the idle limit in seconds
        (default: from ``PROVARA_STREAM_TIMEOUT_MS``), ``pricing`` the global price table.
        """
        super().__init__(
            name=name,
            base_url=base_url,
            api_key=api_key,
            default_models=default_models,
            **options,
        )

    def _headers(self) -> dict[str, str]:
        # The JSON body brings its own content-type.
        headers = {VERSION_HEADER: API_VERSION}
        if self._api_key:
            headers[KEY_HEADER] = self._api_key
        return headers

    def _completion_path(self) -> str:
        # Decide: the Messages endpoint's path under the base URL (DEFAULT_BASE_URL, or
        # BASE_URL_ENV when set); the dialect's completion_path must be the same.
        return "/messages"

    async def discover_models(self) -> list[str] | None:
        # Decide: how your API lists models. This follows Anthropic's GET /models pages
        # (has_more, last_id, after_id); return None if your API cannot list them (the
        # default models are served then).
        return await super().discover_models()
