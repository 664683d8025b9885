"""{{ cookiecutter.provider_name }}'s wire, as the conformance suite scripts it.

The suite's scripted upstream speaks this dialect to the adapter (errors, faults, dropped
streams), so it must stay faithful to the real API: change it where the API differs from
Ollama's ``/api/chat`` wire, alongside the adapter. The recordings in ``tests/fixtures``
keep both honest; :meth:`read_stream` is the reference reading the ``replay-fixtures`` check
holds the adapter against.

It is registered under the ``provara.dialects`` entry-point group as
``{{ cookiecutter.__wire }}``, the wire name the adapter declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from provara_kit.testing import OllamaChatDialect

__all__ = ["{{ cookiecutter.__dialect_class }}"]


class {{ cookiecutter.__dialect_class }}(OllamaChatDialect):
    """The ``{{ cookiecutter.__wire }}`` wire: Ollama's ``/api/chat``, until it differs.

    Override ``render_error`` and ``render_stream_error`` if the API's error bodies look
    different, ``stream_frames`` and ``read_stream`` if its stream lines do.
    """

    name: ClassVar[str] = "{{ cookiecutter.__wire }}"
    # Decide: the paths your API serves under the base URL (the adapter must agree).
    completion_path: ClassVar[str] = "/api/chat"
    models_path: ClassVar[str] = "/api/tags"
    # Decide: what your API answers a wrong key with (a live 401 shows it).
    invalid_api_key_message: ClassVar[str] = "unauthorized"
    # Decide: the done_reason values your API sends, as OpenAI finish reasons (the
    # adapter's DONE_REASONS must agree).
    finish_reasons: ClassVar[Mapping[str, str]] = OllamaChatDialect.finish_reasons
