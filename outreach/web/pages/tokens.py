"""The signed tokens in page links, and the customers they name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request

from ...app import Outreach
from ...customers.profile import Customer
from ...errors import CustomerErased, UnknownCustomer
from ...links import PATHS, InvalidToken, preferences_token, read_token
from .shared import PageError, path_of

#: "Now" far in the past: reads an expired token's fields (its signature is still checked).
_EPOCH = datetime(1970, 1, 2, tzinfo=UTC)


def _customer_or_none(outreach: Outreach, customer_id: object) -> Customer | None:
    return outreach.customers.get(customer_id) if isinstance(customer_id, str) and customer_id else None


def read(outreach: Outreach, token: str, *purposes: str) -> tuple[str, dict[str, Any]]:
    """(purpose, fields) of a valid token; a PageError for a forged, misdirected or expired one."""
    secret = outreach.settings.secrets
    now = outreach.clock.now()
    for purpose in purposes:
        try:
            return purpose, read_token(secret, purpose, token, now)
        except InvalidToken as exc:
            if exc.problem == "expired":
                # Genuine but too old: localize the page for the customer it was made for.
                fields = read_token(secret, purpose, token, _EPOCH)
                raise PageError("expired", _customer_or_none(outreach, fields.get("c"))) from None
    raise PageError("invalid")


def require_customer(outreach: Outreach, customer_id: object) -> Customer:
    """The customer a token names; a PageError when there is none, or no longer one."""
    if not isinstance(customer_id, str) or not customer_id:
        raise PageError("invalid")
    try:
        return outreach.customers.require(customer_id)
    except CustomerErased:
        raise PageError("erased") from None
    except UnknownCustomer:
        raise PageError("unknown_customer") from None


def preferences_url(request: Request, outreach: Outreach, customer_id: str) -> str:
    """A fresh link to the customer's preference page (the unsubscribe page offers it)."""
    expires = outreach.clock.now() + timedelta(days=outreach.settings.link_days)
    token = preferences_token(outreach.settings.secret, customer_id, expires)
    return path_of(request, PATHS["preferences"] + token)
