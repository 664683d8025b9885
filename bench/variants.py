"""The gateway's other configurations, measured beside its default one.

Each variant changes one setting of the default gateway (one worker, SQLite, durable
usage) and is loaded only in the cells where that setting matters, which keeps the run
short: two workers at concurrency 16; PostgreSQL wherever its latency or throughput
shows; ``PROVARA_USAGE_DURABLE=0`` non-streaming, where :func:`bench.report.durability_cost`
compares it with the default; metrics and the request log off (``gateway-quiet``)
non-streaming, what the default telemetry costs. The PostgreSQL variants share one throwaway server
(:class:`reference_gateway.store.local_postgres.LocalPostgres`), one database each.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.servers import Server, Unavailable, start_gateway
from bench.upstream import Upstream

if TYPE_CHECKING:
    from reference_gateway.store.local_postgres import LocalPostgres

__all__ = ["VARIANTS", "Variant", "durable_setting_known", "start_variants"]

_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Variant:
    """A gateway configuration and the ``(mode, concurrency)`` cells it is loaded in."""

    cells: frozenset[tuple[str, int]]
    workers: int = 1
    postgres: bool = False
    durable: bool = True
    telemetry: bool = True


VARIANTS: dict[str, Variant] = {
    "gateway-2w": Variant(frozenset({("json", 16), ("stream", 16)}), workers=2),
    "gateway-pg": Variant(frozenset({("json", 1), ("json", 16), ("stream", 16)}), postgres=True),
    "gateway-batched": Variant(frozenset({("json", 1), ("json", 16)}), durable=False),
    "gateway-pg-batched": Variant(frozenset({("json", 1)}), postgres=True, durable=False),
    "gateway-quiet": Variant(frozenset({("json", 1), ("json", 16)}), telemetry=False),
}


def durable_setting_known() -> bool:
    """Whether this gateway reads ``PROVARA_USAGE_DURABLE`` (else ``=0`` changes nothing)."""
    config = _ROOT / "reference_gateway" / "config.py"
    try:
        return "PROVARA_USAGE_DURABLE" in config.read_text(encoding="utf-8")
    except OSError:
        return False


def _postgres(stack: contextlib.ExitStack, root: Path) -> LocalPostgres:
    try:
        from reference_gateway.store.local_postgres import LocalPostgres
    except ImportError as exc:
        raise Unavailable(f"no local PostgreSQL for the bench: {exc}") from None
    # A root caller runs the server as the postgres user, who must reach its directory.
    os.chmod(root.parent, 0o711)
    try:
        return stack.enter_context(LocalPostgres(root))
    except Exception as exc:  # its own error type, or psycopg's
        raise Unavailable(f"PostgreSQL could not start: {exc}") from None


def start_variants(
    upstream: Upstream,
    work: Path,
    names: list[str],
    ports: list[int],
    stack: contextlib.ExitStack,
) -> tuple[dict[str, Server], dict[str, str]]:
    """Start the named variants (``ports`` one each); returns the servers that answered
    and, for the others, why not. Servers and PostgreSQL are stopped by ``stack``."""
    servers: dict[str, Server] = {}
    missing: dict[str, str] = {}
    postgres: LocalPostgres | None = None
    postgres_error: str | None = None
    for name, port in zip(names, ports, strict=True):
        variant = VARIANTS[name]
        if not variant.durable and not durable_setting_known():
            missing[name] = "this gateway reads no PROVARA_USAGE_DURABLE"
            continue
        database_url = None
        if variant.postgres:
            if postgres is None and postgres_error is None:
                try:
                    postgres = _postgres(stack, work / "postgres")
                except Unavailable as exc:
                    postgres_error = str(exc)
            if postgres is None:
                missing[name] = postgres_error or "PostgreSQL could not start"
                continue
            try:
                database_url = postgres.create_database(name.replace("-", "_"))
            except Exception as exc:
                missing[name] = f"CREATE DATABASE failed: {exc}"
                continue
        try:
            server = start_gateway(
                upstream,
                work / name,
                port,
                name=name,
                workers=variant.workers,
                database_url=database_url,
                durable=variant.durable,
                telemetry=variant.telemetry,
            )
        except Unavailable as exc:
            missing[name] = str(exc)
            continue
        stack.callback(server.stop)
        servers[name] = server
    return servers, missing
