"""A customer's data over the API: the profile, a consent change, a copy of everything held, and
erasure. Each call is audited: one line on the ``outreach.audit`` logger naming the action, the
customer (erasure: only the hash its tombstone keeps) and the API token's fingerprint, never the
token."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, ConfigDict

from ...errors import CustomerErased, InputError, UnknownCustomer
from .auth import outreach_of
from .errors import ApiError, problem

audit_log = logging.getLogger("outreach.audit")
router = APIRouter(tags=["Data rights"])
CustomerId = Annotated[str, Path(min_length=1, max_length=200, description="The customer's id.")]


class ConsentIn(BaseModel):
    """One consent change: a category or a channel, allowed or not."""

    model_config = ConfigDict(extra="forbid")
    category: str | None = None
    channel: str | None = None
    allowed: bool
    #: Where the change came from, kept in the consent history.
    source: str = "api"


def _audit(request: Request, action: str, customer: str, **fields: Any) -> None:
    header = request.headers.get("authorization", "")
    token = header.split(" ", 1)[1] if " " in header else ""
    by = hashlib.sha256(token.encode()).hexdigest()[:12]
    audit_log.info(
        "%s %s (API token %s)", action, customer, by,
        extra={"fields": {"action": action, "customer": customer, "token": by, **fields}},
    )  # fmt: skip


def _refused(customer_id: str, exc: Exception) -> ApiError:
    loc = ["path", "customer_id"]
    if isinstance(exc, CustomerErased):
        return ApiError(410, [problem("customer_id", customer_id, "the customer was erased", loc=loc)])
    if isinstance(exc, UnknownCustomer):
        return ApiError(404, [problem("customer_id", customer_id, "no such customer", loc=loc)])
    assert isinstance(exc, InputError)
    return ApiError(422, [problem(exc.field, exc.value, exc.problem)])


@router.get(
    "/customers/{customer_id}",
    summary="Read a customer profile",
    responses={404: {"description": "No such customer."}, 410: {"description": "The customer was erased."}},
)
def get_customer(request: Request, customer_id: CustomerId) -> dict[str, Any]:
    try:
        customer = outreach_of(request).customers.require(customer_id)
    except (CustomerErased, UnknownCustomer) as exc:
        raise _refused(customer_id, exc) from None
    _audit(request, "read", customer_id)
    profile: dict[str, Any] = json.loads(customer.to_json())
    return profile


@router.put(
    "/customers/{customer_id}/consent",
    summary="Give or withdraw consent",
    description=(
        "For one category or one channel. The answer is the profile as stored and, per open send "
        "of that category, what the change did to it (`cancelled`: it will not go out; "
        "`too_late`: its hand-over to a provider had begun)."
    ),
    responses={404: {"description": "No such customer."}, 410: {"description": "The customer was erased."}},
)
def put_consent(
    request: Request, customer_id: CustomerId, body: Annotated[ConsentIn, Body()]
) -> dict[str, Any]:
    try:
        change = outreach_of(request).set_consent(
            customer_id, category=body.category, channel=body.channel, allowed=body.allowed,
            source=body.source,
        )  # fmt: skip
    except (CustomerErased, UnknownCustomer, InputError) as exc:
        raise _refused(customer_id, exc) from None
    what = body.category or body.channel
    _audit(request, "consent", customer_id, what=what, allowed=body.allowed)
    return {
        "customer": json.loads(change.customer.to_json()),
        "sends": [s.to_mapping() for s in change.stops],
    }


@router.get(
    "/customers/{customer_id}/export",
    summary="Export everything held about a customer",
    description="The profile, consent and its history, every send with its history, answers, dead letters.",
    responses={404: {"description": "No such customer."}, 410: {"description": "The customer was erased."}},
)
def export_customer(request: Request, customer_id: CustomerId) -> dict[str, Any]:
    try:
        exported = outreach_of(request).export_customer(customer_id)
    except (CustomerErased, UnknownCustomer) as exc:
        raise _refused(customer_id, exc) from None
    _audit(request, "export", customer_id)
    return exported


@router.delete(
    "/customers/{customer_id}",
    summary="Erase a customer",
    description=(
        "Removes everything about the customer and stops every send not yet at its provider; only a "
        "hashed tombstone stays, so later events for the id are refused."
    ),
    responses={404: {"description": "No such customer."}},
)
def erase_customer(request: Request, customer_id: CustomerId) -> dict[str, Any]:
    try:
        removed = outreach_of(request).erase_customer(customer_id)
    except (CustomerErased, UnknownCustomer) as exc:
        raise _refused(customer_id, exc) from None
    # The audit keeps what the tombstone keeps: the hash, not the id.
    _audit(request, "erase", outreach_of(request).customers.tombstone(customer_id), **removed)
    return {"erased": removed}
