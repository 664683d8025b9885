"""``model-discovery``: what ``discover_models`` returns for every form of the wire's list.

The gateway serves what discovery finds, so the list must be exactly the ids the upstream
names: every id as written (slashes, dots and colons included), entries that name no model
skipped, every page of a paged list read (Anthropic's ``has_more`` / ``after_id``), ``[]``
for an empty list. The contract on failure: an error status raises its typed error (401
:class:`AuthenticationError`, 5xx retryable ...), a 404 may also return ``None`` ("cannot
list"), a 200 body that is not the wire's list raises :class:`MalformedResponseError` (or
another provider error); never ``[]``, which would wipe the provider's models, and never an
untyped exception. Before any discovery, the adapter serves the target's declared models.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Sequence

from conformance.checks.registry import check
from conformance.context import FAKE_KEY, CheckContext, CheckSkipped, Findings
from provara_kit.errors import (
    AuthenticationError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    ProviderStatusError,
    RateLimitError,
    UpstreamServerError,
)
from provara_kit.testing import ErrorFault, ScriptedUpstream, WireDialect

IDS: tuple[str, ...] = (
    "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "accounts/fireworks/models/llama-v3p1-8b-instruct",
    "ft:gpt-4o-mini-2024-07-18:acme::A1b2C3d4",
    "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "llama3.2:3b",
    "gemini-2.0-flash-001",
    "o3",
)
"""Ids as real providers write them (Together, Fireworks, OpenAI fine-tunes, Bedrock,
Ollama ...), served after the target's own models."""

PAGE_SIZE = 2
DEADLINE_S = 10.0

# Written out here, not taken from provara_kit.errors, so the suite checks the mapping.
STATUSES: dict[int, tuple[type[ProviderStatusError], bool]] = {
    401: (AuthenticationError, False),
    403: (PermissionDeniedError, False),
    404: (NotFoundError, False),
    429: (RateLimitError, True),
    500: (UpstreamServerError, True),
    503: (UpstreamServerError, True),
}

MALFORMED: dict[str, bytes] = {
    "an HTML page": b"<html><body><h1>Welcome to nginx!</h1></body></html>",
    "truncated JSON": b'{"object":"list","data":[{"id":"acme-large","obj',
    "JSON with no model list": b'{"object":"list","data":"soon"}',
    "a JSON string": b'"acme-large"',
}


async def _discover(upstream: ScriptedUpstream, ctx: CheckContext) -> object:
    """What ``discover_models`` returned, or the exception it raised."""
    provider = ctx.target.build(api_key=FAKE_KEY, transport=upstream)
    try:
        async with asyncio.timeout(DEADLINE_S):
            return await provider.discover_models()
    except Exception as exc:  # judged by the caller, whatever it is
        return exc
    finally:
        await provider.aclose()


def _upstream(
    ctx: CheckContext,
    models: Sequence[str],
    *,
    dialect: WireDialect | None = None,
    error: ErrorFault | None = None,
    page_size: int | None = None,
    body: bytes | None = None,
) -> ScriptedUpstream:
    return ScriptedUpstream(
        dialect or ctx.target.dialect,
        models=models,
        expected_api_key=FAKE_KEY,
        models_error=error,
        models_page_size=page_size,
        models_body=body,
    )


def _describe(result: object) -> str:
    if isinstance(result, BaseException):
        return f"raised {type(result).__name__} ({result})"
    return f"returned {result!r}"


def _expect_ids(found: Findings, where: str, result: object, served: Sequence[str]) -> None:
    if isinstance(result, BaseException) or result is None:
        found.fail(f"{where}: {_describe(result)}, expected the {len(served)} ids served")
        return
    if not isinstance(result, list) or not all(isinstance(m, str) for m in result):
        found.fail(f"{where}: returned {result!r}, expected a list of id strings")
        return
    got, want = Counter(result), Counter(served)
    if got == want:
        return
    problems = []
    if missing := sorted((want - got).elements()):
        problems.append(f"lost {missing}")
    if extra := sorted((got - want).elements()):
        problems.append(f"added {extra}")
    found.fail(f"{where}: {'; '.join(problems)} (returned {len(result)} of {len(served)} ids)")


def _expect_requests(found: Findings, where: str, upstream: ScriptedUpstream) -> None:
    dialect = upstream.dialect
    for request in upstream.requests:
        route = request.path.rstrip("/")
        found.expect(
            request.method == "GET" and route.endswith(dialect.models_path),
            f"{where}: sent {request.method} {request.path}, expected GET …{dialect.models_path}",
        )
        found.expect(
            request.authorized is True, f"{where}: the listing request did not carry the key"
        )
        for name, value in dialect.version_headers().items():
            got = request.headers.get(name.lower())
            found.expect(got == value, f"{where}: header {name} {got!r}, expected {value!r}")


