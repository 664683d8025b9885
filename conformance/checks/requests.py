"""``request-shape``: what the adapter sends is what its wire expects.

Method, path, auth and version headers, a JSON body with the right ``stream`` flag, the
model and the messages; then every parameter the adapter declares it supports (see
:mod:`conformance.params`) must arrive with its value, falsy values included, where the
dialect reads it back (:meth:`~provara_kit.testing.WireDialect.read_param`); every one it
declares unsupported must be refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from conformance.checks.registry import check
from conformance.checks.status_errors import leaked
from conformance.context import CheckContext, Findings, attempt
from conformance.params import declared_params
from conformance.target import SCRIPTED_BASE_URL
from provara_kit.errors import REDACTED, ProvaraError
from provara_kit.provider import Provider
from provara_kit.testing import RecordedRequest
from provara_kit.testing.dialects.base import MISSING
from provara_kit.types import ChatRequest

__all__ = ["SAMPLES", "TOOL", "request_shape"]

TOOL: Final[dict[str, Any]] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

SAMPLES: Final[dict[str, tuple[Any, ...]]] = {
    "temperature": (0.0, 1.5),
    "max_tokens": (1, 321),
    "stop": ([], ["END", "###"]),
    "top_p": (0, 0.5),
    "top_k": (1,),
    "seed": (0, 42),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "tools": ([TOOL],),
    "tool_choice": ("required", {"type": "function", "function": {"name": "get_weather"}}),
    "response_format": ({"type": "json_object"},),
    "user": ("tenant-7",),
    "metadata": ({"user_id": "tenant-7"},),
    "logit_bias": ({"50256": -100},),
    "logprobs": (True,),
    "top_logprobs": (2,),
}
"""Values each parameter is sent with; falsy ones first, as they are the ones dropped."""

SYSTEM = "You are terse."
USER = "Say hello."
MODES: Final = ("complete", "stream")


def _samples(name: str) -> tuple[Any, ...]:
    return SAMPLES.get(name, (f"conformance-{name}",))


def _fields(name: str, value: Any) -> dict[str, Any]:
    fields = {name: value}
    if name == "tool_choice":
        fields["tools"] = [TOOL]  # a tool choice means nothing without tools
    return fields


class _Sender:
    """Sends requests through one adapter and hands back what reached the upstream."""

    def __init__(self, provider: Provider, requests: Sequence[RecordedRequest]) -> None:
        self.provider = provider
        self.requests = requests

    async def send(
        self, request: ChatRequest, mode: str
    ) -> tuple[Exception | None, list[RecordedRequest]]:
        before = len(self.requests)
        error = await attempt(self.provider, request, mode)
        return error, list(self.requests)[before:]


def _expected_host(ctx: CheckContext) -> str:
    """The Host header a request to the configured base URL carries (default port left
    out, as HTTP clients send it)."""
    url = urlsplit(ctx.target.base_url or SCRIPTED_BASE_URL)
    default = {"https": 443, "http": 80}.get(url.scheme)
    host = url.hostname or ""
    return host if url.port in (None, default) else f"{host}:{url.port}"


def _base_path(ctx: CheckContext) -> str:
    return urlsplit(ctx.target.base_url or SCRIPTED_BASE_URL).path.rstrip("/")


def _expect_auth(found: Findings, where: str, ctx: CheckContext, sent: RecordedRequest) -> None:
    dialect = ctx.target.dialect
    header = dialect.auth_header
    value = sent.headers.get(header)
    if value is None:
        found.fail(f"{where}: no {header} header; the {dialect.name} wire takes the key there")
    elif header == "authorization" and not value.startswith(f"{dialect.auth_scheme} "):
        found.fail(f"{where}: the authorization header is not '{dialect.auth_scheme} ...'")
    found.expect(sent.authorized is True, f"{where}: the upstream did not accept the key as sent")
    # The scripted upstream masks a key= parameter as it records it: a mask is a key too.
    in_query = leaked(sent.query) or REDACTED in sent.query
    found.expect(not in_query, f"{where}: the API key travels in the URL query string")
    for name, expected in dialect.version_headers().items():
        got = sent.headers.get(name)
        found.expect(
            got == expected,
            f"{where}: {name} is {got!r}; the {dialect.name} wire expects {expected!r}",
        )


def _expect_shape(
    found: Findings, where: str, ctx: CheckContext, sent: list[RecordedRequest], mode: str
) -> None:
    dialect = ctx.target.dialect
    if not found.expect(len(sent) == 1, f"{where}: {len(sent)} requests reached the upstream"):
        return
    request = sent[0]
    streams = mode == "stream" and ctx.streaming  # streaming off: a stream is a completion
    path = _base_path(ctx) + dialect.completion_path_for(ctx.model, stream=streams)
    found.expect(request.method == "POST", f"{where}: method {request.method}, expected POST")
    found.expect(request.path == path, f"{where}: path {request.path!r}, expected {path!r}")
    host = _expected_host(ctx)
    sent_to = request.headers.get("host")
    found.expect(
        sent_to == host,
        f"{where}: sent to host {sent_to!r}, not the configured base URL's {host!r}",
    )
    _expect_auth(found, where, ctx, request)
    content_type = request.headers.get("content-type", "")
    found.expect(
        content_type.startswith("application/json"),
        f"{where}: content-type {content_type!r}, expected application/json",
    )
    body = request.view
    if not found.expect(isinstance(body, dict), f"{where}: the body is not a JSON object"):
        return
    streamed = dialect.is_stream_request(body)
    if not streams:
        found.expect(not streamed, f"{where}: the body asks for a stream (stream: true)")
    else:
        found.expect(streamed, f"{where}: the body does not ask for a stream (no stream: true)")
    model = dialect.read_param(body, "model")
    found.expect(model == ctx.model, f"{where}: model {model!r}, requested {ctx.model!r}")
    system = dialect.read_param(body, "system")
    found.expect(
        system == SYSTEM,
        f"{where}: the system message reads back as {system!r} where the "
        f"{dialect.name} wire carries it, expected {SYSTEM!r}",
    )
    user = dialect.last_user_text(body)
    found.expect(user == USER, f"{where}: the last user message reads {user!r}")


async def _supported(found: Findings, ctx: CheckContext, sender: _Sender, name: str) -> None:
    dialect = ctx.target.dialect
    for value in _samples(name):
        for mode in MODES:
            where = f"{mode} with {name}={value!r}"
            request = ctx.request(USER, system=SYSTEM, **_fields(name, value))
            error, sent = await sender.send(request, mode)
            if error is not None:
                found.fail(f"{where}: raised {type(error).__name__}: {error}")
                continue
            if len(sent) != 1 or not isinstance(sent[0].view, dict):
                found.fail(f"{where}: {len(sent)} requests with a JSON body reached the upstream")
                continue
            got = dialect.read_param(sent[0].view, name)
            if got is MISSING:
                found.fail(f"{where}: {name}={value!r} did not arrive: the body has no {name}")
            else:
                found.expect(got == value, f"{where}: {name}={value!r} arrived as {got!r}")


async def _unsupported(found: Findings, ctx: CheckContext, sender: _Sender, name: str) -> None:
    dialect = ctx.target.dialect
    for value in _samples(name):
        for mode in MODES:
            where = f"{mode} with {name}={value!r}"
            request = ctx.request(USER, system=SYSTEM, **_fields(name, value))
            error, sent = await sender.send(request, mode)
            if error is None:
                body = sent[0].view if len(sent) == 1 and isinstance(sent[0].view, dict) else {}
                how = "dropped" if dialect.read_param(body, name) is MISSING else "sent"
                found.fail(f"{where}: {name} is declared unsupported but was {how}, not refused")
                continue
            found.expect(
                isinstance(error, ProvaraError) and name in str(error),
                f"{where}: refused with {type(error).__name__}: {error}; expected a typed "
                f"error naming {name!r} (UnsupportedParameterError)",
            )
            found.expect(not sent, f"{where}: the refused request still reached the upstream")


async def _discovery(found: Findings, ctx: CheckContext, sender: _Sender) -> None:
    before = len(sender.requests)
    try:
        models = await sender.provider.discover_models()
    except Exception as exc:  # the listing is served: any error is a finding
        found.fail(f"discover_models: raised {type(exc).__name__}: {exc}")
        return
    sent = list(sender.requests)[before:]
    if models is None and not sent:
        return  # the adapter does not list models
    path = _base_path(ctx) + ctx.target.dialect.models_path
    for request in sent:
        where = f"discover_models ({request.method} {request.path})"
        found.expect(request.method == "GET", f"{where}: expected GET")
        found.expect(request.path == path, f"{where}: expected the path {path!r}")
        _expect_auth(found, where, ctx, request)


_CLIENT_OPTIONS: Final = {"include_obfuscation": False}


async def _client_stream_flags(found: Findings, ctx: CheckContext, sender: _Sender) -> None:
    """A client's own ``stream`` field (a body passed through a gateway carries one) never
    overrides the call: ``complete`` sends no stream request, ``complete_stream`` one."""
    dialect = ctx.target.dialect
    for mode, flag in (("complete", True), ("stream", False)):
        where = f"{mode} of a request that says stream={flag}"
        extra: dict[str, Any] = {"stream": flag}
        extra["stream_options"] = {"include_usage": True} if flag else dict(_CLIENT_OPTIONS)
        error, sent = await sender.send(ctx.request(USER, system=SYSTEM, **extra), mode)
        if len(sent) != 1 or not isinstance(sent[0].view, dict):
            found.fail(f"{where}: {len(sent)} requests with a JSON body sent ({error!r})")
            continue
        body = sent[0].view
        streamed = dialect.is_stream_request(body)
        if not found.expect(
            streamed is (mode == "stream" and ctx.streaming),
            f"{where}: the body {'asks' if streamed else 'does not ask'} for a stream",
        ):
            continue
        options = body.get("stream_options")
        if not streamed:
            found.expect(
                options is None,
                f"{where}: stream_options sent on a request that does not stream",
            )
        elif isinstance(options, dict):
            # Where the wire takes stream options, the client's own are kept beside the
            # adapter's.
            lost = {k: v for k, v in _CLIENT_OPTIONS.items() if options.get(k) != v}
            found.expect(not lost, f"{where}: the client's stream_options {lost} were dropped")
        found.expect(error is None, f"{where}: raised {error!r}")


async def request_shape(ctx: CheckContext) -> None:
    found = Findings()
    declared = declared_params(ctx.target)
    async with ctx.scripted(models=list(ctx.target.models)) as (provider, upstream):
        sender = _Sender(provider, upstream.requests)
        failed = 0
        for mode in MODES:
            error, sent = await sender.send(ctx.request(USER, system=SYSTEM), mode)
            if error is not None:
                failed += 1
                found.fail(f"{mode}: a plain request raised {type(error).__name__}: {error}")
            _expect_shape(found, mode, ctx, sent, mode)
        if failed == len(MODES):
            found.raise_if_any()  # nothing gets through: the parameters cannot be judged
        await _client_stream_flags(found, ctx, sender)
        for name in sorted(declared.supported):
            await _supported(found, ctx, sender, name)
        for name in sorted(declared.unsupported):
            await _unsupported(found, ctx, sender, name)
        await _discovery(found, ctx, sender)
    found.raise_if_any()


check(
    "request-shape",
    "method, path, auth, version headers, stream flag and every declared parameter as the "
    "wire expects; unsupported parameters refused before sending",
)(request_shape)
