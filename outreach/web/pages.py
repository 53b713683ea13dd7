"""Customer pages: survey answers and comments, unsubscribe, preferences.

Every page is plain HTML (no JavaScript), rendered in the customer's locale and
register from ``templates/_web/``; a page reached without a known customer
negotiates ``Accept-Language`` against the shipped locales. Links are
authorised by the signed token in their path (``outreach.links``).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from babel import Locale
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ..app import Outreach
from ..customers.profile import Customer
from ..errors import CustomerErased, InputError, UnknownCustomer
from ..links import InvalidToken, make_token, read_token
from ..localization.locales import babel_locale, locale_chain
from ..surveys.answers import MAX_COMMENT, SCALES, answer_links
from .security import NonceError, consume_nonce, issue_nonce

#: Categories a customer may switch on and off (transactional is always on).
PAGE_CATEGORIES = ("lifecycle", "survey", "marketing")
#: Channels shown on the preference page.
PAGE_CHANNELS = ("email", "sms", "whatsapp")
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
#: A BCP 47 language tag as Accept-Language carries it (nothing else reaches Babel).
_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")
#: "Now" far in the past: reads an expired token's fields (its signature is still checked).
_EPOCH = datetime(1970, 1, 2, tzinfo=UTC)

router = APIRouter(tags=["Customer pages"])


class PageError(Exception):
    """Ends a page request with the localized error page of its kind (see STATUS)."""

    def __init__(self, kind: str, customer: Customer | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        #: Localizes the page when known.
        self.customer = customer
        self.status = STATUS.get(kind, 400)


# -- locales ---------------------------------------------------------------------------------


def _preferences(header: str | None) -> list[str]:
    """Language tags from Accept-Language, best first (ties keep their order)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        if not _TAG.fullmatch(tag):
            continue  # "*" and anything that is not a language tag
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(ranked)][:20]


def negotiate(header: str | None, shipped: tuple[str, ...], default: str) -> str:
    """The shipped locale that best matches an Accept-Language header (``babel.Locale.negotiate``).

    Each wanted tag is tried as given, then with its likely script (``zh_CN`` → ``zh_Hans``),
    then as any shipped locale of its language (``pt`` → ``pt_BR``).
    """
    wanted: list[str] = []
    for tag in _preferences(header):
        wanted.append(tag)
        try:
            parsed = Locale.parse(tag)
        except Exception:  # noqa: BLE001 - babel raises several kinds for a bad tag
            continue
        if parsed.script:
            wanted.append(f"{parsed.language}_{parsed.script}")
        for candidate in shipped:
            if candidate.split("_")[0] == parsed.language:
                candidate_script = _script(candidate)
                if candidate_script in (None, parsed.script):
                    wanted.append(candidate)
    found = Locale.negotiate(wanted, list(shipped), sep="_")
    if found is None:
        return default
    # Back to the shipped tag's own spelling (the catalogs are named by it).
    return next((tag for tag in shipped if _same(tag, found)), default)


def _same(tag: str, locale: Locale) -> bool:
    try:
        return str(Locale.parse(tag)) == str(locale)
    except Exception:  # noqa: BLE001
        return False


def _script(tag: str) -> str | None:
    try:
        return Locale.parse(tag).script
    except Exception:  # noqa: BLE001
        return None


# -- rendering ---------------------------------------------------------------------------------


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
        tag, register = self.locale_for(request, customer)
        babel = babel_locale(tag, self.outreach.locales.default)
        values = {
            **context,
            "lang": str(babel).replace("_", "-"),
            "direction": "rtl" if babel.character_order == "right-to-left" else "ltr",
            "register": register,
            "now": self.outreach.clock.now(),
            "_locale": babel,
            "_zone": customer.zone if customer is not None else "UTC",
        }
        template = self.outreach.renderer.environment(tag).get_template(f"_web/{name}")
        response = HTMLResponse(template.render(values), status_code=status)
        response.headers["content-language"] = values["lang"]
        return response

    def error(
        self, request: Request, kind: str, customer: Customer | None = None, status: int | None = None
    ) -> HTMLResponse:
        """The localized error page for an error kind (see STATUS), with its status code."""
        code = status or STATUS.get(kind, 400)
        return self.render(request, "error.html", customer=customer, status=code, kind=kind, code=code)


def pages(request: Request) -> Pages:
    return request.app.state.pages


def _outreach(request: Request) -> Outreach:
    return request.app.state.outreach


def _path(request: Request, path: str) -> str:
    return request.scope.get("root_path", "").rstrip("/") + path


# -- tokens and customers ----------------------------------------------------------------------


