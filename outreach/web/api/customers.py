"""``PUT /v1/customers/{customer_id}``: create or update a profile without undoing an opt-out."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from ...errors import CustomerErased, InputError
from .auth import outreach_of
from .errors import ApiError, problem
from .models import CustomerIn

router = APIRouter()


@router.put(
    "/customers/{customer_id}",
    tags=["Customers"],
    summary="Create or update a customer profile",
    description=(
        "Stores the whole profile (fields left out are cleared), except `consent`, "
        "`channel_consent` and `observances`: when they are left out, the stored ones are kept, so a "
        "profile sync never undoes an unsubscribe or what the customer said they observe. 201 for a new "
        "customer, 200 for an update; 409 for an erased customer's id."
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
    """The path names the customer; the answer is the profile as stored."""
    outreach = outreach_of(request)
    if body.id is not None and body.id != customer_id:
        raise ApiError(422, [problem("id", body.id, f"must match the path ({customer_id!r}) or be left out")])
    data = body.model_dump(exclude_unset=True)
    data["id"] = customer_id
    existing = outreach.customers.get(customer_id)
    # Consent left out is kept as stored at the moment of the write (an opt-out made
    # meanwhile is never undone by a profile sync).
    keep = [key for key in ("consent", "channel_consent", "observances") if data.get(key) is None]
    for key in keep:
        data[key] = [] if key == "observances" else {}
    try:
        customer = outreach.upsert_customer(data, source="api", keep=keep)
    except CustomerErased:
        raise ApiError(
            409, [problem("id", customer_id, "the customer was erased", loc=["path", "customer_id"])]
        ) from None
    except InputError as exc:
        raise ApiError(422, [problem(exc.field, exc.value, exc.problem)]) from None
    return JSONResponse(json.loads(customer.to_json()), status_code=200 if existing is not None else 201)
