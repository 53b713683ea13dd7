"""What every customer page shares: the error kinds, the localized rendering, request helpers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from ...app import Outreach
from ...customers.profile import Customer
from ...localization.locales import locale_chain
from ...registry import CHANNELS, consentable
from .negotiate import negotiate


def page_categories() -> tuple[str, ...]:
    """Categories a customer may switch on and off (transactional ones are always on)."""
    return consentable()


def page_channels() -> tuple[str, ...]:
    """Channels shown on the preference page."""
    return CHANNELS.where(lambda c: c.preference)


#: Error kinds and their HTTP status.
STATUS = {
    "invalid": 400,
    "score": 400,
    "replayed": 400,
    "unknown_customer": 404,
    "unknown_send": 404,
    "not_found": 404,
    "expired": 410,
    "form_expired": 410,
    "erased": 410,
    "unavailable": 503,
}


class PageError(Exception):
    """Ends a page request with the localized error page of its kind (see STATUS)."""

    def __init__(self, kind: str, customer: Customer | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        #: Localizes the page when known.
        self.customer = customer
        self.status = STATUS.get(kind, 400)


class Pages:
    """Renders the page templates for one application."""

    def __init__(self, outreach: Outreach) -> None:
        self.outreach = outreach

    def locale_for(self, request: Request, customer: Customer | None) -> tuple[str, str]:
        """(locale tag, register): the customer's own, else negotiated from the request."""
        if customer is not None:
            tag = customer.locale
            return tag, self.outreach.renderer.register_for(customer, tag)
        locales = self.outreach.locales
        tag = negotiate(request.headers.get("accept-language"), locales.shipped, locales.default)
        return tag, locales.settings_for(locale_chain(tag, locales.default)).formality

    def render(
        self,
        request: Request,
        name: str,
        *,
        customer: Customer | None = None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """The page ``_web/<name>`` in the customer's (or the request's) locale and register."""
        tag, register = self.locale_for(request, customer)
        html, lang = self.outreach.renderer.page(
            tag,
            name,
            register=register,
            gender=customer.grammatical_gender if customer is not None else None,
            zone=customer.zone if customer is not None else "UTC",
            now=self.outreach.clock.now(),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["content-language"] = lang
        return response

    def error(
        self, request: Request, kind: str, customer: Customer | None = None, status: int | None = None
    ) -> HTMLResponse:
        """The localized error page for an error kind (see STATUS), with its status code."""
        code = status or STATUS.get(kind, 400)
        return self.render(request, "error.html", customer=customer, status=code, kind=kind, code=code)


def pages_of(request: Request) -> Pages:
    """The application's renderer (made once by ``create_app``)."""
    return request.app.state.pages


def outreach_of(request: Request) -> Outreach:
    """The ``Outreach`` the application was created for."""
    return request.app.state.outreach


def path_of(request: Request, path: str) -> str:
    """A path on this server, behind whatever prefix a proxy mounts it under (``root_path``)."""
    return request.scope.get("root_path", "").rstrip("/") + path
