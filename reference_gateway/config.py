"""Gateway settings, read from the environment once at start-up.

==============================  =====================================  =====================
variable                        meaning                                default
==============================  =====================================  =====================
``PROVARA_DATABASE_URL``        ``sqlite:///<path>`` (relative path),  ``sqlite:///./provara-gateway.db``
                                ``sqlite:////<absolute path>`` or
                                ``postgresql://user:pw@host:port/db``
``PROVARA_MASTER_KEY``          vault key for stored provider keys     required by ``serve``
``PROVARA_MASTER_KEY_PREVIOUS`` old master keys, during a rotation     none
``PROVARA_STREAM_TIMEOUT_MS``   idle limit of an upstream stream       60000
``PROVARA_MIN_SAMPLES``         feedback samples before the router     5
                                trusts a cell
``PROVARA_DEFAULT_MODEL``       what ``model: "auto"`` resolves to     ``local/echo``
``PROVARA_MAX_BODY_BYTES``      largest request body accepted          4194304 (4 MiB)
``PROVARA_KEEPALIVE_MS``        SSE keep-alive interval while waiting  5000
                                for a slow first token
``PROVARA_USAGE_FLUSH_MS``      usage rows are written every ...       250
``PROVARA_USAGE_FLUSH_ROWS``    ... or as soon as this many queue up   500
``PROVARA_USAGE_DURABLE``       answer a completion only once its      1
                                usage row is committed (0: write in
                                the background, faster, and a crash
                                loses the rows not yet written)
``PROVARA_SYNC_MS``             how often each process reads the       250
                                changes other processes made (keys,
                                tenants, feedback)
``PROVARA_LOCAL_UPSTREAM``      serve the keyless ``local`` provider   1
``PROVARA_DISCOVER_MODELS``     ask providers for models at start-up   1
``PROVARA_FAST_TRANSPORT``      providers' HTTP through the gateway's  1
                                lean HTTP/1.1 transport (0: httpx's)
``PROVARA_PROVIDER_MODULES``    comma-separated modules imported at    none
                                start-up (before anything is created;
                                the working directory is importable);
                                each registers providers
                                (``register_openai_compatible`` ...)
``PROVARA_CONFIG``              a TOML or YAML file declaring          none
                                providers, models, prices and
                                fallback chains (registered after the
                                provider modules)
``PROVARA_ROUTER_COST_WEIGHT``  quality points one USD of expected     10
                                cost outweighs, for ``auto``
``PROVARA_ROUTER_PRIOR_WEIGHT`` the most samples other tenants'        PROVARA_MIN_SAMPLES
                                feedback counts for in a tenant's
                                ``auto`` posteriors (0: none)
``PROVARA_ROUTER_SEED``         seed of the router's random source     none (random)
``PROVARA_JUDGE_RATE``          share of completions (0..1) the LLM    0
                                judge scores
``PROVARA_JUDGE_MODEL``         ``provider/model`` the judge asks      the default model
``PROVARA_JUDGE_QUEUE``         completions waiting for the judge      100
                                (more are not judged)
``PROVARA_RETRIES``             retries per model of a request that    2
                                failed before its first byte (429,
                                5xx, 529, no connection, no first
                                token in time)
``PROVARA_RETRY_BUDGET_MS``     a retry's wait must end within this    10000
                                many ms of the request's start (else
                                the next fallback is tried at once)
``PROVARA_RETRY_BACKOFF_MS``    first retry's wait without a           250
                                ``Retry-After`` (doubles, jittered,
                                at most 8 s)
``PROVARA_FIRST_TOKEN_TIMEOUT_MS`` a streamed attempt with a retry or  0 (no limit)
                                fallback left is abandoned after this
                                long without a first event
``PROVARA_METRICS``             count requests for ``GET /metrics``    1
                                (Prometheus; an operator token)
``PROVARA_METRICS_BIND``        also serve the metrics, without        none
                                authentication, on this
                                ``host:port`` (e.g. 127.0.0.1:9464)
``PROVARA_REQUEST_LOG``         one line per chat request on the       ``json``
                                ``reference_gateway.requests`` logger:
                                ``json``, ``text`` or ``off``
``PROVARA_LOG_PROMPTS``         put the request's messages in that     0
                                line (never on by default)
==============================  =====================================  =====================

Operator default provider keys are the registry's ``<NAME>_API_KEY`` variables (and
``<NAME>_BASE_URL`` overrides), read from the same environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provara_kit.errors import ConfigurationError
from provara_kit.registry import REGISTRY, Registry, import_provider_modules, provider_modules
from provara_kit.vault import MASTER_KEY_ENV, PREVIOUS_KEYS_ENV, Vault
from reference_gateway.configfile import CONFIG_ENV, GatewayConfig, load_config
from reference_gateway.store.engine import is_sqlite, sqlalchemy_url, sqlite_path

__all__ = [
    "DEFAULT_DATABASE_PATH",
    "DEFAULT_DATABASE_URL",
    "REQUEST_LOG_FORMATS",
    "Settings",
    "parse_bind",
    "sqlite_path",
]

DEFAULT_DATABASE_PATH = "./provara-gateway.db"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_DATABASE_PATH}"


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(
    environ: Mapping[str, str], name: str, default: float, *, low: float, high: float
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, got {raw}")
    return value


REQUEST_LOG_FORMATS = ("json", "text", "off")


def parse_bind(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) as ``(host, port)``; a
    :class:`ConfigurationError` that says what is wrong otherwise."""
    host, colon, port = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"PROVARA_METRICS_BIND must be host:port (for example 127.0.0.1:9464), got {value!r}"
        )
    return host, int(port)


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be 1 or 0 (true/false), got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the gateway is configured with; :meth:`from_env` reads the environment.

    ``environ`` is where operator default provider keys (``<NAME>_API_KEY``) and base-URL
    overrides come from; it defaults to the process environment. Secrets are kept out of
    ``repr``.
    """

    database_url: str = DEFAULT_DATABASE_URL
    master_key: str = field(default="", repr=False)
    master_key_previous: str = field(default="", repr=False)
    stream_timeout_ms: int = 60_000
    min_samples: int = 5
    default_model: str = "local/echo"
    max_body_bytes: int = 4 * 1024 * 1024
    keepalive_ms: int = 5_000
    usage_flush_ms: int = 250
    usage_flush_rows: int = 500
    usage_durable: bool = True
    sync_ms: int = 250
    local_upstream: bool = True
    discover_models: bool = True
    fast_transport: bool = True
    provider_modules: tuple[str, ...] = ()
    router_cost_weight: float = 10.0
    router_prior_weight: float | None = None
    router_seed: int | None = None
    judge_rate: float = 0.0
    judge_model: str = ""
    judge_queue: int = 100
    metrics: bool = True
    metrics_bind: str | None = None
    request_log: str = "json"
    log_prompts: bool = False
    retries: int = 2
    retry_budget_ms: int = 10_000
    retry_backoff_ms: int = 250
    first_token_timeout_ms: int = 0
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """``provider/model`` -> the models tried after it, in order, when it fails before
    its first byte."""
    config: GatewayConfig | None = field(default=None, repr=False)
    """The ``PROVARA_CONFIG`` file, validated; :meth:`load_provider_modules` registers it."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def __post_init__(self) -> None:
        sqlalchemy_url(self.database_url)
        for name in (
            "stream_timeout_ms",
            "min_samples",
            "max_body_bytes",
            "keepalive_ms",
            "sync_ms",
        ):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"Settings.{name} must be positive")
        if self.usage_flush_ms < 1 or self.usage_flush_rows < 1:
            raise ConfigurationError("usage flush interval and batch size must be positive")
        if not 0 <= self.judge_rate <= 1:
            raise ConfigurationError("PROVARA_JUDGE_RATE must be between 0 and 1")
        if self.router_cost_weight < 0 or self.judge_queue < 1:
            raise ConfigurationError(
                "PROVARA_ROUTER_COST_WEIGHT must be >= 0 and PROVARA_JUDGE_QUEUE positive"
            )
        weight = self.router_prior_weight
        if weight is not None and not 0 <= weight <= 1e9:
            raise ConfigurationError(
                f"PROVARA_ROUTER_PRIOR_WEIGHT must be a number of samples from 0 to 1e9, "
                f"got {weight}"
            )
        if self.request_log not in REQUEST_LOG_FORMATS:
            raise ConfigurationError(
                f"PROVARA_REQUEST_LOG must be one of {', '.join(REQUEST_LOG_FORMATS)}, "
                f"got {self.request_log!r}"
            )
        if self.metrics_bind is not None:
            parse_bind(self.metrics_bind)
        if min(self.retries, self.retry_budget_ms, self.first_token_timeout_ms) < 0:
            raise ConfigurationError(
                "PROVARA_RETRIES, PROVARA_RETRY_BUDGET_MS and PROVARA_FIRST_TOKEN_TIMEOUT_MS "
                "must be >= 0"
            )
        if self.retry_backoff_ms < 1:
            raise ConfigurationError("PROVARA_RETRY_BACKOFF_MS must be positive")
        if self.judge_model == "auto":
            raise ConfigurationError("PROVARA_JUDGE_MODEL must name a model, not 'auto'")
        if not self.default_model or self.default_model == "auto":
            raise ConfigurationError(
                "PROVARA_DEFAULT_MODEL must name a model (provider/model), not 'auto'"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> Settings:
        """Settings from ``environ``; keyword ``overrides`` win (the CLI's options)."""
        values: dict[str, object] = {
            "database_url": environ.get("PROVARA_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
            "master_key": environ.get(MASTER_KEY_ENV, ""),
            "master_key_previous": environ.get(PREVIOUS_KEYS_ENV, ""),
            "stream_timeout_ms": _int(environ, "PROVARA_STREAM_TIMEOUT_MS", 60_000),
            "min_samples": _int(environ, "PROVARA_MIN_SAMPLES", 5),
            "default_model": environ.get("PROVARA_DEFAULT_MODEL", "").strip() or "local/echo",
            "max_body_bytes": _int(environ, "PROVARA_MAX_BODY_BYTES", 4 * 1024 * 1024),
            "keepalive_ms": _int(environ, "PROVARA_KEEPALIVE_MS", 5_000),
            "usage_flush_ms": _int(environ, "PROVARA_USAGE_FLUSH_MS", 250),
            "usage_flush_rows": _int(environ, "PROVARA_USAGE_FLUSH_ROWS", 500),
            "usage_durable": _flag(environ, "PROVARA_USAGE_DURABLE", True),
            "sync_ms": _int(environ, "PROVARA_SYNC_MS", 250),
            "local_upstream": _flag(environ, "PROVARA_LOCAL_UPSTREAM", True),
            "discover_models": _flag(environ, "PROVARA_DISCOVER_MODELS", True),
            "fast_transport": _flag(environ, "PROVARA_FAST_TRANSPORT", True),
            "provider_modules": provider_modules(environ),
            "router_cost_weight": _float(
                environ, "PROVARA_ROUTER_COST_WEIGHT", 10.0, low=0, high=1e9
            ),
            "router_prior_weight": (
                _float(environ, "PROVARA_ROUTER_PRIOR_WEIGHT", 0.0, low=0, high=1e9)
                if environ.get("PROVARA_ROUTER_PRIOR_WEIGHT", "").strip()
                else None
            ),
            "router_seed": (
                _int(environ, "PROVARA_ROUTER_SEED", 0, minimum=0)
                if environ.get("PROVARA_ROUTER_SEED", "").strip()
                else None
            ),
            "judge_rate": _float(environ, "PROVARA_JUDGE_RATE", 0.0, low=0, high=1),
            "judge_model": environ.get("PROVARA_JUDGE_MODEL", "").strip(),
            "judge_queue": _int(environ, "PROVARA_JUDGE_QUEUE", 100),
            "retries": _int(environ, "PROVARA_RETRIES", 2, minimum=0),
            "retry_budget_ms": _int(environ, "PROVARA_RETRY_BUDGET_MS", 10_000, minimum=0),
            "retry_backoff_ms": _int(environ, "PROVARA_RETRY_BACKOFF_MS", 250),
            "first_token_timeout_ms": _int(environ, "PROVARA_FIRST_TOKEN_TIMEOUT_MS", 0, minimum=0),
            "metrics": _flag(environ, "PROVARA_METRICS", True),
            "metrics_bind": environ.get("PROVARA_METRICS_BIND", "").strip() or None,
            "request_log": environ.get("PROVARA_REQUEST_LOG", "").strip().lower() or "json",
            "log_prompts": _flag(environ, "PROVARA_LOG_PROMPTS", False),
            "environ": environ,
        }
        config_file = environ.get(CONFIG_ENV, "").strip()
        if config_file:
            config = load_config(config_file)
            values.update(config=config, fallbacks=dict(config.fallbacks))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is SQLite (else PostgreSQL)."""
        return is_sqlite(self.database_url)

    @property
    def database_path(self) -> str:
        """The SQLite file (or ``:memory:``); a :class:`ConfigurationError` on PostgreSQL."""
        return sqlite_path(self.database_url)

    @property
    def stream_timeout(self) -> float:
        """The idle stream limit in seconds, as providers take it."""
        return self.stream_timeout_ms / 1000

    @property
    def judge(self) -> str:
        """The judge's ``provider/model`` (``PROVARA_JUDGE_MODEL``, else the default)."""
        return self.judge_model or self.default_model

    def vault(self) -> Vault:
        """The key vault; raises :class:`~provara_kit.errors.MasterKeyError` (a clear
        message, never the key) when ``PROVARA_MASTER_KEY`` is missing or unusable."""
        return Vault.from_env(
            {MASTER_KEY_ENV: self.master_key, PREVIOUS_KEYS_ENV: self.master_key_previous}
        )

    def load_provider_modules(self, registry: Registry | None = None) -> None:
        """Import each ``PROVARA_PROVIDER_MODULES`` module so its registrations run (the
        working directory is importable), then register the ``PROVARA_CONFIG`` file's
        providers and prices into ``registry`` (default: the process-wide one). A module
        that cannot be imported, or a file that names an unknown provider or one a module
        registered too, raises a one-line :class:`~provara_kit.errors.ConfigurationError`."""
        import_provider_modules(self.provider_modules)
        if self.config is not None:
            self.config.apply(REGISTRY if registry is None else registry, local=self.local_upstream)

    def ensure_database_dir(self) -> None:
        """Create the database file's directory if it does not exist."""
        if not self.is_sqlite:
            return
        path = self.database_path
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
