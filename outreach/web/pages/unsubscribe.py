"""Unsubscribe pages ``/u/{token}``: what unsubscribing stops, and the confirming (or one-click) POST."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ...customers.profile import Customer
from ...links import PATHS
from .shared import PageError, outreach_of, page_categories, pages_of, path_of
from .tokens import preferences_url, read, require_customer

router = APIRouter()


def _unsubscribe_target(request: Request, token: str) -> tuple[Customer, str]:
    outreach = outreach_of(request)
    _, fields = read(outreach, token, "unsubscribe")
    category = fields.get("k")
    customer = require_customer(outreach, fields.get("c"))
    if category not in page_categories():
        raise PageError("invalid", customer)
    return customer, category


@router.get(
    PATHS["unsubscribe"] + "{token}",
    response_class=HTMLResponse,
    name="unsubscribe_page",
    summary="Explain what unsubscribing stops",
    description="Shows the category named in the `unsubscribe` token and a button that confirms by POST.",
)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """Changes nothing: link scanners fetch GETs, so only the POST unsubscribes."""
    customer, category = _unsubscribe_target(request, token)
    outreach = outreach_of(request)
    return pages_of(request).render(
        request,
        "unsubscribe.html",
        customer=customer,
        done=False,
        category=category,
        action=path_of(request, PATHS["unsubscribe"] + token),
        preferences_url=preferences_url(request, outreach, customer.id),
    )


@router.post(
    PATHS["unsubscribe"] + "{token}",
    response_class=HTMLResponse,
    name="unsubscribe",
    summary="Unsubscribe (also RFC 8058 one-click)",
    description=(
        "Withdraws consent for the token's category (source `unsubscribe link`). A mail client's "
        "one-click POST with the form body `List-Unsubscribe=One-Click` gets the same 200, never a redirect."
    ),
)
def unsubscribe(
    request: Request,
    token: str,
    one_click: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> HTMLResponse:
    """The button's POST and a mail client's one-click POST are answered alike."""
    customer, category = _unsubscribe_target(request, token)
    outreach = outreach_of(request)
    # Only a change is recorded: a repeated click (or a retried one-click POST) emits nothing new.
    if customer.consent.get(category) is not False:
        customer = outreach.set_consent(
            customer.id, category=category, allowed=False, source="unsubscribe link"
        ).customer
    return pages_of(request).render(
        request,
        "unsubscribe.html",
        customer=customer,
        done=True,
        category=category,
        action=path_of(request, PATHS["unsubscribe"] + token),
        preferences_url=preferences_url(request, outreach, customer.id),
    )
