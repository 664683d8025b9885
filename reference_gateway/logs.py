"""Logging that never shows a secret.

:data:`SECRETS` is a filter holding every provider key the gateway has in memory (operator
keys from the environment, tenant keys once decrypted). Installed on the gateway's and
uvicorn's error loggers, it rewrites any record, traceback included, whose text contains
one of them, so an exception that quotes a key is logged with ``[REDACTED]`` instead.
"""

from __future__ import annotations

import logging

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
    """Redacts known secrets from a record's message and traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._formatter = logging.Formatter()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        message = record.getMessage()
        clean = redact(message, secrets)
        if clean != message:
            record.msg = clean
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self._formatter.formatException(record.exc_info), secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


SECRETS = SecretFilter()


def install() -> None:
    """Attach :data:`SECRETS` to the loggers that may carry upstream errors (idempotent)."""
    for name in _LOGGERS:
        log = logging.getLogger(name)
        if SECRETS not in log.filters:
            log.addFilter(SECRETS)
