"""The {{ cookiecutter.provider_name }} adapter, for an OpenAI Chat Completions-shaped API.

What the wire shares with OpenAI's (message and tool mapping, usage chunks, streams that end
without ``[DONE]``, errors inside a 200 stream) comes from
:class:`~provara_kit.providers.openai_compatible.OpenAICompatibleProvider`; this class holds
what is {{ cookiecutter.provider_name }}'s own, in the hooks below.

Status mapping, key scrubbing, empty-chunk filtering, abort and timeout detection, token
fallback, pricing and the final ``_provara`` meta event happen in provara-kit's shared
pipeline (:class:`~provara_kit.providers.base.HTTPProvider`), not here.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from provara_kit.providers.openai_compatible import OpenAICompatibleProvider

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODELS",
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

# Decide: the header your API takes the key in (OpenAI's wire: "authorization", with
# "Bearer <key>"); the dialect's auth_header names the one the suite expects.
KEY_HEADER: Final = "authorization"

# Decide: whether your API honours stream_options.include_usage (usage on the last chunk).
# Without it, streamed token counts are estimated from the text and marked so.
INCLUDE_USAGE: Final = True

# Decide: the request fields OpenAI clients send that your API has no equivalent for. They
# are refused with UnsupportedParameterError before anything is sent (dropping one silently
# would change the answer); the conformance suite sends every other one and checks it
# arrives.
_UNSUPPORTED: Final[frozenset[str]] = frozenset()


class {{ cookiecutter.__class }}(OpenAICompatibleProvider):
    """{{ cookiecutter.provider_name }} models through its Chat Completions-shaped API."""

    wire: ClassVar[str] = "{{ cookiecutter.__wire }}"
    supported_params: ClassVar[frozenset[str] | None] = (
        OpenAICompatibleProvider.supported_params or frozenset()
    ) - _UNSUPPORTED
    unsupported_params: ClassVar[frozenset[str]] = _UNSUPPORTED
    include_usage = INCLUDE_USAGE

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

        ``options`` go to :class:`OpenAICompatibleProvider`: ``transport`` replaces the
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
        headers: dict[str, str] = {}  # the JSON body brings its own content-type
        if self._api_key:
            # Decide: how your API takes the key, and any header every request needs (an
            # API version, an organization id). OpenAI's wire sends a Bearer token.
            headers[KEY_HEADER] = f"Bearer {self._api_key}"
        return headers

    def _completion_path(self) -> str:
        return "/chat/completions"

    async def discover_models(self) -> list[str] | None:
        # Decide: how your API lists models. This reads OpenAI's GET /models; return None
        # if your API cannot list them (the default models are served then).
        return await super().discover_models()
