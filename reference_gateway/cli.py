"""``provara-gateway``: run the gateway and manage its tenants.

::

    provara-gateway serve [--host H] [--port P] [--database URL|PATH] [--dev] [--workers N]
    provara-gateway tenants create NAME [--database ...]   # prints the token, once
    provara-gateway tenants list [--database ...]
    provara-gateway vault rotate [--database ...]          # re-encrypt keys, new master key

``--dev`` is for a first run on a laptop (``nox -s gateway`` uses it): without
``PROVARA_MASTER_KEY`` it uses a development key kept next to the database (created on
first use, and it says so), and on an empty database it creates a tenant ``dev`` and
prints its token. Without ``--dev``, ``serve`` refuses to start with no master key.
"""

from __future__ import annotations

import argparse
import copy
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from provara_kit.errors import ConfigurationError, MasterKeyError, VaultError
from provara_kit.vault import MASTER_KEY_ENV, generate_master_key
from reference_gateway.auth import create_tenant
from reference_gateway.config import DEFAULT_DATABASE_PATH, Settings
from reference_gateway.store import connect
from reference_gateway.store.keys import all_ciphertexts, write_ciphertexts
from reference_gateway.store.tenants import TenantExistsError, list_tenants

__all__ = ["dev_key_path", "main", "worker_app"]


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def dev_key_path(database_path: str) -> Path:
    """Where ``--dev`` keeps its master key: beside the database (``*.dev-key``)."""
    if database_path == ":memory:":
        return Path("provara-gateway.dev-key")
    return Path(database_path).expanduser().with_suffix(".dev-key")


def _dev_master_key(database_path: str) -> str:
    path = dev_key_path(database_path)
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
            master_key=_dev_master_key(settings.database_path),
        )
    try:
        app = create_app(settings)
    except MasterKeyError as exc:
        _say(f"provara-gateway: cannot start: {exc}")
        _say("(for a local trial, 'provara-gateway serve --dev' makes a development key)")
        return 2
    if args.dev:
        _bootstrap_dev_tenant(settings.database_path)
    host = "localhost" if args.host in ("127.0.0.1", "::1") else args.host
    _say(
        f"Provara gateway on http://{host}:{args.port} - database {settings.database_path}\n"
        f"  try: curl http://{host}:{args.port}/v1/chat/completions "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        '-d \'{"model": "local/echo", "messages": [{"role": "user", "content": "Hello"}]}\''
    )
    if args.workers > 1:
        # Each worker process builds its own app from the environment (uvicorn needs an
        # import string to start several): hand it the settings resolved here.
        os.environ["PROVARA_DATABASE_URL"] = settings.database_url
        os.environ[MASTER_KEY_ENV] = settings.master_key
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


def _bootstrap_dev_tenant(database_path: str) -> None:
    conn = connect(database_path)
    try:
        if list_tenants(conn):
            _say("dev mode: tenants exist; make another with 'provara-gateway tenants create NAME'")
            return
        tenant, token = create_tenant(conn, "dev")
    finally:
        conn.close()
    _say(
        f"dev mode: created tenant {tenant.name!r} ({tenant.id}); its token (shown once):\n"
        f"  export TOKEN={token}"
    )


def _tenants_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    conn = connect(settings.database_path)
    try:
        tenant, token = create_tenant(conn, args.name)
    except (ValueError, TenantExistsError) as exc:
        _say(f"provara-gateway: {exc}")
        return 1
    finally:
        conn.close()
    _say(f"created tenant {tenant.name!r} ({tenant.id}); its token is shown only this once:")
    print(token)
    return 0


def _tenants_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    conn = connect(settings.database_path)
    try:
        rows = list_tenants(conn)
    finally:
        conn.close()
    if not rows:
        _say("no tenants yet; create one with 'provara-gateway tenants create NAME'")
        return 0
    print(f"{'ID':<22} {'NAME':<24} {'TOKEN':<12} CREATED")
    for tenant_id, name, prefix, created in rows:
        print(f"{tenant_id:<22} {name:<24} {prefix + '…':<12} {created}")
    return 0


def _vault_rotate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        vault = settings.vault()
    except MasterKeyError as exc:
        _say(f"provara-gateway: {exc}")
        return 2
    conn = connect(settings.database_path)
    try:
        rotated = vault.rotate_all(all_ciphertexts(conn))
        write_ciphertexts(conn, rotated)
    except VaultError as exc:
        _say(f"provara-gateway: {exc}")
        return 1
    finally:
        conn.close()
    _say(
        f"re-encrypted {len(rotated)} stored keys under key id {vault.current_key_id}; "
        "restart the gateway"
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--database",
        metavar="URL",
        help="sqlite:///PATH URL or a file path (default: $PROVARA_DATABASE_URL, else "
        f"{DEFAULT_DATABASE_PATH})",
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

    vault = commands.add_parser("vault", help="stored-key encryption").add_subparsers(
        dest="vault_command", required=True
    )
    vault.add_parser(
        "rotate",
        parents=[database],
        help="re-encrypt every stored key under PROVARA_MASTER_KEY (old keys in "
        "PROVARA_MASTER_KEY_PREVIOUS)",
    ).set_defaults(func=_vault_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``provara-gateway`` command."""
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigurationError as exc:
        _say(f"provara-gateway: {exc}")
        return 2
    except sqlite3.Error as exc:
        _say(f"provara-gateway: database error: {exc}")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
