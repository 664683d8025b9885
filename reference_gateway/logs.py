"""Logging that never shows a secret.

:data:`SECRETS` is a filter holding every provider key the gateway has in memory (operator
keys from the environment, tenant keys once decrypted). Installed on the gateway's and
uvicorn's error loggers, it rewrites any record, traceback included, whose text contains
one of them, so an exception that quotes a key is logged with ``[REDACTED]`` instead.
"""

from __future__ import annotations

import logging
import threading

import ahocorasick

from provara_kit.errors import redact

__all__ = ["SECRETS", "SecretFilter", "install"]

_LOGGERS = (
    "reference_gateway",
    "reference_gateway.requests",  # a child's records skip its parent's filters
    "uvicorn.error",
    "uvicorn.access",
    "httpx",
)


class SecretFilter(logging.Filter):
    """Redacts known secrets from a record's message and traceback.

    Every record is checked against every secret the gateway holds, one per tenant key,
    so the check is one Aho-Corasick pass over the text whatever their number (a plain
    search per secret cost 0.6 ms a record at 500 keys); a text that holds one goes
    through :func:`~provara_kit.errors.redact`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._formatter = logging.Formatter()
        self._lock = threading.Lock()
        self._automaton: ahocorasick.Automaton[str] | None = None

    def add(self, secret: str | None) -> None:
        """Redact ``secret`` (4 characters or more) from now on."""
        if not secret or len(secret) < 4 or secret in self._secrets:
            return
        with self._lock:
            self._secrets.add(secret)
            self._automaton = None  # rebuilt by the next record's check

    def _matcher(self) -> ahocorasick.Automaton[str]:
        automaton = self._automaton
        if automaton is not None:
            return automaton
        with self._lock:
            automaton = ahocorasick.Automaton()
            for secret in self._secrets:
                # The same fragments redact() removes: a key's ends, when a provider echoes
                # it masked ("sk-abc...wxyz").
                fragments = (secret[:8], secret[-8:]) if len(secret) >= 16 else ()
                for pattern in (secret, *fragments):
                    automaton.add_word(pattern, secret)
            automaton.make_automaton()
            self._automaton = automaton
            return automaton

    def redact(self, text: str) -> str:
        """``text`` without any of the secrets (the same object when it holds none)."""
        if not self._secrets:
            return text
        found = {secret for _, secret in self._matcher().iter(text)}
        return redact(text, found) if found else text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        clean = self.redact(message)
        if clean is not message:
            record.msg = clean
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(self._formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


SECRETS = SecretFilter()


def install() -> None:
    """Attach :data:`SECRETS` to the loggers that may carry upstream errors (idempotent)."""
    for name in _LOGGERS:
        log = logging.getLogger(name)
        if SECRETS not in log.filters:
            log.addFilter(SECRETS)
