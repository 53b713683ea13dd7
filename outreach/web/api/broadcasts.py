"""``/v1/broadcasts``: create a broadcast to a segment, its progress, and cancelling it as a whole
(docs/JOURNEYS.md, "Broadcasts"). An uploaded list is the command line's (``outreach broadcast
create --list``): a file on the machine that plans it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...broadcasts import Moment, definition
from ...errors import InputError
from .auth import outreach_of
from .errors import ApiError, problem

router = APIRouter()
BroadcastId = Annotated[str, Path(min_length=1, max_length=48, description="The broadcast's id.")]
#: The fields a request may give.
FIELDS = ("id", "name", "category", "channels", "template", "at", "audience", "data", "window", "rate")


def _refused(exc: InputError) -> ApiError:
    return ApiError(422, [problem(exc.field, exc.value, exc.problem)])


@router.post(
    "/broadcasts",
    tags=["Broadcasts"],
    summary="Create a broadcast to a segment",
    description=(
        "`{id, name?, category, channels: [...], template, at: 'YYYY-MM-DD HH:MM' | 'tomorrow HH:MM', "
        "audience: {country?, locale?, zone?, register?, attributes?}, data?, window?, rate?}`. Its "
        "first batch is planned in the request; the scheduler plans the rest (`outreach scheduler`), "
        "or `outreach broadcast resume`. 202 with its status."
    ),
    status_code=202,
    responses={409: {"description": "The id is taken."}, 422: {"description": "A field is not valid."}},
)
async def create_broadcast(request: Request, body: Annotated[dict[str, Any], Body()]) -> JSONResponse:
    outreach = outreach_of(request)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError(
            422, [problem(unknown[0], body[unknown[0]], f"unknown field (fields: {', '.join(FIELDS)})")]
        )
    audience = body.get("audience") or {}
    if not isinstance(audience, dict) or audience.get("kind", "segment") != "segment":
        raise ApiError(
            422, [problem("audience", audience, "a segment: {country, locale, zone, register, attributes}")]
        )
    try:
        wanted = definition(
            {
                **{k: body[k] for k in ("id", "category", "template", "data", "rate") if k in body},
                "name": body.get("name") or body.get("id"),
                "channels": body.get("channels") or [],
                "moment": str(Moment.parse(body.get("at"))),  # type: ignore[arg-type]
                "audience": {**audience, "kind": "segment"},
                "rule": {"window": body["window"]} if body.get("window") else {},
            }
        )
    except InputError as exc:
        raise _refused(exc) from None
    except (TypeError, ValueError) as exc:
        raise ApiError(422, [problem("body", None, str(exc))]) from None
    try:
        kept = await run_in_threadpool(outreach.broadcasts.create, wanted)
    except InputError as exc:
        if exc.field == "id":
            raise ApiError(409, [problem("id", exc.value, exc.problem)]) from None
        raise _refused(exc) from None
    await run_in_threadpool(outreach.broadcasts.plan, kept.id, 500, 1)
    status = await run_in_threadpool(outreach.broadcasts.status, kept.id)
    return JSONResponse(status.to_mapping(), status_code=202)


@router.get("/broadcasts", tags=["Broadcasts"], summary="Every broadcast with its progress")
def list_broadcasts(request: Request) -> list[dict[str, Any]]:
    outreach = outreach_of(request)
    return [outreach.broadcasts.status(b.id).to_mapping() for b in outreach.broadcasts.all()]


@router.get(
    "/broadcasts/{broadcast_id}",
    tags=["Broadcasts"],
    summary="A broadcast's progress",
    description="Audience seen, planned, skipped and why, outcomes so far, waiting (`broadcast status`).",
    responses={404: {"description": "No such broadcast."}},
)
def get_broadcast(request: Request, broadcast_id: BroadcastId) -> dict[str, Any]:
    outreach = outreach_of(request)
    try:
        return outreach.broadcasts.status(broadcast_id).to_mapping()
    except InputError as exc:
        raise ApiError(
            404, [problem("broadcast_id", broadcast_id, exc.problem, loc=["path", "broadcast_id"])]
        ) from None


@router.post(
    "/broadcasts/{broadcast_id}/cancel",
    tags=["Broadcasts"],
    summary="Cancel a broadcast as a whole",
    description=(
        "Nothing more is planned, and none of its sends not yet at its provider goes out, claimed ones "
        "included. `{reason?}`; the answer counts the sends stopped and those too late."
    ),
    responses={404: {"description": "No such broadcast."}},
)
async def cancel_broadcast(
    request: Request, broadcast_id: BroadcastId, body: Annotated[dict[str, Any] | None, Body()] = None
) -> dict[str, Any]:
    outreach = outreach_of(request)
    reason = str((body or {}).get("reason") or "")
    try:
        done = await run_in_threadpool(outreach.broadcasts.cancel, broadcast_id, reason)
    except InputError as exc:
        raise ApiError(
            404, [problem("broadcast_id", broadcast_id, exc.problem, loc=["path", "broadcast_id"])]
        ) from None
    status = await run_in_threadpool(outreach.broadcasts.status, broadcast_id)
    return {"cancelled": done.cancelled, "too_late": done.too_late, "already": done.already,
            "status": status.to_mapping()}  # fmt: skip
