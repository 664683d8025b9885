"""The path-A module that ``config_files/gateway.toml`` and ``gateway.yaml`` declare as
files; ``test_config_file.py`` checks the gateway serves all three the same."""

from provara_kit.pricing import MODEL_PRICING
from provara_kit.registry import register_openai_compatible

register_openai_compatible(
    name="acme",
    api_key_env="ACME_API_KEY",
    base_url_env="ACME_BASE_URL",
    default_base_url="https://api.acme.example/v1",
    default_models=("acme-large", "acme-small"),
    extra_headers={"X-Acme-Project": "gateway"},
    streaming=True,
)
MODEL_PRICING["acme/acme-large"] = (0.50, 1.50)
MODEL_PRICING["acme/acme-small"] = (0.05, 0.20)
