"""The HTTP API under ``/v1``: events, customer profiles, the explain view, delivery receipts.

Every route needs ``Authorization: Bearer <token>``. Errors are JSON:
``{"detail": "<field>=<value>: <problem>", "errors": [{"field", "value", "problem", "loc"}]}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, ValidationError

from ..app import Outreach
from ..channels.http import verify_signature
from ..clock import from_ms
from ..customers.profile import CATEGORIES, CHANNELS, EVENT_TYPES, FORMALITIES, Event
from ..errors import CustomerErased, InputError, TimingError
from ..schedule.store import log_entry
from ..timing import zone
from .security import token_matches

#: Most events one batch may carry.
MAX_BATCH = 1000
#: The problem text of a required field that is missing.
MISSING = "is required"
#: Receipt statuses a provider may report.
RECEIPT_STATUSES = ("delivered", "bounced", "complained", "failed")

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Category = Literal[CATEGORIES]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Formality = Literal[FORMALITIES]  # type: ignore[valid-type]
Id = Annotated[str, Field(min_length=1, max_length=200)]


# -- errors ----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _loc(field: str) -> list[str | int]:
    """``events[1].customer_id`` → ``["body", "events", 1, "customer_id"]`` (FastAPI's ``loc``)."""
    if field == "body":
        return ["body"]
    parts = re.findall(r"\[(\d+)\]|([^.\[\]]+)", field)
    return ["body", *(int(index) if index else name for index, name in parts)]


def problem(field: str, value: Any, text: str, loc: list | None = None) -> dict[str, Any]:
    return {
        "field": field,
        "value": _jsonable(value),
        "problem": text,
        "loc": loc if loc is not None else _loc(field),
    }


def describe(item: Mapping[str, Any]) -> str:
    if item["problem"] == MISSING:
        return f"{item['field']}: {MISSING}"
    return f"{item['field']}={item['value']!r}: {item['problem']}"


class ApiError(Exception):
    """Ends an API request with a JSON error."""

    def __init__(
        self, status: int, errors: list[dict[str, Any]] | str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(errors)
        self.status = status
        self.errors = [] if isinstance(errors, str) else errors
        self.detail = errors if isinstance(errors, str) else "; ".join(describe(e) for e in errors)
        self.headers = headers

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _field(loc: tuple | list, prefix: str = "") -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def pydantic_errors(errors: list[Mapping[str, Any]], prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic's errors as readable items naming the field (``events[2].type``) and the value."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        where = loc[:1] if loc and loc[0] in ("body", "path", "query", "header") else []
        inner = loc[len(where) :]
        if inner and inner[-1] == "[key]":
            inner = inner[:-2]  # a bad key of a mapping: name the mapping, the value is the key
        missing = error.get("type") == "missing"
        value = None if missing else error.get("input")
        text = MISSING if missing else str(error.get("msg", "is not valid"))
        out.append(problem(_field(inner, prefix), value, text, loc=loc if where else None))
    return out


# -- auth --------------------------------------------------------------------------------------

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="API token",
    description="One of the tokens in OUTREACH_API_TOKENS (comma-separated).",
)


def require_api_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    tokens = request.app.state.api_tokens
    if credentials is None or not token_matches(credentials.credentials, tokens):
        raise ApiError(
            401, "a valid 'Authorization: Bearer <token>' header is required",
            headers={"WWW-Authenticate": 'Bearer realm="outreach"'},
        )  # fmt: skip


router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_token)])


def _outreach(request: Request) -> Outreach:
    return request.app.state.outreach


# -- models ------------------------------------------------------------------------------------


class EventIn(BaseModel):
    """A lifecycle event for one customer."""

    model_config = ConfigDict(extra="forbid", title="Event")

    id: Id | None = Field(
        None, description="Your id for the event; a repeat of an id is ignored. Default: a new id."
    )
    type: EventType = Field(description="The event type.")
    customer_id: Id = Field(description="An existing customer.")
    occurred_at: AwareDatetime | None = Field(None, description="ISO 8601 with a UTC offset. Default: now.")
    data: dict[str, Any] = Field(default_factory=dict, description="Event data the journeys use.")


