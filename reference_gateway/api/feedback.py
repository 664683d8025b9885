"""``POST /v1/feedback``: a tenant grades one of its own completions.

Body: ``{"completion_id" (or "request_id"): "chatcmpl-...", "score": 0..1, "comment"?}``;
instead of a number, ``score`` may be a thumb (``"up"``/``"down"``, ``true``/``false``), or
``"thumbs": "up" | "down"`` may be sent. The sample is stored in the ``feedback`` table and
added to the tenant's router posterior for the completion's cell and model (pinned completions
included: that is how a cell bootstraps). A completion of another tenant and an unknown
one answer the same 404; a second grade of the same completion is a 409. The router
remembers recent completions in memory; older ones (or any after a restart) are found
through their usage row, which keeps the cell.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reference_gateway.api.errors import GatewayError
from reference_gateway.api.http import JSONResponse, read_json_object
from reference_gateway.router import Tracked
from reference_gateway.store.usage import completion_of

if TYPE_CHECKING:
    from reference_gateway.app import Gateway

__all__ = ["parse_feedback", "routes"]

_THUMBS = {"up": 1.0, "down": 0.0, "thumbs_up": 1.0, "thumbs_down": 0.0}
_MAX_COMMENT = 2_000
_MAX_BODY = 16 * 1024


def _invalid(message: str, param: str) -> GatewayError:
    return GatewayError(400, message, param=param, code="invalid_value")


def _score(value: Any, param: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str) and value.strip().lower() in _THUMBS:
        return _THUMBS[value.strip().lower()]
    if isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= 1:
        return float(value)
    raise _invalid(f'\'{param}\' must be a number from 0 to 1, or a thumb: "up" or "down".', param)


def parse_feedback(data: dict[str, Any]) -> tuple[str, float, str | None]:
    """``(completion id, score in [0, 1], comment)`` from a request body; a 400 if wrong."""
    completion_id = data.get("completion_id", data.get("request_id"))
    if not isinstance(completion_id, str) or not completion_id.strip():
        raise _invalid(
            "Send 'completion_id' (or 'request_id'): the id of your completion.", "completion_id"
        )
    if "score" in data:
        score = _score(data["score"], "score")
    elif "thumbs" in data:
        score = _score(data["thumbs"], "thumbs")
    else:
        raise _invalid("Send 'score' (0 to 1) or 'thumbs' (\"up\" or \"down\").", "score")
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise _invalid("'comment' must be a string.", "comment")
    if comment is not None and len(comment) > _MAX_COMMENT:
        raise _invalid(f"'comment' is limited to {_MAX_COMMENT} characters.", "comment")
    return completion_id.strip(), score, comment


class Feedback:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def _stored_completion(self, tenant_id: str, completion_id: str) -> Tracked | None:
        """A completion the router no longer remembers (a restart, or pushed out), from
        its usage row: unflushed rows are written first so a fresh one is found too."""
        gateway = self.gateway
        await gateway.usage.flush()
        found = await gateway.db.read(lambda conn: completion_of(conn, tenant_id, completion_id))
        if found is None:
            return None
        provider, model, cell = found
        return Tracked(tenant_id, cell, f"{provider}/{model}")

    async def post(self, request: Request) -> Response:
        gateway = self.gateway
        tenant = await gateway.auth.authenticate(request.headers.get("authorization"))
        data = await read_json_object(request, _MAX_BODY)
        completion_id, score, comment = parse_feedback(data)
        tracked = gateway.router.completion(completion_id)
        if tracked is None:
            tracked = await self._stored_completion(tenant.id, completion_id)
        if tracked is None or tracked.tenant_id != tenant.id:
            raise GatewayError(
                404,
                f"No completion {completion_id[:80]!r} of yours is known to this gateway "
                "(feedback is accepted for recent completions of the same tenant).",
                param="completion_id",
                code="completion_not_found",
            )
        stored = await gateway.db.run(
            lambda conn: gateway.sync.insert_feedback(
                conn,
                tenant_id=tenant.id,
                request_id=completion_id,
                model=tracked.model,
                cell=tracked.cell,
                score=score,
                source="user",
                comment=comment,
            )
        )
        if not stored:
            raise GatewayError(
                409,
                "This completion has feedback already.",
                param="completion_id",
                code="feedback_exists",
            )
        gateway.router.add_sample(tenant.id, tracked.cell, tracked.model, score)
        return JSONResponse(
            {
                "object": "feedback",
                "completion_id": completion_id,
                "model": tracked.model,
                "cell": tracked.cell,
                "score": score,
            },
            status_code=201,
        )


def routes(gateway: Gateway) -> list[Route]:
    return [Route("/v1/feedback", Feedback(gateway).post, methods=["POST"])]
