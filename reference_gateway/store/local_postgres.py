"""A throwaway PostgreSQL server for the tests and the bench.

:class:`LocalPostgres` runs a private server out of one directory: ``initdb`` there, the
``postgres`` binary started as a child process on a free ``127.0.0.1`` port, trust
authentication from loopback only, its log in ``ROOT/server.log``. It is started directly,
not through ``pg_ctl``: a server that dies while starting is seen at once, and stopping it
is a signal to a known process. The binaries come from ``/usr/lib/postgresql/*/bin``
(highest version) or ``PATH``; when there are none and the process is root, Debian's
``postgresql`` package is installed with ``apt-get`` first.

PostgreSQL refuses to run as root, so a root caller runs the server as the unprivileged
``postgres`` user (the Debian package creates it) and hands it the directory. That user
must be able to reach the directory: a root under ``/tmp/pytest-of-root`` (mode 0700)
is refused with an error that says so.
"""

from __future__ import annotations

import atexit
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "LocalPostgres",
    "PostgresBinaries",
    "PostgresUnavailableError",
    "find_binaries",
    "install_postgresql",
    "locate_binaries",
]

logger = logging.getLogger("reference_gateway")

SERVER_USER = "postgres"
SUPERUSER = "postgres"
INSTALL_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("apt-get", "update", "-q"),
    (
        *("apt-get", "install", "-y", "-q", "--no-install-recommends"),
        *("-o", "DPkg::Lock::Timeout=300", "postgresql"),
    ),
)
_INSTALL_HINT = (
    "install PostgreSQL (Debian/Ubuntu, as root: "
    "apt-get update && apt-get install -y --no-install-recommends postgresql; "
    "macOS: brew install postgresql) or put its initdb and postgres on PATH"
)
_DEBIAN_BIN = Path("/usr/lib/postgresql")
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_PORT_ATTEMPTS = 5
_SOCKET_PATH_MAX = 107  # sun_path, less the terminating NUL
_LOG_TAIL_LINES = 30

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class PostgresUnavailableError(RuntimeError):
    """The local server cannot be found, installed or started; the message says why."""


@dataclass(frozen=True, slots=True)
class PostgresBinaries:
    """Where ``initdb`` and ``postgres`` are."""

    initdb: Path
    postgres: Path


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_binaries(
    debian_root: Path = _DEBIAN_BIN, path: str | None = None
) -> PostgresBinaries | None:
    """``initdb`` and ``postgres`` from ``debian_root/*/bin`` (highest version), else from
    ``PATH``; ``None`` when neither has both."""
    candidates = sorted(debian_root.glob("*/bin"), key=_version_key, reverse=True)
    found = shutil.which("initdb", path=path)
    if found is not None:
        candidates.append(Path(found).resolve().parent)
    for directory in candidates:
        initdb, postgres = directory / "initdb", directory / "postgres"
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return PostgresBinaries(initdb=initdb, postgres=postgres)
    return None


_apt_updated = False


