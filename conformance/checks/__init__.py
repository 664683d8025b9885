"""Every conformance check, by stable id. Importing this package registers them all, in
the order reports list them: the runbook's checks first, then the deeper families."""

from __future__ import annotations

# isort: off
from conformance.checks import status_200, status_errors, streams, accounting
from conformance.checks import properties, replay, error_bodies
from conformance.checks import error_in_200, malformed_200, discovery
from conformance.checks import outcome as outcome_checks
from conformance.checks import requests as request_checks
from conformance.checks import conversation, refusals
from conformance.checks import lifecycle, secrets

# isort: on
from conformance.checks.registry import CHECKS, Check, check

__all__ = ["CHECKS", "Check", "check"]

# The modules register on import; keep the names used so linters see why they are here.
_MODULES = (
    status_200,
    status_errors,
    streams,
    accounting,
    properties,
    replay,
    error_bodies,
    error_in_200,
    malformed_200,
    discovery,
    outcome_checks,
    request_checks,
    conversation,
    refusals,
    lifecycle,
    secrets,
)