def _expiry(token: str) -> datetime | None:
    """The expiry inside a token already verified by ``read_token``."""
    body = token.split(".", 1)[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    exp = payload.get("exp")
    return datetime.fromtimestamp(exp, tz=UTC) if isinstance(exp, int | float) else None


def _customer_or_none(outreach: Outreach, customer_id: object) -> Customer | None:
    return (
        outreach.customers.profiles.get(customer_id) if isinstance(customer_id, str) and customer_id else None
    )


def read(outreach: Outreach, token: str, *purposes: str) -> tuple[str, dict[str, Any]]:
    """(purpose, fields) of a valid token; a PageError for a forged, misdirected or expired one."""
    secret = outreach.settings.secret
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
    if not isinstance(customer_id, str) or not customer_id:
        raise PageError("invalid")
    try:
        return outreach.customers.profiles.require(customer_id)
    except CustomerErased:
        raise PageError("erased") from None
    except UnknownCustomer:
        raise PageError("unknown_customer") from None


def _survey_fields(fields: dict[str, Any]) -> tuple[str, str, str, int]:
    send_id, customer_id, kind, score = fields.get("s"), fields.get("c"), fields.get("k"), fields.get("v")
    if not all(isinstance(x, str) and x for x in (send_id, customer_id)) or not isinstance(kind, str):
        raise PageError("invalid")
    return send_id, customer_id, kind, score


def _check_score(kind: str, score: object, customer: Customer) -> int:
    scale = SCALES.get(kind)
    if scale is None or not isinstance(score, int) or isinstance(score, bool) or score not in scale.scores():
        raise PageError("score", customer)
    return score


def preferences_url(request: Request, outreach: Outreach, customer_id: str) -> str:
    expires = outreach.clock.now() + timedelta(days=outreach.settings.link_days)
    token = make_token(outreach.settings.secret, "preferences", {"c": customer_id}, expires)
    return _path(request, f"/p/{token}")


# -- surveys ------------------------------------------------------------------------------------


def _survey_page(
    request: Request,
    token: str,
    send_id: str,
    customer: Customer,
    kind: str,
    score: int,
    *,
    status: int = 200,
    problem: bool = False,
) -> HTMLResponse:
    outreach = _outreach(request)
    scale = SCALES[kind]
    expires = _expiry(token) or outreach.clock.now() + timedelta(days=outreach.settings.survey_link_days)
    # An empty base URL gives links relative to this server: /s/<token>.
    links = answer_links(outreach.settings.secret, "", send_id, customer.id, kind, expires)
    for link in links:
        link["url"] = _path(request, link["url"])
    answer = outreach.surveys.answers.get(send_id)
    return pages(request).render(
        request,
        "survey.html",
        customer=customer,
        status=status,
        kind=kind,
        score=score,
        low=scale.low,
        high=scale.high,
        links=links,
        nonce=issue_nonce(outreach.settings.secret, send_id, outreach.clock.now()),
        comment=answer.comment if answer else "",
        comment_action=_path(request, f"/s/{token}/comment"),
        max_comment=MAX_COMMENT,
        problem=problem,
    )


@router.get(
    "/s/{token}",
    response_class=HTMLResponse,
    name="survey_answer",
    summary="Answer a survey with one click",
    description=(
        "Records the score signed into an `answer` token (one answer per send: another score "
        "replaces it) and shows a thank-you page with the other scores and a comment form."
    ),
)
def survey_answer(request: Request, token: str) -> HTMLResponse:
    outreach = _outreach(request)
    _, fields = read(outreach, token, "answer")
    send_id, customer_id, kind, raw_score = _survey_fields(fields)
    customer = require_customer(outreach, customer_id)
    score = _check_score(kind, raw_score, customer)
    current = outreach.surveys.answers.get(send_id)
    # A reload or a link scanner fetching the same link again changes nothing and emits nothing.
    if current is None or current.score != score or current.customer_id != customer_id:
        try:
            outreach.answer_survey(send_id, customer_id, kind, score)
        except CustomerErased:
            raise PageError("erased") from None
        except UnknownCustomer:
            raise PageError("unknown_customer") from None
        except InputError as exc:
            raise PageError("score" if exc.field == "score" else "unknown_send", customer) from None
    return _survey_page(request, token, send_id, customer, kind, score)


@router.post(
    "/s/{token}/comment",
    response_class=HTMLResponse,
    name="survey_comment",
    summary="Add a comment to a survey answer",
    description="Keeps the comment with the answer; the form's one-time nonce cannot be sent twice.",
)
def survey_comment(
    request: Request,
    token: str,
    comment: Annotated[str, Form()] = "",
    nonce: Annotated[str, Form()] = "",
) -> HTMLResponse:
    outreach = _outreach(request)
    _, fields = read(outreach, token, "answer")
    send_id, customer_id, _, _ = _survey_fields(fields)
    customer = require_customer(outreach, customer_id)
    answer = outreach.surveys.answers.get(send_id)
    if answer is None or answer.customer_id != customer_id:
        raise PageError("unknown_send", customer)
    if not comment.strip():
        return _survey_page(request, token, send_id, customer, answer.kind, answer.score, status=400,
                            problem=True)  # fmt: skip
    try:
        consume_nonce(
            outreach.client,
            outreach.store.keys,
            outreach.settings.secret,
            nonce,
            send_id,
            outreach.clock.now(),
        )
    except NonceError as exc:
        kind_of_error = {"expired": "form_expired", "replayed": "replayed"}.get(exc.problem, "invalid")
        raise PageError(kind_of_error, customer) from None
    outreach.surveys.answers.comment(send_id, comment)
    return pages(request).render(request, "thanks.html", customer=customer)


# -- unsubscribe --------------------------------------------------------------------------------


def _unsubscribe_target(request: Request, token: str) -> tuple[Customer, str]:
    outreach = _outreach(request)
    _, fields = read(outreach, token, "unsubscribe")
    category = fields.get("k")
    customer = require_customer(outreach, fields.get("c"))
    if category not in PAGE_CATEGORIES:
        raise PageError("invalid", customer)
    return customer, category


@router.get(
    "/u/{token}",
    response_class=HTMLResponse,
    name="unsubscribe_page",
    summary="Explain what unsubscribing stops",
    description="Shows the category named in the `unsubscribe` token and a button that confirms by POST.",
)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    customer, category = _unsubscribe_target(request, token)
    outreach = _outreach(request)
    return pages(request).render(
        request,
        "unsubscribe.html",
        customer=customer,
        done=False,
        category=category,
        action=_path(request, f"/u/{token}"),
        preferences_url=preferences_url(request, outreach, customer.id),
    )


@router.post(
    "/u/{token}",
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
    customer, category = _unsubscribe_target(request, token)
    outreach = _outreach(request)
    # Only a change is recorded: a repeated click (or a retried one-click POST) emits nothing new.
    if customer.consent.get(category) is not False:
        customer = outreach.set_consent(
            customer.id, category=category, allowed=False, source="unsubscribe link"
        ).customer
    return pages(request).render(
        request,
        "unsubscribe.html",
        customer=customer,
        done=True,
        category=category,
        action=_path(request, f"/u/{token}"),
        preferences_url=preferences_url(request, outreach, customer.id),
    )


# -- preferences -------------------------------------------------------------------------------


def _preference_page(
    request: Request, token: str, customer: Customer, *, saved: bool = False
) -> HTMLResponse:
    outreach = _outreach(request)
    return pages(request).render(
        request,
        "preferences.html",
        customer=customer,
        saved=saved,
        action=_path(request, f"/p/{token}"),
        categories=[
            {"name": c, "allowed": outreach.policy.decide.allows(customer, c)} for c in PAGE_CATEGORIES
        ],
        channels=[
            {"name": c, "allowed": customer.channel_consent.get(c) is not False} for c in PAGE_CHANNELS
        ],
    )


@router.get(
    "/p/{token}",
    response_class=HTMLResponse,
    name="preferences_page",
    summary="Message preferences",
    description=(
        "Checkboxes per category and channel showing current consent; takes a `preferences` "
        "or an `unsubscribe` token."
    ),
)
def preferences_page(request: Request, token: str) -> HTMLResponse:
    outreach = _outreach(request)
    _, fields = read(outreach, token, "preferences", "unsubscribe")
    return _preference_page(request, token, require_customer(outreach, fields.get("c")))


@router.post(
    "/p/{token}",
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
    outreach = _outreach(request)
    _, fields = read(outreach, token, "preferences", "unsubscribe")
    customer = require_customer(outreach, fields.get("c"))
    wanted_categories, wanted_channels = set(category), set(channel)
    for name in PAGE_CATEGORIES:
        wanted = name in wanted_categories
        if wanted != outreach.policy.decide.allows(customer, name):
            customer = outreach.set_consent(
                customer.id, category=name, allowed=wanted, source="preference page"
            ).customer
    for name in PAGE_CHANNELS:
        wanted = name in wanted_channels
        if wanted != (customer.channel_consent.get(name) is not False):
            customer = outreach.set_consent(
                customer.id, channel=name, allowed=wanted, source="preference page"
            ).customer
    return _preference_page(request, token, customer, saved=True)
