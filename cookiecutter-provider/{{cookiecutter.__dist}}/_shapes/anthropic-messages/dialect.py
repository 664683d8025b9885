"""{{ cookiecutter.provider_name }}'s wire, as the conformance suite scripts it.

The suite's scripted upstream speaks this dialect to the adapter (errors, faults, dropped
streams), so it must stay faithful to the real API: change it where the API differs from
Anthropic's Messages wire, alongside the adapter. The recordings in ``tests/fixtures`` keep
both honest; :meth:`read_stream` is the reference reading the ``replay-fixtures`` check
holds the adapter against.

It is registered under the ``provara.dialects`` entry-point group as
``{{ cookiecutter.__wire }}``, the wire name the adapter declares.
"""

from __future__ import annotations

from typing import ClassVar

from provara_kit.testing import AnthropicMessagesDialect

__all__ = ["{{ cookiecutter.__dialect_class }}"]


class {{ cookiecutter.__dialect_class }}(AnthropicMessagesDialect):
    """The ``{{ cookiecutter.__wire }}`` wire: Anthropic's Messages API, until it differs.

    Override ``render_error`` and ``render_stream_error`` if the API's error bodies look
    different, ``stream_frames`` and ``read_stream`` if its stream events do.
    """

    name: ClassVar[str] = "{{ cookiecutter.__wire }}"
    # Decide: the paths your API serves under the base URL (the adapter must agree).
    completion_path: ClassVar[str] = "/messages"
    models_path: ClassVar[str] = "/models"
    # Decide: what your API answers a wrong key with (a live 401 shows it).
    invalid_api_key_message: ClassVar[str] = "invalid x-api-key"
