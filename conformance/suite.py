"""The base class an adapter package subclasses to run every check against its adapter."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from conformance.checks import CHECKS
from conformance.context import FAKE_KEY, CheckContext, CheckSkipped
from conformance.target import SCRIPTED_BASE_URL, ConformanceTarget, resolve_dialect
from provara_kit.errors import redact
from provara_kit.nostream import streaming_setting
from provara_kit.pricing import MODEL_PRICING
from provara_kit.provider import Provider
from provara_kit.testing import WireDialect

__all__ = ["ProviderConformance", "run_check"]

MARKER = "conformance"


class ProviderConformance:
    """Every conformance check, one test method each (``test_status_200`` ...).

    Subclass it in your adapter's tests::

        class TestAcmeConformance(ProviderConformance):
            provider_name = "acme"
            wire = "anthropic-messages"          # or your own WireDialect instance
            models = ("acme-large", "acme-small")
            api_key_env = "ACME_API_KEY"
            expected_failures = {"stream-timeout": "why, until when"}  # strict xfail

            def make_provider(self, *, api_key, base_url, transport):
                return AcmeProvider(api_key=api_key, base_url=base_url, transport=transport)

    Opting out of a check is ``expected_failures`` data with a reason; it runs as a strict
    xfail, so a check that starts passing says so. ``<PROVIDER_NAME>_STREAMING=0`` (or
    ``--conformance-streaming-off``) checks the adapter with its streaming turned off.
    """

    provider_name: ClassVar[str] = ""
    wire: ClassVar[str | WireDialect] = "openai-chat"
    models: ClassVar[tuple[str, ...]] = ()
    api_key_env: ClassVar[str | None] = None
    base_url: ClassVar[str | None] = None
    pricing: ClassVar[Mapping[str, Any] | None] = None
    """The table the checks expect costs from (default ``MODEL_PRICING``); an adapter
    given its own table must be built with the same one in ``make_provider``."""
    expected_failures: ClassVar[Mapping[str, str]] = {}
    fixtures_dir: ClassVar[str | Path | None] = None
    adapter_version: ClassVar[str | None] = None
    supported_params: ClassVar[Collection[str] | None] = None
    """Request parameters the adapter carries to its wire (``None``: as the adapter class
    declares, else the fields ``ChatRequest`` names); ``request-shape`` sends each one."""
    unsupported_params: ClassVar[Collection[str] | None] = None
    """Request parameters the wire cannot express: the adapter must refuse them."""

    def make_provider(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> Provider:
        """Build the adapter under test. Override this."""
        raise NotImplementedError(
            f"{type(self).__name__} must define make_provider(*, api_key, base_url, transport)"
        )

    def conformance_target_for(self) -> ConformanceTarget:
        """The target the checks run against, from the class attributes."""
        if not self.provider_name:
            raise TypeError(f"{type(self).__name__} must set provider_name")
        dialect = self.wire if isinstance(self.wire, WireDialect) else resolve_dialect(self.wire)
        probe = self.make_provider(
            api_key=None, base_url=self.base_url or SCRIPTED_BASE_URL, transport=None
        )
        adapter = type(probe)
        from conformance.target import _distribution_version

        return ConformanceTarget(
            name=self.provider_name,
            factory=self.make_provider,
            dialect=dialect,
            models=tuple(self.models),
            pricing=MODEL_PRICING if self.pricing is None else self.pricing,
            api_key_env=self.api_key_env,
            base_url=self.base_url,
            adapter=f"{adapter.__module__}.{adapter.__qualname__}",
            adapter_version=self.adapter_version or _distribution_version(adapter.__module__),
            expected_failures=dict(self.expected_failures),
            fixtures_dir=Path(self.fixtures_dir) if self.fixtures_dir else None,
            supported_params=_params(self.supported_params),
            unsupported_params=_params(self.unsupported_params),
            streaming=streaming_setting(self.provider_name),
        )

    @pytest.fixture
    def conformance_target(self, request: pytest.FixtureRequest) -> ConformanceTarget:
        target = self.conformance_target_for()
        if getattr(request.config.option, "provara_streaming_off", False):
            return dataclasses.replace(target, streaming=False)
        return target

    @pytest.fixture(autouse=True)
    def _conformance_expectations(
        self, request: pytest.FixtureRequest, conformance_target: ConformanceTarget
    ) -> Iterator[None]:
        check_id = _check_id(request.node)
        if check_id is None:
            yield
            return
        request.node.user_properties.append(("conformance_check", check_id))
        request.node.user_properties.append(("conformance_target", conformance_target.name))
        recorder = request.config.stash.get(TARGETS_KEY, None)
        if recorder is not None:
            recorder[conformance_target.name] = conformance_target
        reason = conformance_target.expected_failures.get(check_id)
        if reason:
            request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
        yield


def _params(names: Collection[str] | None) -> frozenset[str] | None:
    return None if names is None else frozenset(names)


def _check_id(node: pytest.Item) -> str | None:
    marker = node.get_closest_marker(MARKER)
    return str(marker.args[0]) if marker and marker.args else None


TARGETS_KEY = pytest.StashKey[dict[str, ConformanceTarget]]()


def run_check(
    check_id: str, target: ConformanceTarget, *, live: bool = False, record: bool = False
) -> None:
    """Run one check against ``target``; raises AssertionError on failure.

    With ``record`` (live only) the real exchanges are saved as replay fixtures in the
    target's ``fixtures_dir``, or ``conformance-fixtures/<provider>/``.
    """
    check = CHECKS[check_id]
    function = check.live if live else check.run
    if function is None:
        pytest.skip(f"{check_id} needs a scripted upstream: it runs without --live")
    context = CheckContext(target, live=live, record=live and record)
    try:
        result = function(context)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))
    except CheckSkipped as skipped:
        pytest.skip(str(skipped))
    except AssertionError as failed:
        # The failure text quotes what the adapter said; pytest prints it, so no key may
        # ride along (an adapter that leaks one is told so by secret-scrub, not shown it).
        raise AssertionError(redact(str(failed), _secrets(target))) from None
    except Exception as crashed:  # the adapter raised where a check did not expect it
        detail = redact(f"{type(crashed).__name__}: {crashed}", _secrets(target))
        raise AssertionError(f"{check_id}: the adapter raised {detail}") from None
    finally:
        if context.recordings:
            folder = target.fixtures_dir or Path("conformance-fixtures") / target.name
            context.save_recordings(check_id, folder)


def _secrets(target: ConformanceTarget) -> list[str]:
    """The keys a failure message must not show: the suite's fake key and the live one."""
    live = os.environ.get(target.api_key_env) if target.api_key_env else None
    return [FAKE_KEY, *([live] if live and len(live) >= 8 else [])]


async def _await(awaitable: Any) -> None:
    await awaitable


def _make_test(check_id: str) -> Callable[..., None]:
    def test(
        self: ProviderConformance,
        conformance_target: ConformanceTarget,
        request: pytest.FixtureRequest,
    ) -> None:
        options = request.config.option
        run_check(
            check_id,
            conformance_target,
            live=bool(getattr(options, "provara_live", False)),
            record=bool(getattr(options, "provara_record", False)),
        )

    test.__name__ = "test_" + check_id.replace("-", "_")
    test.__doc__ = f"[{check_id}] {CHECKS[check_id].title}"
    return pytest.mark.conformance(check_id)(test)


for _check_id_ in CHECKS:
    _test = _make_test(_check_id_)
    setattr(ProviderConformance, _test.__name__, _test)
del _check_id_, _test