class CustomerIn(BaseModel):
    """A customer profile. Fields left out are cleared, except consent, which is kept when absent."""

    model_config = ConfigDict(extra="forbid", title="Customer")

    id: Id | None = Field(None, description="Must match the path, or be left out.")
    name: str | None = Field(None, max_length=200, description="Default: given + family name.")
    given_name: str | None = Field(None, max_length=200)
    family_name: str | None = Field(None, max_length=200)
    title: str | None = Field(None, description="ms, mr, mx or dr.")
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40, description="Digits with an optional leading +.")
    locale: str | None = Field(None, description="pt_BR or pt-BR. Default: en.")
    zone: str | None = Field(None, description="IANA time zone. Default: UTC.")
    country: str | None = Field(None, description="ISO 3166 alpha-2.")
    channel: Channel | None = Field(None, description="Preferred channel. Default: email.")
    formality: Formality | None = Field(None, description="Default: the locale's register.")
    consent: dict[Category, StrictBool] | None = Field(
        None, description="Category → allowed. Left out: the stored consent is kept."
    )
    channel_consent: dict[Channel, StrictBool] | None = Field(
        None, description="Channel → allowed. Left out: the stored channel consent is kept."
    )
    attributes: dict[str, Any] | None = None


class ReceiptIn(BaseModel):
    """A provider's delivery receipt."""

    model_config = ConfigDict(title="Receipt")

    send_id: Id
    status: Literal[RECEIPT_STATUSES]  # type: ignore[valid-type]
    detail: str = Field("", max_length=2000)


_EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {
                            "type": "object",
                            "title": "EventBatch",
                            "required": ["events"],
                            "additionalProperties": False,
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_BATCH,
                                    "items": {"$ref": "#/components/schemas/Event"},
                                }
                            },
                        },
                    ]
                }
            }
        },
    }
}
_RECEIPT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}},
    },
    "parameters": [
        {
            "name": "X-Outreach-Signature",
            "in": "header",
            "required": True,
            "description": "sha256=<hex HMAC-SHA256 of the exact body, keyed with the channel's secret>",
            "schema": {"type": "string"},
        }
    ],
}
#: Schemas the hand-written request bodies refer to (added to the OpenAPI components).
EXTRA_SCHEMAS = {"Event": EventIn, "Receipt": ReceiptIn}


# -- events ------------------------------------------------------------------------------------


def _customer_problem(outreach: Outreach, customer_id: str, field: str) -> ApiError | None:
    if outreach.customers.profiles.get(customer_id) is not None:
        return None
    if outreach.customers.profiles.is_erased(customer_id):
        return ApiError(409, [problem(field, customer_id, "the customer was erased")])
    return ApiError(404, [problem(field, customer_id, "no such customer")])


def _event(outreach: Outreach, raw: Any, prefix: str = "") -> Event:
    """Validate one event (nothing is queued); raises ApiError naming the field."""
    try:
        event = EventIn.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(422, pydantic_errors(exc.errors(include_url=False), prefix)) from None
    where = f"{prefix}.customer_id" if prefix else "customer_id"
    refused = _customer_problem(outreach, event.customer_id, where)
    if refused is not None:
        raise refused
    try:
        return outreach.event(
            event.type, event.customer_id, event.data, id=event.id, occurred_at=event.occurred_at
        )
    except InputError as exc:
        field = f"{prefix}.{exc.field}" if prefix else exc.field
        raise ApiError(422, [problem(field, exc.value, exc.problem)]) from None


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
    openapi_extra=_EVENTS_BODY,
)
def post_events(request: Request, payload: Annotated[Any, Body()]) -> JSONResponse:
    outreach = _outreach(request)
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
        for index, item in enumerate(items):
            try:
                event = _event(outreach, item, f"events[{index}]")
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
    event = _event(outreach, payload)
    outreach.submit([event.to_mapping()])
    return JSONResponse({"status": "accepted", "id": event.id}, status_code=202)


