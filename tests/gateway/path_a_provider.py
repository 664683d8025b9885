"""An operator's path-A module: one registration call plus pricing rows.

Imported by the gateway through ``PROVARA_PROVIDER_MODULES`` in ``test_path_a.py``.
"""

from provara_kit.pricing import MODEL_PRICING
from provara_kit.registry import register_openai_compatible

register_openai_compatible(
    name="pathacme",
    api_key_env="PATHACME_API_KEY",
    base_url_env="PATHACME_BASE_URL",
    default_base_url="https://api.pathacme.example/v1",
    default_models=("pathacme-large",),
)
MODEL_PRICING["pathacme/pathacme-large"] = (0.5, 1.5)
