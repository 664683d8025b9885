"""``provara-gateway``: run the gateway and manage its tenants.

::

    provara-gateway serve [--host H] [--port P] [--database URL|PATH] [--dev] [--workers N]
    provara-gateway tenants create NAME [--database ...]   # prints the token, once
    provara-gateway tenants list [--database ...]
    provara-gateway tenants revoke NAME [--database ...]   # the token stops working
    provara-gateway operators create NAME [--database ...] # an operator token, shown once
    provara-gateway operators list [--database ...]
    provara-gateway operators revoke NAME [--database ...] # the operator token stops working
    provara-gateway vault rotate [--database ...]          # re-encrypt keys, new master key
    provara-gateway db upgrade [--database ...]            # migrate the schema (serve does too)
    provara-gateway config check [FILE]                    # validate PROVARA_CONFIG (or FILE)

``--dev`` is for a first run on a laptop (``nox -s gateway`` uses it): without
``PROVARA_MASTER_KEY`` it uses a development key kept next to the database (created on
first use, and it says so), and on an empty database it creates a tenant ``dev`` and
prints its token. Without ``--dev``, ``serve`` refuses to start with no master key.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from provara_kit.errors import ConfigurationError, MasterKeyError, VaultError
from provara_kit.vault import MASTER_KEY_ENV, generate_master_key
from reference_gateway.auth import create_tenant
from reference_gateway.config import DEFAULT_DATABASE_PATH, Settings
from reference_gateway.configfile import CONFIG_ENV, ConfigFileError
from reference_gateway.operators import create_operator
from reference_gateway.store import (
    SchemaTooNewError,
    connect,
    create_engine,
    current_revision,
    is_sqlite,
    migrate,
    redacted,
    sqlite_path,
)
from reference_gateway.store.keys import all_ciphertexts, write_ciphertexts
from reference_gateway.store.operators import (
    OperatorExistsError,
    list_operators,
    revoke_operator,
)
from reference_gateway.store.tenants import TenantExistsError, list_tenants, revoke_tenant

__all__ = ["dev_key_path", "main", "worker_app"]


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def dev_key_path(database_url: str) -> Path:
    """Where ``--dev`` keeps its master key: beside a SQLite database (``*.dev-key``), in
    the working directory for PostgreSQL or an in-memory database."""
    if not is_sqlite(database_url) or sqlite_path(database_url) == ":memory:":
        return Path("provara-gateway.dev-key")
    return Path(sqlite_path(database_url)).expanduser().with_suffix(".dev-key")


def _dev_master_key(database_url: str) -> str:
    path = dev_key_path(database_url)
    if path.exists():
        _say(f"dev mode: {MASTER_KEY_ENV} is not set; using the development key in {path}")
        return path.read_text(encoding="ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_master_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key + "\n")
    _say(
        f"dev mode: {MASTER_KEY_ENV} is not set; generated a development master key in "
        f"{path} (keep it: stored provider keys are encrypted under it; never use it in "
        "production)"
    )
    return key


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(os.environ, database_url=args.database)


def _log_config() -> dict[str, object]:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    loggers = config["loggers"]
    loggers["reference_gateway"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    # The request log: one bare line (JSON by default) per chat request, beside the access log.
    config["formatters"]["request"] = {"format": "%(message)s"}
    config["handlers"]["requests"] = {
        "formatter": "request",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    loggers["reference_gateway.requests"] = {
        "handlers": ["requests"],
        "level": "INFO",
        "propagate": False,
    }
    return config


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from reference_gateway.app import create_app

    settings = _settings(args)
    # The operator's provider modules first: one that cannot be imported stops the start
    # before a key, a tenant or a token is made (main() reports it in one line).
    settings.load_provider_modules()
    if args.dev and not settings.master_key.strip():
        settings = Settings.from_env(
            os.environ,
            database_url=args.database,
            master_key=_dev_master_key(settings.database_url),
        )
    try:
        app = create_app(settings)
    except MasterKeyError as exc:
        _say(f"provara-gateway: cannot start: {exc}")
        _say("(for a local trial, 'provara-gateway serve --dev' makes a development key)")
        return 2
    if args.dev:
        _bootstrap_dev_tenant(settings.database_url)
    host = "localhost" if args.host in ("127.0.0.1", "::1") else args.host
    _say(
        f"Provara gateway on http://{host}:{args.port} - database "
        f"{redacted(settings.database_url)}\n"
        f"  try: curl http://{host}:{args.port}/v1/chat/completions "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        '-d \'{"model": "local/echo", "messages": [{"role": "user", "content": "Hello"}]}\''
    )
    if args.workers > 1:
        # Each worker process builds its own app from the environment (uvicorn needs an
        # import string to start several): hand it the settings resolved here.
        os.environ["PROVARA_DATABASE_URL"] = settings.database_url
        os.environ[MASTER_KEY_ENV] = settings.master_key
        from reference_gateway.telemetry import prepare_workers

        # The workers' metrics meet in one fresh directory, which any worker's /metrics reads.
        metrics_done = prepare_workers(settings, os.environ)
        try:
            uvicorn.run(
                "reference_gateway.cli:worker_app",
                factory=True,
                workers=args.workers,
                host=args.host,
                port=args.port,
                log_config=_log_config(),
                access_log=args.access_log,
                timeout_graceful_shutdown=10,
            )
        finally:
            metrics_done()
        return 0
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=_log_config(),
        access_log=args.access_log,
        timeout_graceful_shutdown=10,
    )
    return 0


def worker_app() -> object:
    """The app of one ``serve --workers N`` worker process, configured from the environment."""
    from reference_gateway.app import create_app

    return create_app(Settings.from_env(os.environ))


def _bootstrap_dev_tenant(database_url: str) -> None:
    with connect(database_url) as conn:
        if list_tenants(conn):
            _say("dev mode: tenants exist; make another with 'provara-gateway tenants create NAME'")
            return
        tenant, token = create_tenant(conn, "dev")
    _say(
        f"dev mode: created tenant {tenant.name!r} ({tenant.id}); its token (shown once):\n"
        f"  export TOKEN={token}"
    )


def _tenants_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with connect(settings.database_url) as conn:
            tenant, token = create_tenant(conn, args.name)
    except (ValueError, TenantExistsError) as exc:
        _say(f"provara-gateway: {exc}")
        return 1
    _say(f"created tenant {tenant.name!r} ({tenant.id}); its token is shown only this once:")
    print(token)
    return 0


def _tenants_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with connect(settings.database_url) as conn:
        rows = list_tenants(conn)
    if not rows:
        _say("no tenants yet; create one with 'provara-gateway tenants create NAME'")
        return 0
    print(f"{'ID':<22} {'NAME':<24} {'TOKEN':<12} {'CREATED':<26} REVOKED")
    for row in rows:
        print(
            f"{row.id:<22} {row.name:<24} {row.token_prefix + '…':<12} {row.created_at:<26} "
            f"{row.revoked_at or '-'}"
        )
    return 0


def _tenants_revoke(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with connect(settings.database_url) as conn:
        tenant = revoke_tenant(conn, args.name)
    if tenant is None:
        _say(f"provara-gateway: no active tenant named {args.name!r}")
        return 1
    _say(
        f"revoked tenant {tenant.name!r} ({tenant.id}): its token stops working on every "
        "running gateway within a second; its usage stays"
    )
    return 0


def _operators_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with connect(settings.database_url) as conn:
            operator, token = create_operator(conn, args.name)
    except (ValueError, OperatorExistsError) as exc:
        _say(f"provara-gateway: {exc}")
        return 1
    _say(
        f"created operator {operator.name!r} ({operator.id}); its token (for "
        "/dashboard/operator and /metrics) is shown only this once:"
    )
    print(token)
    return 0


def _operators_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with connect(settings.database_url) as conn:
        rows = list_operators(conn)
    if not rows:
        _say("no operators yet; create one with 'provara-gateway operators create NAME'")
        return 0
    print(f"{'ID':<22} {'NAME':<24} {'TOKEN':<12} {'CREATED':<26} REVOKED")
    for row in rows:
        print(
            f"{row.id:<22} {row.name:<24} {row.token_prefix + '…':<12} {row.created_at:<26} "
            f"{row.revoked_at or '-'}"
        )
    return 0


def _operators_revoke(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with connect(settings.database_url) as conn:
        operator = revoke_operator(conn, args.name)
    if operator is None:
        _say(f"provara-gateway: no active operator named {args.name!r}")
        return 1
    _say(
        f"revoked operator {operator.name!r} ({operator.id}): its token stops working on "
        "every running gateway within a second"
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            before = current_revision(conn)
        after = migrate(engine)
    except SchemaTooNewError as exc:
        _say(f"provara-gateway: {exc}")
        return 1
    finally:
        engine.dispose()
    where = redacted(settings.database_url)
    if before == after:
        _say(f"{where}: schema is up to date (revision {after})")
    else:
        _say(f"{where}: schema upgraded from revision {before or 'none'} to {after}")
    return 0


def _vault_rotate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        vault = settings.vault()
    except MasterKeyError as exc:
        _say(f"provara-gateway: {exc}")
        return 2
    try:
        with connect(settings.database_url) as conn:
            rotated = vault.rotate_all(all_ciphertexts(conn))
            write_ciphertexts(conn, rotated)
    except VaultError as exc:
        _say(f"provara-gateway: {exc}")
        return 1
    _say(
        f"re-encrypted {len(rotated)} stored keys under key id {vault.current_key_id}; "
        "restart the gateway"
    )
    return 0


def _config_check(args: argparse.Namespace) -> int:
    file = args.file or os.environ.get(CONFIG_ENV, "").strip()
    if not file:
        _say(f"provara-gateway: name a config file (config check FILE) or set {CONFIG_ENV}")
        return 2
    try:
        # Exactly what serve does: the settings, the provider modules, then the file.
        settings = Settings.from_env({**os.environ, CONFIG_ENV: file})
        settings.load_provider_modules()
    except ConfigFileError as exc:
        for line in exc.lines():
            _say(f"provara-gateway: {line}")
        return 2
    config = settings.config
    if config is None:  # pragma: no cover - from_env loads the file named above
        return 2
    print(f"{file}: valid")
    for line in config.describe():
        print(line)
    return 0


def _parser() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database",
        metavar="URL",
        help="sqlite:///PATH, a file path or postgresql://USER:PASSWORD@HOST:PORT/NAME "
        f"(default: $PROVARA_DATABASE_URL, else {DEFAULT_DATABASE_PATH})",
    )
    parser = argparse.ArgumentParser(
        prog="provara-gateway", description="Provara reference gateway."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[database], help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--dev",
        action="store_true",
        help="local trial: dev master key file if PROVARA_MASTER_KEY is unset, and a 'dev' "
        "tenant on an empty database",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port (default 1; see the README's Performance "
        "section for when 2 helps)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log every request (default on)",
    )
    serve.set_defaults(func=_serve)

    tenants = commands.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="tenants_command", required=True
    )
    create = tenants.add_parser("create", parents=[database], help="create a tenant")
    create.add_argument("name")
    create.set_defaults(func=_tenants_create)
    tenants.add_parser("list", parents=[database], help="list tenants").set_defaults(
        func=_tenants_list
    )
    revoke = tenants.add_parser(
        "revoke", parents=[database], help="revoke a tenant: its token stops working"
    )
    revoke.add_argument("name")
    revoke.set_defaults(func=_tenants_revoke)

    operators = commands.add_parser(
        "operators", help="manage operator tokens (operator pages, /metrics)"
    ).add_subparsers(dest="operators_command", required=True)
    op_create = operators.add_parser(
        "create", parents=[database], help="create an operator; prints its token once"
    )
    op_create.add_argument("name")
    op_create.set_defaults(func=_operators_create)
    operators.add_parser("list", parents=[database], help="list operators").set_defaults(
        func=_operators_list
    )
    op_revoke = operators.add_parser(
        "revoke", parents=[database], help="revoke an operator: its token stops working"
    )
    op_revoke.add_argument("name")
    op_revoke.set_defaults(func=_operators_revoke)

    db = commands.add_parser("db", help="the database").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser(
        "upgrade", parents=[database], help="migrate the schema to this version (serve does too)"
    ).set_defaults(func=_db_upgrade)

    vault = commands.add_parser("vault", help="stored-key encryption").add_subparsers(
        dest="vault_command", required=True
    )
    vault.add_parser(
        "rotate",
        parents=[database],
        help="re-encrypt every stored key under PROVARA_MASTER_KEY (old keys in "
        "PROVARA_MASTER_KEY_PREVIOUS)",
    ).set_defaults(func=_vault_rotate)

    config = commands.add_parser("config", help="the PROVARA_CONFIG file").add_subparsers(
        dest="config_command", required=True
    )
    check = config.add_parser(
        "check", help="validate a config file and show what it registers (nothing starts)"
    )
    check.add_argument("file", nargs="?", help=f"the file (default: ${CONFIG_ENV})")
    check.set_defaults(func=_config_check)
    return parser


def _database_error(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's own words, without SQLAlchemy's statement echo and help link."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``provara-gateway`` command."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigurationError as exc:
        _say(f"provara-gateway: {exc}")
        return 2
    except SchemaTooNewError as exc:
        _say(f"provara-gateway: {exc}")
        return 1
    except sa.exc.SQLAlchemyError as exc:
        _say(f"provara-gateway: database error: {_database_error(exc)}")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