# -- customers ---------------------------------------------------------------------------------


@router.put(
    "/customers/{customer_id}",
    tags=["Customers"],
    summary="Create or update a customer profile",
    description=(
        "Stores the whole profile (fields left out are cleared), except `consent` and "
        "`channel_consent`: when they are left out, the stored consent is kept, so a profile sync "
        "never undoes an unsubscribe. 201 for a new customer, 200 for an update; 409 for an "
        "erased customer's id."
    ),
    responses={
        200: {"description": "Updated; the stored profile."},
        201: {"description": "Created; the stored profile."},
        409: {"description": "The id belongs to an erased customer."},
        422: {"description": "The profile is not valid; the error names the field and the value."},
    },
)
def put_customer(
    request: Request,
    customer_id: Annotated[str, Path(min_length=1, max_length=200, description="The customer's id.")],
    body: CustomerIn,
) -> JSONResponse:
    outreach = _outreach(request)
    if body.id is not None and body.id != customer_id:
        raise ApiError(422, [problem("id", body.id, f"must match the path ({customer_id!r}) or be left out")])
    data = body.model_dump(exclude_unset=True)
    data["id"] = customer_id
    existing = outreach.customers.profiles.get(customer_id)
    # Consent left out is kept as stored at the moment of the write (an opt-out made
    # meanwhile is never undone by a profile sync).
    keep = [key for key in ("consent", "channel_consent") if data.get(key) is None]
    for key in keep:
        data[key] = {}
    try:
        customer = outreach.upsert_customer(data, source="api", keep=keep)
    except CustomerErased:
        raise ApiError(
            409, [problem("id", customer_id, "the customer was erased", loc=["path", "customer_id"])]
        ) from None
    except InputError as exc:
        raise ApiError(422, [problem(exc.field, exc.value, exc.problem)]) from None
    return JSONResponse(json.loads(customer.to_json()), status_code=200 if existing is not None else 201)


# -- the explain view --------------------------------------------------------------------------


def _times(record: dict[str, Any], tz) -> dict[str, Any]:
    """Adds ``<name>`` (UTC) and ``<name>_local`` beside every ``<name>_ms`` field."""
    out = dict(record)
    for key, value in record.items():
        if not key.endswith("_ms"):
            continue
        try:
            instant = from_ms(int(value))
        except (TypeError, ValueError):
            continue
        name = key[: -len("_ms")]
        out[name] = instant.isoformat().replace("+00:00", "Z")
        out[f"{name}_local"] = instant.astimezone(tz).isoformat()
    return out


@router.get(
    "/sends/{send_id}",
    tags=["Sends"],
    summary="Explain a send",
    description=(
        "The send's intent and state and its whole history (plan, shifts, claims, attempts, "
        "outcomes, receipts), like `outreach explain`. Every `<name>_ms` field is also given as "
        "`<name>` (UTC) and `<name>_local` (the send's zone)."
    ),
    responses={404: {"description": "No such send."}},
)
def get_send(request: Request, send_id: Annotated[str, Path(min_length=1, max_length=200)]) -> dict[str, Any]:
    outreach = _outreach(request)
    send = outreach.schedule.store.get(send_id)
    if send is None:
        raise ApiError(404, [problem("send_id", send_id, "no such send", loc=["path", "send_id"])])
    try:
        tz = zone(send.get("zone") or "UTC")
    except TimingError:
        tz = zone("UTC")
    record: dict[str, Any] = dict(send)
    for key in ("channels", "rule", "data"):
        if isinstance(record.get(key), str):
            with contextlib.suppress(ValueError):
                record[key] = json.loads(record[key])
    history = [_times(entry, tz) for entry in outreach.schedule.store.history(send_id)]
    return {"send_id": send_id, "zone": str(send.get("zone") or "UTC"), "send": _times(record, tz),
            "history": history}  # fmt: skip


