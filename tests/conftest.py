"""Fixtures for the whole suite: a private PostgreSQL server the tests start themselves.

``postgres_server`` is one :class:`LocalPostgres` for the test session (Debian's
``postgresql`` package is installed first when missing and the tests run as root);
``postgres_url`` is a fresh database on it for one test. A server that cannot start makes
the tests that use it error with the reason: they are never skipped.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # Imported when used: pytest also loads this file in sessions without the gateway
    # installed (``nox -s conformance`` run from the checkout).
    from reference_gateway.store.local_postgres import LocalPostgres

_databases = itertools.count()


def reachable_tmp(prefix: str) -> Path:
    """A new directory under the system temporary directory, for a server's root.

    Not under pytest's ``tmp_path``: as root, PostgreSQL runs as the ``postgres`` user,
    which cannot enter pytest's private (mode 0700) temporary tree. ``LocalPostgres`` hands
    the directory itself to that user.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """One PostgreSQL server for the test session, removed at its end."""
    from reference_gateway.store.local_postgres import LocalPostgres

    root = reachable_tmp("provara-pg-")
    try:
        with LocalPostgres(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database for one test (dropped after it): ``postgresql://...``."""
    words = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    name = f"t{next(_databases)}_{words}"[:63]
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
