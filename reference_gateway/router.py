"""What ``model: "auto"`` means.

For now :meth:`Router.choose_model` returns the pinned default (``PROVARA_DEFAULT_MODEL``).
It is the one seam the adaptive router replaces: that router will pick per request from
the feedback table, and only for cells with at least ``min_samples`` samples
(``PROVARA_MIN_SAMPLES``); until then the pinned default is its answer too.
"""

from __future__ import annotations

from provara_kit.types import ChatRequest
from reference_gateway.types import Tenant

__all__ = ["AUTO", "Router"]

AUTO = "auto"


class Router:
    """Chooses the model for requests that ask for ``auto``."""

    def __init__(self, *, default_model: str, min_samples: int) -> None:
        self.default_model = default_model
        self.min_samples = min_samples

    def choose_model(self, request: ChatRequest, tenant: Tenant) -> str:
        """The ``provider/model`` to serve ``request`` with: the pinned default."""
        return self.default_model
