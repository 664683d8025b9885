"""Which request parameters an adapter declares it carries, and which it refuses.

The declaration is data: the ``supported_params`` / ``unsupported_params`` of the
:class:`~conformance.ConformanceTarget` (set from a ``ProviderConformance`` subclass), else
the adapter class's own attributes of those names, else the fields
:class:`~provara_kit.types.ChatRequest` names, which every adapter must carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from conformance.target import ConformanceTarget

__all__ = ["CORE_PARAMS", "ParamDeclaration", "declared_params"]

CORE_PARAMS: Final = frozenset({"max_tokens", "stop", "temperature", "tool_choice", "tools"})
"""The parameters ``ChatRequest`` names: an adapter that declares nothing must carry them."""


@dataclass(frozen=True)
class ParamDeclaration:
    """What an adapter says about request parameters, and where the declaration came from
    (``target``, ``adapter`` or ``default``)."""

    supported: frozenset[str]
    unsupported: frozenset[str]
    source: str

    def to_json(self) -> dict[str, object]:
        return {
            "supported": sorted(self.supported),
            "unsupported": sorted(self.unsupported),
            "source": self.source,
        }


def declared_params(target: ConformanceTarget) -> ParamDeclaration:
    """The declaration the ``request-shape`` check holds ``target``'s adapter to; its
    ``source`` says where the supported set came from."""
    supported, unsupported = target.supported_params, target.unsupported_params
    source = "target"
    if supported is None or unsupported is None:
        probe = target.build(api_key=None, transport=None)
        if supported is None:
            declared = getattr(probe, "supported_params", None)
            supported = CORE_PARAMS if declared is None else frozenset(declared)
            source = "default" if declared is None else "adapter"
        if unsupported is None:
            unsupported = frozenset(getattr(probe, "unsupported_params", None) or ())
    both = sorted(supported & unsupported)
    if both:
        raise ValueError(f"{target.name} declares {both} both supported and unsupported")
    return ParamDeclaration(supported, unsupported, source)
