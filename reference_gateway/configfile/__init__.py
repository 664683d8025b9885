"""The gateway's config file (``PROVARA_CONFIG``): providers, prices and fallback chains
declared in TOML or YAML instead of a path-A Python module.

::

    [providers.acme]
    base_url = "https://api.acme.example/v1"   # api_key_env defaults to ACME_API_KEY
    models = ["acme-large"]

    [prices]
    "acme/acme-large" = { input = 0.50, output = 1.50 }   # USD per 1M tokens

    [fallbacks]
    "acme/acme-large" = ["openai/gpt-4o-mini", "local/echo"]

:func:`load_config` validates the file (every error names the file, the line and the
key); :meth:`GatewayConfig.apply` registers it, after the provider modules.
"""

from reference_gateway.configfile.declared import GatewayConfig, ProviderConfig
from reference_gateway.configfile.errors import ConfigFileError, Problem
from reference_gateway.configfile.load import CONFIG_ENV, load_config

__all__ = [
    "CONFIG_ENV",
    "ConfigFileError",
    "GatewayConfig",
    "Problem",
    "ProviderConfig",
    "load_config",
]
