"""Request and response plumbing: orjson responses and a request body read under a cap."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from reference_gateway.api.errors import GatewayError

__all__ = ["MAX_JSON_DEPTH", "JSONResponse", "read_body", "read_json_object"]

MAX_JSON_DEPTH = 64
"""The deepest nesting of arrays and objects a JSON body may have (the body is level 1).

A body is encoded again on its way upstream (orjson stops at 255 levels, the standard
library's ``json`` at Python's recursion limit, adapters add a few levels of their own),
so a deeper one is refused up front with a 400; no real request comes near 64.
"""


class JSONResponse(Response):
    """A JSON response encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"Request body too large: the limit is {limit} bytes (PROVARA_MAX_BODY_BYTES).",
        code="request_too_large",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes with a 413.

    ``Content-Length`` only lets a too-large body be refused early; the bytes are counted
    as they arrive whatever the header says (or when it is absent: chunked encoding).
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise GatewayError(400, "The client went away while sending the body.") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body parsed as a JSON object; a 400 for malformed JSON or another JSON type."""
    body = await read_body(request, limit)
    if not body:
        raise GatewayError(
            400,
            "The request body is empty; send a JSON object.",
            code="invalid_json",
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            400,
            f"The request body is not valid JSON: {exc}.",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise GatewayError(
            400,
            f"The request body must be a JSON object, not {type(data).__name__}.",
            code="invalid_json",
        )
    for name, value in data.items():
        kind = type(value)
        if (kind is dict or kind is list) and _too_deep(value, MAX_JSON_DEPTH - 1):
            raise GatewayError(
                400,
                f"The request body nests arrays and objects more than {MAX_JSON_DEPTH} "
                f"levels deep (in '{name}'); send a flatter structure.",
                param=name,
                code="nesting_too_deep",
            )
    return data


def _too_deep(value: dict[str, Any] | list[Any], room: int) -> bool:
    """Whether ``value`` nests more than ``room`` levels of arrays and objects (itself
    included); it stops descending at the limit, so its own recursion is bounded."""
    if room == 0:
        return True
    for child in value.values() if isinstance(value, dict) else value:
        kind = type(child)
        if (kind is dict or kind is list) and _too_deep(child, room - 1):
            return True
    return False