# -- receipts ----------------------------------------------------------------------------------


def receipt_secret(request: Request, channel: str) -> str | None:
    """The channel's signing secret: given to create_app, else channels.toml, else the environment."""
    given = request.app.state.receipt_secrets.get(channel)
    if given:
        return given
    config = _outreach(request).channels.channels.get(channel)
    if config is not None and config.secret:
        return config.secret
    return os.environ.get(f"OUTREACH_{channel.upper()}_SECRET") or None


def _record_receipt(outreach: Outreach, channel: str, receipt: ReceiptIn) -> dict[str, Any]:
    send = outreach.schedule.store.get(receipt.send_id)
    if send is None:
        raise ApiError(404, [problem("send_id", receipt.send_id, "no such send")])
    if send.get("channel") and send["channel"] != channel:
        raise ApiError(
            422, [problem("channel", channel, f"send {receipt.send_id} went by {send['channel']}",
                          loc=["path", "channel"])],
        )  # fmt: skip
    now = outreach.clock.now()
    text = f"{channel} reports {receipt.status}" + (f": {receipt.detail}" if receipt.detail else "")
    outreach.schedule.store.note(
        receipt.send_id,
        log_entry(now, "receipt", text, channel=channel, status=receipt.status, detail=receipt.detail),
    )
    suppressed = withdrawn = None
    if receipt.status in ("bounced", "complained"):
        customer = outreach.customers.profiles.get(send["customer_id"])
        address = customer.address(channel) if customer is not None else None
        if address:
            outreach.policy.decide.suppress_address(channel, address)
            suppressed = address
            outreach.schedule.store.note(
                receipt.send_id,
                log_entry(now, "suppressed_address", f"{address} is suppressed for {channel} "
                          f"({receipt.status})", channel=channel),
            )  # fmt: skip
        category = send.get("category", "")
        if (
            receipt.status == "complained"
            and customer is not None
            and category in ("lifecycle", "survey", "marketing")
            and customer.consent.get(category) is not False
        ):
            outreach.set_consent(customer.id, category=category, allowed=False, source=f"{channel} complaint")
            withdrawn = category
            outreach.schedule.store.note(
                receipt.send_id,
                log_entry(now, "consent_withdrawn", f"consent for {category} withdrawn after a complaint",
                          category=category),
            )  # fmt: skip
    return {
        "send_id": receipt.send_id,
        "channel": channel,
        "status": receipt.status,
        "suppressed_address": suppressed,
        "consent_withdrawn": withdrawn,
    }


@router.post(
    "/receipts/{channel}",
    tags=["Receipts"],
    summary="Record a provider's delivery receipt",
    description=(
        "The provider signs the exact body like Outreach signs its requests: "
        "`X-Outreach-Signature: sha256=<hex HMAC-SHA256>` keyed with the channel's secret "
        "(channels.toml or `OUTREACH_<CHANNEL>_SECRET`). The receipt goes into the send's history. "
        "`bounced` and `complained` put the address on the channel's suppression list; "
        "`complained` also withdraws consent for the send's category."
    ),
    responses={
        401: {"description": "Missing API token, no secret configured, or a bad signature."},
        404: {"description": "No such send."},
        422: {"description": "The receipt is not valid."},
    },
    openapi_extra=_RECEIPT_BODY,
)
async def post_receipt(request: Request, channel: Channel) -> dict[str, Any]:
    body = await request.body()
    secret = receipt_secret(request, channel)
    if not secret:
        raise ApiError(
            401, f"no signing secret is configured for {channel} (OUTREACH_{channel.upper()}_SECRET)"
        )
    if not verify_signature(secret, body, request.headers.get("x-outreach-signature")):
        raise ApiError(401, "X-Outreach-Signature does not match the body")
    try:
        receipt = ReceiptIn.model_validate_json(body)
    except ValidationError as exc:
        raise ApiError(422, pydantic_errors(exc.errors(include_url=False))) from None
    return await run_in_threadpool(_record_receipt, _outreach(request), channel, receipt)
