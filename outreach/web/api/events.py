"""``POST /v1/events``: one lifecycle event or a batch, validated here and queued for ingestion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ...app import Outreach
from ...errors import InputError
from ...journeys.events import Event
from .auth import outreach_of
from .errors import ApiError, problem, pydantic_errors
from .models import EVENTS_BODY, MAX_BATCH, EventIn

router = APIRouter()


def _customer_problem(outreach: Outreach, customer_id: str, field: str, known: set[str]) -> ApiError | None:
    if customer_id in known:
        return None
    if outreach.customers.is_erased(customer_id):
        return ApiError(409, [problem(field, customer_id, "the customer was erased")])
    return ApiError(404, [problem(field, customer_id, "no such customer")])


def _event(outreach: Outreach, raw: Any, known: set[str], prefix: str = "") -> Event:
    """Validate one event (nothing is queued); raises ApiError naming the field. ``known``: the
    customers found among those the request names."""
    try:
        event = EventIn.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, pydantic_errors(exc.errors(include_url=False), prefix)) from None
    where = f"{prefix}.customer_id" if prefix else "customer_id"
    refused = _customer_problem(outreach, event.customer_id, where, known)
    if refused is not None:
        raise refused
    try:
        return outreach.event(
            event.type, event.customer_id, event.data, id=event.id, occurred_at=event.occurred_at
        )
    except InputError as exc:
        field = f"{prefix}.{exc.field}" if prefix else exc.field
        raise ApiError(422, [problem(field, exc.value, exc.problem)]) from None


def _customer_ids(items: list[Any]) -> list[str]:
    """The customer ids a request names (checked for existence in one round trip)."""
    return [i["customer_id"] for i in items if isinstance(i, dict) and isinstance(i.get("customer_id"), str)]


@router.post(
    "/events",
    tags=["Events"],
    summary="Queue one event or a batch",
    description=(
        'Send one event object, or `{"events": [...]}` with up to 1000. Each event is validated '
        "and queued for ingestion on its own. One event: 202 with its id, or the error. A batch: "
        "202 when every event was accepted, 207 when some were not; `results` has one entry per "
        "event, in order: `accepted` with the id, or `rejected` with the error naming the field."
    ),
    status_code=202,
    responses={
        202: {"description": "Queued."},
        207: {"description": "A batch in which some events were rejected."},
        404: {"description": "The customer does not exist."},
        409: {"description": "The customer was erased."},
        422: {"description": "The event is not valid; the error names the field and the value."},
    },
    openapi_extra=EVENTS_BODY,
)
def post_events(request: Request, payload: Annotated[Any, Body()]) -> JSONResponse:
    """Queues what is valid: a batch is judged event by event, never refused as a whole for one."""
    outreach = outreach_of(request)
    if isinstance(payload, dict) and "events" in payload and "type" not in payload:
        extra = sorted(set(payload) - {"events"})
        if extra:
            raise ApiError(422, [problem(extra[0], payload[extra[0]], "unknown field in a batch")])
        items = payload["events"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            shown = items if not isinstance(items, list) else f"{len(items)} events"
            raise ApiError(422, [problem("events", shown, f"must be a list of 1 to {MAX_BATCH} events")])
        results = []
        accepted = []
        known = outreach.customers.existing(_customer_ids(items))
        for index, item in enumerate(items):
            try:
                event = _event(outreach, item, known, f"events[{index}]")
                accepted.append(event.to_mapping())
                results.append({"index": index, "status": "accepted", "id": event.id})
            except ApiError as exc:
                results.append(
                    {"index": index, "status": "rejected", "code": exc.status, "detail": exc.detail,
                     "errors": exc.errors}
                )  # fmt: skip
        # The accepted events into the inbox in one round trip, then queued.
        outreach.submit(accepted)
        rejected = sum(r["status"] == "rejected" for r in results)
        body = {"accepted": len(results) - rejected, "rejected": rejected, "results": results}
        return JSONResponse(body, status_code=207 if rejected else 202)
    if not isinstance(payload, dict):
        raise ApiError(422, [problem("body", payload, 'must be an event object or {"events": [...]}')])
    event = _event(outreach, payload, outreach.customers.existing(_customer_ids([payload])))
    outreach.submit([event.to_mapping()])
    return JSONResponse({"status": "accepted", "id": event.id}, status_code=202)
