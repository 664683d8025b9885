"""Every conformance check, by stable id. Importing this package registers them all."""

from __future__ import annotations

from conformance.checks import (
    accounting,
    error_bodies,
    lifecycle,
    properties,
    replay,
    secrets,
    status_200,
    status_errors,
    streams,
)
from conformance.checks import outcome as outcome_checks
from conformance.checks import requests as request_checks
from conformance.checks.registry import CHECKS, Check, check

__all__ = ["CHECKS", "Check", "check"]

# The modules register on import; keep the names used so linters see why they are here.
_MODULES = (
    status_200,
    status_errors,
    error_bodies,
    streams,
    accounting,
    properties,
    replay,
    outcome_checks,
    request_checks,
    lifecycle,
    secrets,
)
