"""Provara's reference gateway: a small, fast OpenAI-compatible gateway built on the SDK.

Run it with ``provara-gateway serve`` (or ``nox -s gateway``); embed it with
:func:`create_app`.
"""

from __future__ import annotations

from reference_gateway.app import Gateway, create_app
from reference_gateway.config import Settings

__all__ = ["Gateway", "Settings", "create_app"]
