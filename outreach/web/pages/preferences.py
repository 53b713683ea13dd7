"""The preference page ``/p/{token}``: consent per category and channel, shown and saved."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ...customers.profile import Customer
from ...links import PATHS
from .shared import outreach_of, page_categories, page_channels, pages_of, path_of
from .tokens import read, require_customer

router = APIRouter()


def _preference_page(
    request: Request, token: str, customer: Customer, *, saved: bool = False
) -> HTMLResponse:
    outreach = outreach_of(request)
    return pages_of(request).render(
        request,
        "preferences.html",
        customer=customer,
        saved=saved,
        action=path_of(request, PATHS["preferences"] + token),
        categories=[{"name": c, "allowed": outreach.policy.allows(customer, c)} for c in page_categories()],
        channels=[
            {"name": c, "allowed": customer.channel_consent.get(c) is not False} for c in page_channels()
        ],
    )


@router.get(
    PATHS["preferences"] + "{token}",
    response_class=HTMLResponse,
    name="preferences_page",
    summary="Message preferences",
    description=(
        "Checkboxes per category and channel showing current consent; takes a `preferences` "
        "or an `unsubscribe` token."
    ),
)
def preferences_page(request: Request, token: str) -> HTMLResponse:
    """An unsubscribe link also opens it, so a customer can narrow instead of leaving."""
    outreach = outreach_of(request)
    _, fields = read(outreach, token, "preferences", "unsubscribe")
    return _preference_page(request, token, require_customer(outreach, fields.get("c")))


@router.post(
    PATHS["preferences"] + "{token}",
    response_class=HTMLResponse,
    name="preferences_save",
    summary="Save message preferences",
    description="Records each changed category and channel with source `preference page`.",
)
def preferences_save(
    request: Request,
    token: str,
    category: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies form defaults
    channel: Annotated[list[str], Form()] = [],  # noqa: B006
) -> HTMLResponse:
    """Only what changed is recorded, so saving an untouched form leaves the history alone."""
    outreach = outreach_of(request)
    _, fields = read(outreach, token, "preferences", "unsubscribe")
    customer = require_customer(outreach, fields.get("c"))
    wanted_categories, wanted_channels = set(category), set(channel)
    for name in page_categories():
        wanted = name in wanted_categories
        if wanted != outreach.policy.allows(customer, name):
            customer = outreach.set_consent(
                customer.id, category=name, allowed=wanted, source="preference page"
            ).customer
    for name in page_channels():
        wanted = name in wanted_channels
        if wanted != (customer.channel_consent.get(name) is not False):
            customer = outreach.set_consent(
                customer.id, channel=name, allowed=wanted, source="preference page"
            ).customer
    return _preference_page(request, token, customer, saved=True)
