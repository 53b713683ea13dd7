"""Survey pages: the one-click answer ``/s/{token}`` and its comment form."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from ...customers.profile import Customer
from ...errors import CustomerErased, InputError, UnknownCustomer
from ...links import PATHS, expiry_of
from ...surveys.answers import MAX_COMMENT, answer_links
from ...surveys.scales import SCALES
from ..security import NonceError, consume_nonce, issue_nonce
from .shared import PageError, outreach_of, pages_of, path_of
from .tokens import read, require_customer

router = APIRouter()


def _survey_fields(fields: dict[str, Any]) -> tuple[str, str, str, object]:
    """Send id, customer id, survey kind and the score as the token carries it (checked later)."""
    send_id, customer_id, kind, score = fields.get("s"), fields.get("c"), fields.get("k"), fields.get("v")
    if not (isinstance(send_id, str) and isinstance(customer_id, str) and isinstance(kind, str)):
        raise PageError("invalid")
    if not (send_id and customer_id):
        raise PageError("invalid")
    return send_id, customer_id, kind, score


def _check_score(kind: str, score: object, customer: Customer) -> int:
    scale = SCALES.get(kind)
    if scale is None or not isinstance(score, int) or isinstance(score, bool) or score not in scale.scores():
        raise PageError("score", customer)
    return score


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
    outreach = outreach_of(request)
    scale = SCALES[kind]
    expires = expiry_of(token) or outreach.clock.now() + timedelta(days=outreach.settings.survey_link_days)
    # An empty base URL gives links relative to this server: /s/<token>.
    links = answer_links(outreach.settings.secret, "", send_id, customer.id, kind, expires)
    for link in links:
        link["url"] = path_of(request, link["url"])
    answer = outreach.surveys.get(send_id)
    return pages_of(request).render(
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
        comment_action=path_of(request, PATHS["answer"] + token + "/comment"),
        max_comment=MAX_COMMENT,
        problem=problem,
    )


@router.get(
    PATHS["answer"] + "{token}",
    response_class=HTMLResponse,
    name="survey_answer",
    summary="Answer a survey with one click",
    description=(
        "Records the score signed into an `answer` token (one answer per send: another score "
        "replaces it) and shows a thank-you page with the other scores and a comment form."
    ),
)
def survey_answer(request: Request, token: str) -> HTMLResponse:
    """A GET that records: the link in the message is the answer, so it must be safe to repeat."""
    outreach = outreach_of(request)
    _, fields = read(outreach, token, "answer")
    send_id, customer_id, kind, raw_score = _survey_fields(fields)
    customer = require_customer(outreach, customer_id)
    score = _check_score(kind, raw_score, customer)
    current = outreach.surveys.get(send_id)
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
    PATHS["answer"] + "{token}/comment",
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
    """The nonce is spent only by a comment that is kept: an empty one shows the form again."""
    outreach = outreach_of(request)
    _, fields = read(outreach, token, "answer")
    send_id, customer_id, _, _ = _survey_fields(fields)
    customer = require_customer(outreach, customer_id)
    answer = outreach.surveys.get(send_id)
    if answer is None or answer.customer_id != customer_id:
        raise PageError("unknown_send", customer)
    if not comment.strip():
        return _survey_page(request, token, send_id, customer, answer.kind, answer.score, status=400,
                            problem=True)  # fmt: skip
    try:
        consume_nonce(
            outreach.client,
            outreach.keys,
            outreach.settings.secrets,
            nonce,
            send_id,
            outreach.clock.now(),
        )
    except NonceError as exc:
        kind_of_error = {"expired": "form_expired", "replayed": "replayed"}.get(exc.problem, "invalid")
        raise PageError(kind_of_error, customer) from None
    outreach.surveys.comment(send_id, comment)
    return pages_of(request).render(request, "thanks.html", customer=customer)
