"""PostgreSQL's LISTEN/NOTIFY for the ``changes`` table: a wake-up, never the data.

:func:`notify_change` (called where a change is recorded) sends a notification that
PostgreSQL delivers when the transaction commits; a :class:`ChangeListener` holds one
connection listening on the channel, on its own thread, and calls ``wake()`` for each, so
processes read a change at once rather than at their next poll. The poll stays the ground
truth: a notification lost to a dropped connection costs at most one poll interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa

from reference_gateway.store.engine import sqlalchemy_url

__all__ = ["CHANNEL", "ChangeListener", "notify_change"]

CHANNEL = "provara_changes"

logger = logging.getLogger("reference_gateway")

_RETRY_S = 1.0
_WAIT_S = 0.5
"""How long the listener waits for a notification before it checks whether to stop."""


def notify_change(conn: sa.Connection) -> None:
    """Wake every listening process when ``conn``'s transaction commits (PostgreSQL only;
    SQLite has no notifications and its processes poll)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


class ChangeListener:
    """Listens on :data:`CHANNEL` on its own thread and calls ``wake()`` for each
    notification (``wake`` must be thread-safe)."""

    def __init__(self, url: str, wake: Callable[[], object]) -> None:
        self._conninfo = (
            sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provara-listen", daemon=True)
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self._wake()  # anything sent while (re)connecting is read now
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=_WAIT_S):
                            self._wake()
            except psycopg.Error as exc:
                self.listening.clear()
                logger.warning("listening for changes failed (polling meanwhile): %s", exc)
                self._stop.wait(_RETRY_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
