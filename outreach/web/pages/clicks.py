"""Tracked links ``/c/{token}`` (record the click, redirect to the signed target) and the open
image ``/o/{token}`` (a 1x1 GIF, for the categories that opt in).

The redirect goes only to the URL the token signed: no query parameter or path can change it,
so the route is no open redirect, and a bad or expired token gets a small page, never a
redirect. What only looks at a link (a HEAD request, a browser's prefetch) is answered without
counting as a click.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ...errors import InputError
from ...links import PATHS, target_problem
from .shared import PageError, outreach_of
from .tokens import read

logger = logging.getLogger(__name__)
router = APIRouter()

#: A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: Characters a redirect keeps as they are (the rest of a non-ASCII URL is percent-encoded).
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~-._"


def _prefetch(request: Request) -> bool:
    """A request that only looks (HEAD) or that a browser makes ahead of a click (prefetch)."""
    if request.method != "GET":
        return True
    purpose = " ".join(request.headers.get(name, "") for name in ("sec-purpose", "purpose", "x-moz"))
    return "prefetch" in purpose.lower() or "preview" in purpose.lower()


def _fields(fields: dict[str, Any]) -> tuple[str, str]:
    send_id, customer_id = fields.get("s"), fields.get("c")
    if not (isinstance(send_id, str) and send_id and isinstance(customer_id, str) and customer_id):
        raise PageError("invalid")
    return send_id, customer_id


def _record(request: Request, send_id: str, customer_id: str, url: str, kind: str) -> None:
    """Keep the click (or open); one that cannot be kept (the send or its customer erased) is not."""
    outreach = outreach_of(request)
    customer = outreach.customers.get(customer_id)
    if customer is None:
        return  # erased or unknown: nothing is kept about them
    try:
        outreach.clicks.record(send_id, customer_id, url, kind, zone=customer.zone)
    except InputError as exc:
        logger.info("%s of send %s not kept: %s", kind, send_id, exc.problem)


_CLICK_DOC = (
    "Records a click of the send signed into a `click` token and answers 302 to the URL it "
    "signed. A forged token gets 400, an expired one 410: a page, never a redirect."
)


def _follow(request: Request, token: str) -> Response:
    outreach = outreach_of(request)
    _, fields = read(outreach, token, "click")
    send_id, customer_id = _fields(fields)
    url = fields.get("u")
    if not isinstance(url, str) or target_problem(url) is not None:
        raise PageError("invalid")
    if not _prefetch(request):
        _record(request, send_id, customer_id, url, "click")
    return RedirectResponse(quote(url, safe=_URL_SAFE), status_code=302)


@router.get(
    PATHS["click"] + "{token}",
    name="tracked_link",
    summary="Follow a tracked link",
    description=_CLICK_DOC + " A prefetch (`Sec-Purpose: prefetch`) is answered alike without counting.",
    response_class=RedirectResponse,
    status_code=302,
)
def tracked_link(request: Request, token: str) -> Response:
    return _follow(request, token)


@router.head(
    PATHS["click"] + "{token}",
    name="tracked_link_head",
    summary="Look at a tracked link",
    description="The same 302 as the GET (400 or 410 for a bad token), and no click is recorded.",
    response_class=RedirectResponse,
    status_code=302,
)
def tracked_link_head(request: Request, token: str) -> Response:
    return _follow(request, token)


@router.get(
    PATHS["open"] + "{token}",
    name="open_pixel",
    summary="The open image",
    description=(
        "A transparent 1x1 GIF; records an open of the send signed into an `open` token (only "
        "categories with `open_pixel = true` put one in their emails). A bad token gets the same "
        "image with 400 (410 expired), and nothing is recorded."
    ),
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}}},
)
def open_pixel(request: Request, token: str) -> Response:
    outreach = outreach_of(request)
    try:
        _, fields = read(outreach, token, "open")
        send_id, customer_id = _fields(fields)
    except PageError as exc:
        return Response(PIXEL, status_code=exc.status, media_type="image/gif")
    if not _prefetch(request):
        _record(request, send_id, customer_id, "", "open")
    return Response(PIXEL, media_type="image/gif")
