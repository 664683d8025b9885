"""``LocalPostgres``: the private PostgreSQL server the tests and the bench start."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reference_gateway.store import local_postgres
from reference_gateway.store.local_postgres import (
    INSTALL_COMMANDS,
    LocalPostgres,
    PostgresBinaries,
    PostgresUnavailableError,
    find_binaries,
    locate_binaries,
)
from tests.conftest import reachable_tmp


@pytest.fixture
def server_root() -> Iterator[Path]:
    """A directory for a server of the test's own."""
    root = reachable_tmp("provara-pg-test-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_server_accepts_connections_and_keeps_databases_apart(
    postgres_server: LocalPostgres,
) -> None:
    assert postgres_server.running
    with psycopg.connect(postgres_server.url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        listen = conn.execute("SHOW listen_addresses").fetchone()
        assert listen == ("127.0.0.1",)

    first = postgres_server.create_database("isolation_first")
    second = postgres_server.create_database("isolation_second")
    try:
        assert first.startswith("postgresql://postgres@127.0.0.1:")
        assert first.endswith("/isolation_first") and second.endswith("/isolation_second")
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
            conn.execute("INSERT INTO only_here VALUES (1)")
        with psycopg.connect(second, autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
            assert found == (None,)
        with psycopg.connect(first) as conn:
            assert conn.execute("SELECT x FROM only_here").fetchall() == [(1,)]
    finally:
        postgres_server.drop_database("isolation_first")
        postgres_server.drop_database("isolation_second")


def test_database_names_are_checked(postgres_server: LocalPostgres) -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        postgres_server.create_database('x"; DROP DATABASE postgres; --')


def test_postgres_url_is_a_fresh_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_start_stop_and_stop_again(server_root: Path) -> None:
    server = LocalPostgres(server_root)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
    server.start()
    url = server.url
    with psycopg.connect(url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.stop()
    server.stop()
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    assert (server_root / "data" / "PG_VERSION").exists()
    assert (server_root / "server.log").read_text(encoding="utf-8").strip()


def test_a_taken_port_is_retried(server_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        free = local_postgres._free_port
        monkeypatch.setattr(local_postgres, "_free_port", lambda: next(ports, None) or free())
        with LocalPostgres(server_root) as server:
            assert server.port != taken.getsockname()[1]
            with psycopg.connect(server.url, connect_timeout=10) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    assert "Address already in use" in (server_root / "server.log").read_text(encoding="utf-8")


def test_ports_that_stay_taken_are_reported(
    server_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(local_postgres, "_free_port", lambda: taken.getsockname()[1])
        monkeypatch.setattr(local_postgres, "_PORT_ATTEMPTS", 2)
        server = LocalPostgres(server_root)
        with pytest.raises(PostgresUnavailableError, match="2 free ports taken") as raised:
            server.start()
    assert "Address already in use" in str(raised.value)
    assert not server.running


def test_a_crashed_start_reports_the_end_of_the_server_log(server_root: Path) -> None:
    with LocalPostgres(server_root):
        pass
    with (server_root / "data" / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\nshared_buffers = 'plenty'\n")
    server = LocalPostgres(server_root)
    with pytest.raises(PostgresUnavailableError) as raised:
        server.start()
    message = str(raised.value)
    assert "exited with code" in message and "server.log" in message
    assert "shared_buffers" in message  # the server's own complaint, from its log
    assert not server.running


def test_a_server_left_running_is_stopped_at_interpreter_exit(server_root: Path) -> None:
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from reference_gateway.store.local_postgres import LocalPostgres
        server = LocalPostgres(Path({str(server_root)!r})).start()
        print(server.url, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith("postgresql://")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    assert not (server_root / "data" / "postmaster.pid").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_a_root_the_server_user_cannot_reach_is_refused(tmp_path: Path) -> None:
    # pytest's temporary tree is private to root (mode 0700)
    with pytest.raises(PostgresUnavailableError, match="cannot reach") as raised:
        LocalPostgres(tmp_path / "server").start()
    assert "choose a root directory" in str(raised.value)


# Finding and installing the binaries.


def _fake_bin(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ("initdb", "postgres"):
        (directory / name).write_text("#!/bin/sh\n", encoding="utf-8")
        (directory / name).chmod(0o755)
    return directory


def test_the_highest_debian_version_wins(tmp_path: Path) -> None:
    for version in ("9.6", "15", "12"):
        _fake_bin(tmp_path / "lib" / version / "bin")
    (tmp_path / "lib" / "16" / "bin").mkdir(parents=True)  # an empty leftover
    found = find_binaries(tmp_path / "lib", path="")
    assert found == PostgresBinaries(
        initdb=tmp_path / "lib" / "15" / "bin" / "initdb",
        postgres=tmp_path / "lib" / "15" / "bin" / "postgres",
    )


def test_binaries_on_path_are_found(tmp_path: Path) -> None:
    on_path = _fake_bin(tmp_path / "bin")
    found = find_binaries(tmp_path / "none", path=str(on_path))
    assert found is not None and found.initdb == on_path.resolve() / "initdb"
    assert find_binaries(tmp_path / "none", path=str(tmp_path)) is None


class _Apt:
    """Records the commands ``install_postgresql`` runs."""

    def __init__(self, returncode: int = 0, output: str = "") -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.returncode = returncode
        self.output = output

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((command, kwargs["env"]))
        return subprocess.CompletedProcess(command, self.returncode, self.output, "")


@pytest.fixture
def no_postgres(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[PostgresBinaries | None]:
    """``find_binaries`` answers from the returned list (then finds nothing); root, apt-get
    on PATH, and no ``apt-get update`` done yet in this process."""
    answers: list[PostgresBinaries | None] = []
    monkeypatch.setattr(
        local_postgres, "find_binaries", lambda: answers.pop(0) if answers else None
    )
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    which = shutil.which
    monkeypatch.setattr(
        shutil,
        "which",
        lambda name, *a, **k: "/usr/bin/apt-get" if name == "apt-get" else which(name, *a, **k),
    )
    monkeypatch.setattr(local_postgres, "_apt_updated", False)
    return answers


def test_missing_postgres_is_installed_with_apt_as_root(
    no_postgres: list[PostgresBinaries | None],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    installed = PostgresBinaries(initdb=tmp_path / "initdb", postgres=tmp_path / "postgres")
    no_postgres += [None, installed]
    apt = _Apt()
    with caplog.at_level(logging.WARNING, logger="reference_gateway"):
        assert locate_binaries(install=True, run=apt) == installed
    assert [command for command, _ in apt.calls] == [
        ["apt-get", "update", "-q"],
        [
            *("apt-get", "install", "-y", "-q", "--no-install-recommends"),
            *("-o", "DPkg::Lock::Timeout=300", "postgresql"),
        ],
    ]
    assert all(env["DEBIAN_FRONTEND"] == "noninteractive" for _, env in apt.calls)
    assert "installing Debian's postgresql package" in caplog.text

    # A second install in the same process does not update the package lists again.
    no_postgres += [None, installed]
    apt.calls.clear()
    locate_binaries(install=True, run=apt)
    assert [command for command, _ in apt.calls] == [list(INSTALL_COMMANDS[1])]


def test_a_failed_install_says_why(no_postgres: list[PostgresBinaries | None]) -> None:
    apt = _Apt(returncode=100, output="E: Unable to locate package postgresql")
    with pytest.raises(PostgresUnavailableError) as raised:
        locate_binaries(install=True, run=apt)
    message = str(raised.value)
    assert "apt-get update -q failed (exit 100)" in message
    assert "Unable to locate package" in message


def test_an_install_that_finds_nothing_says_so(no_postgres: list[PostgresBinaries | None]) -> None:
    with pytest.raises(PostgresUnavailableError, match="found no initdb and postgres"):
        locate_binaries(install=True, run=_Apt())


def test_without_install_or_root_it_says_how_to_install(
    no_postgres: list[PostgresBinaries | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    apt = _Apt()
    with pytest.raises(PostgresUnavailableError, match="apt-get install -y"):
        locate_binaries(install=False, run=apt)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(PostgresUnavailableError, match="needs root"):
        locate_binaries(install=True, run=apt)
    assert apt.calls == []