def _expect_default_models(found: Findings, ctx: CheckContext) -> None:
    provider = ctx.target.build(api_key=FAKE_KEY, transport=ScriptedUpstream(ctx.target.dialect))
    if not hasattr(provider, "default_models"):
        return  # not an HTTPProvider: nothing declares its default models
    defaults = provider.default_models or ()
    missing = sorted(set(ctx.target.models) - set(defaults))
    found.expect(
        not missing,
        f"provider.default_models {tuple(defaults)!r} lacks the target's models {missing}: "
        "before discovery runs, the gateway would serve none of them",
    )


async def model_discovery(ctx: CheckContext) -> None:
    found = Findings()
    _expect_default_models(found, ctx)
    served = list(dict.fromkeys([*ctx.target.models, *IDS]))
    first = _upstream(ctx, served)
    result = await _discover(first, ctx)
    if result is None and not first.requests:
        found.raise_if_any()
        raise CheckSkipped("the adapter does not list models (discover_models returns None)")
    _expect_ids(found, "the model list", result, served)
    _expect_requests(found, "the model list", first)

    for label, form in ctx.target.dialect.model_list_forms().items():
        upstream = _upstream(ctx, served, dialect=form)
        _expect_ids(found, f"the model list {label}", await _discover(upstream, ctx), served)
        empty = await _discover(_upstream(ctx, [], dialect=form), ctx)
        found.expect(empty == [], f"an empty model list {label}: {_describe(empty)}, expected []")

    await _paged(found, ctx, served)
    await _errors(found, ctx)
    found.raise_if_any()


async def _paged(found: Findings, ctx: CheckContext, served: list[str]) -> None:
    dialect = ctx.target.dialect
    if type(dialect).render_models_page is WireDialect.render_models_page:
        return  # the wire does not page its list
    upstream = _upstream(ctx, served, page_size=PAGE_SIZE)
    where = f"the model list in pages of {PAGE_SIZE}"
    _expect_ids(found, where, await _discover(upstream, ctx), served)
    _expect_requests(found, where, upstream)
    pages = math.ceil(len(served) / PAGE_SIZE)
    found.expect(
        len(upstream.requests) == pages,
        f"{where}: {len(upstream.requests)} requests for {pages} pages",
    )


def _expect_provider(found: Findings, where: str, ctx: CheckContext, error: object) -> None:
    name = getattr(error, "provider", None)
    found.expect(
        name == ctx.target.name, f"{where}: the error names provider {name!r}, not the target's"
    )


async def _errors(found: Findings, ctx: CheckContext) -> None:
    for status, (expected, retryable) in STATUSES.items():
        message = f"model listing refused with {status}"
        upstream = _upstream(ctx, IDS, error=ErrorFault(status, message=message))
        result = await _discover(upstream, ctx)
        where = f"HTTP {status} on the model list"
        if status == 404 and result is None:
            continue  # "cannot list": the configured models stay
        if not found.expect(
            isinstance(result, expected),
            f"{where}: {_describe(result)}, expected {expected.__name__}"
            + (" or None" if status == 404 else "")
            + (" (an empty list wipes the provider's models)" if result == [] else ""),
        ):
            continue
        assert isinstance(result, ProviderStatusError)
        _expect_provider(found, where, ctx, result)
        found.expect(
            result.retryable is retryable,
            f"{where}: retryable {result.retryable}, expected {retryable}",
        )
        found.expect(message in str(result), f"{where}: the upstream's words are lost: {result}")
    for label, body in MALFORMED.items():
        result = await _discover(_upstream(ctx, IDS, body=body), ctx)
        where = f"a 200 model list that is {label}"
        if found.expect(
            isinstance(result, MalformedResponseError),
            f"{where}: {_describe(result)}, expected MalformedResponseError",
        ):
            _expect_provider(found, where, ctx, result)
    words = "models are being reloaded"
    fault = ErrorFault(503, message=words, wire_status=200)
    result = await _discover(_upstream(ctx, IDS, error=fault), ctx)
    found.expect(
        isinstance(result, ProviderError) and words in str(result),
        f"a 200 model list that is the wire's error body: {_describe(result)}, "
        "expected a provider error with the upstream's words",
    )


check(
    "model-discovery",
    "discover_models returns exactly the ids served, every form and page; errors typed",
)(model_discovery)