def install_postgresql(run: Runner = subprocess.run) -> None:
    """Install Debian's ``postgresql`` package: ``apt-get update`` (once per process), then
    ``apt-get install -y --no-install-recommends postgresql``, non-interactively."""
    global _apt_updated
    if shutil.which("apt-get") is None:
        raise PostgresUnavailableError(
            f"PostgreSQL is not installed and there is no apt-get: {_INSTALL_HINT}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    commands = INSTALL_COMMANDS[1:] if _apt_updated else INSTALL_COMMANDS
    logger.warning(
        "PostgreSQL not found; installing Debian's postgresql package: %s",
        " && ".join(" ".join(command) for command in commands),
    )
    for command in commands:
        done = run(list(command), env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stdout or "") + (done.stderr or "")
            raise PostgresUnavailableError(
                f"{' '.join(command)} failed (exit {done.returncode}):\n{_tail(output)}\n"
                f"{_INSTALL_HINT}"
            )
        if command == INSTALL_COMMANDS[0]:
            _apt_updated = True


def locate_binaries(*, install: bool, run: Runner = subprocess.run) -> PostgresBinaries:
    """The binaries; installs PostgreSQL when missing, ``install`` is true and we are root."""
    binaries = find_binaries()
    if binaries is not None:
        return binaries
    if not install:
        raise PostgresUnavailableError(f"PostgreSQL is not installed: {_INSTALL_HINT}")
    if os.geteuid() != 0:
        raise PostgresUnavailableError(
            f"PostgreSQL is not installed, and installing it needs root: {_INSTALL_HINT}"
        )
    install_postgresql(run)
    binaries = find_binaries()
    if binaries is None:
        raise PostgresUnavailableError(
            f"installed Debian's postgresql package but found no initdb and postgres under "
            f"{_DEBIAN_BIN}/*/bin or on PATH: {_INSTALL_HINT}"
        )
    return binaries


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unreachable(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first ancestor of ``path`` that ``user`` may not search, if any."""
    groups = {user.pw_gid} | {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    for directory in reversed(path.parents):
        info = directory.stat()
        if info.st_uid == user.pw_uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid in groups:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            return directory
    return None


class LocalPostgres:
    """A private PostgreSQL server in `root`, on a free 127.0.0.1 port, for tests and the bench.

    ``root`` is the server's own directory (created if missing): the cluster in
    ``root/data``, the Unix socket in ``root/socket``, the server's output in
    ``root/server.log``. With ``install`` (the default), a root process without PostgreSQL
    installs Debian's package. Use it as a context manager, or :meth:`start` and
    :meth:`stop`; a server still running when the interpreter exits is stopped then.
    """

    def __init__(self, root: Path, *, install: bool = True) -> None:
        self.root = Path(root).absolute()
        self.install = install
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None

    def __repr__(self) -> str:
        state = f"port {self.port}" if self.running else "stopped"
        return f"LocalPostgres({str(self.root)!r}, {state})"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str:
        """URL of the server's default database (``postgres``)."""
        return self.database_url(SUPERUSER)

    def database_url(self, name: str) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/NAME``."""
        if self.port is None:
            raise RuntimeError("the PostgreSQL server is not started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def start(self) -> LocalPostgres:
        """Find (or install) the binaries, create the cluster if needed, start the server
        and wait until it accepts connections."""
        if self.running:
            return self
        binaries = locate_binaries(install=self.install)
        self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(binaries)
        for _ in range(_PORT_ATTEMPTS):
            port = _free_port()
            if self._start_on(binaries, port):
                self.port = port
                atexit.register(self.stop)
                return self
        raise PostgresUnavailableError(
            f"PostgreSQL found each of {_PORT_ATTEMPTS} free ports taken by the time it "
            f"started; the end of {self.log_path}:\n{_tail(self._log_since(0))}"
        )

    def stop(self) -> None:
        """Fast shutdown (running transactions are rolled back); safe to call twice."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        self.port = None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGQUIT)  # "immediate": no checkpoint
                try:
                    process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name``; returns its URL. ``name``: lowercase letters, digits
        and ``_``, 63 at most."""
        self._admin(self._checked(name), "CREATE DATABASE {}")
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE`` even if clients are still connected to it."""
        self._admin(self._checked(name), "DROP DATABASE IF EXISTS {} WITH (FORCE)")

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _checked(name: str) -> str:
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(
                f"database name {name!r} must be lowercase letters, digits and '_' "
                "(63 at most), not starting with a digit"
            )
        return name

    def _admin(self, name: str, statement: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name)))

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresUnavailableError(
                f"PostgreSQL refuses to run as root and there is no {SERVER_USER!r} user to "
                f"run it as (Debian's postgresql package creates it; or: useradd --system "
                f"{SERVER_USER})"
            ) from None
        blocked = _unreachable(self.root, user)
        if blocked is not None:
            raise PostgresUnavailableError(
                f"PostgreSQL runs as {SERVER_USER!r}, which cannot reach {self.root}: "
                f"{blocked} is mode {blocked.stat().st_mode & 0o777:o}; choose a root "
                "directory that user can reach (for example under /tmp)"
            )
        for path in (self.root, self.socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
        self._user = user

    def _as_server_user(self) -> dict[str, Any]:
        """Popen arguments that run a child as the server user (when we are root)."""
        user = self._user
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        if self._user is not None:
            env.update(HOME=str(self.root), USER=self._user.pw_name, LOGNAME=self._user.pw_name)
        return env

    def _initdb(self, binaries: PostgresBinaries) -> None:
        done = subprocess.run(
            [
                str(binaries.initdb),
                *("-D", str(self.data_dir), "-U", SUPERUSER),
                *("--auth=trust", "--encoding=UTF8", "--locale=C"),
            ],
            cwd=self.root,
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
            **self._as_server_user(),
        )
        if done.returncode != 0:
            raise PostgresUnavailableError(
                f"initdb failed (exit {done.returncode}) in {self.data_dir}:\n"
                f"{_tail(done.stdout + done.stderr)}"
            )
        # Trust from loopback only (the server listens on 127.0.0.1 and the private socket).
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n", encoding="utf-8"
        )

    def _server_command(self, binaries: PostgresBinaries, port: int) -> list[str]:
        socket_dir = str(self.socket_dir)
        if len(f"{socket_dir}/.s.PGSQL.{port}") > _SOCKET_PATH_MAX:
            socket_dir = ""  # too long for a Unix socket path: TCP on loopback only
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": socket_dir,
            "max_connections": "200",
        }
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return [str(binaries.postgres), "-D", str(self.data_dir), *options]

    def _start_on(self, binaries: PostgresBinaries, port: int) -> bool:
        """Start on ``port`` and wait until it accepts connections: ``True``; ``False`` if
        the port was taken meanwhile; otherwise raises."""
        with self.log_path.open("ab") as log:
            offset = log.tell()
            self._process = subprocess.Popen(
                self._server_command(binaries, port),
                cwd=self.root,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as_server_user(),
            )
        process = self._process
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            code = process.poll()
            if code is not None:
                self._process = None
                output = self._log_since(offset)
                if "Address already in use" in output:
                    return False
                raise PostgresUnavailableError(
                    f"PostgreSQL exited with code {code} while starting on port {port}; "
                    f"the end of {self.log_path}:\n{_tail(output)}"
                )
            if self._accepts(port):
                return True
            if time.monotonic() > deadline:
                self.stop()
                raise PostgresUnavailableError(
                    f"PostgreSQL did not accept connections on port {port} within "
                    f"{_START_TIMEOUT:.0f} s; the end of {self.log_path}:\n"
                    f"{_tail(self._log_since(offset))}"
                )
            time.sleep(0.05)

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    @staticmethod
    def _accepts(port: int) -> bool:
        import psycopg

        url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
        try:
            with psycopg.connect(url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False
