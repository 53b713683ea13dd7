"""``/v1/webhooks/{channel}/{provider}``: what providers post back, in their own formats.

No API token here: a provider cannot send one. Each provider kind checks the request its own way
(Twilio's ``X-Twilio-Signature``, Meta's ``X-Hub-Signature-256``, SNS certificates, SendGrid's
ECDSA signature, Postmark's Basic credentials...) before anything is read; a request that does
not verify is refused with 401 and changes nothing. Statuses find their send by the provider's
message id recorded at the hand-over; a repeated or out-of-order status changes nothing
(``outreach.delivery.receipts``). Answers 200 with counts, so providers do not retry what was
understood; a status for a message Outreach does not know is counted as ``unknown``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from ...channels.registry import PROVIDERS
from ...channels.webhooks import BadSignature, TryLater, WebhookAnswer, WebhookRequest
from ...settings import DEFAULT_PUBLIC_URL
from .auth import outreach_of
from .errors import ApiError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")

Name = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


def _request(request: Request, body: bytes) -> WebhookRequest:
    """The request as the provider made it, with the public URL it called (signatures cover it)."""
    outreach = outreach_of(request)
    url = outreach.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    headers = {name.lower(): value for name, value in request.headers.items()}
    # Where the public URL is configured, only it counts (the Host header is the caller's to set);
    # on the default, the URL as received counts too (a development server behind no proxy).
    received = str(request.url) if outreach.settings.public_url == DEFAULT_PUBLIC_URL else ""
    return WebhookRequest(request.method, url, headers, dict(request.query_params), body, received)


_DOC = {
    "tags": ["Webhooks"],
    "responses": {
        401: {"description": "The request is not signed by the provider."},
        503: {"description": "The request could not be checked now; the provider sends it again."},
        404: {"description": "No such channel or provider, or it takes no webhooks."},
        400: {"description": "The body is not what the provider sends."},
    },
}


@router.post(
    "/webhooks/{channel}/{provider}",
    summary="Receive a provider's delivery statuses, bounces, complaints and inbound messages",
    description=(
        "Register this URL with the provider (`<public_url>/v1/webhooks/<channel>/<provider>`, the "
        "provider's name in channels.toml). Verified the provider's own way (docs/CHANNELS.md)."
    ),
    **_DOC,  # type: ignore[arg-type]
)
async def provider_webhook(request: Request, channel: Name, provider: Name) -> Any:
    return await _receive(request, channel, provider)


@router.get(
    "/webhooks/{channel}/{provider}",
    summary="Answer a provider's subscription check (Meta's hub.challenge) or a GET callback",
    **_DOC,  # type: ignore[arg-type]
)
async def provider_webhook_check(request: Request, channel: Name, provider: Name) -> Any:
    return await _receive(request, channel, provider)


async def _receive(request: Request, channel: str, provider: str) -> Any:
    outreach = outreach_of(request)
    config = outreach.channels.channels.get(channel)
    found = config.provider(provider) if config is not None else None
    if found is None:
        raise ApiError(404, f"no provider {provider!r} on channel {channel!r} (channels.toml)")
    kind = PROVIDERS[found.kind]
    if kind.webhook is None:
        raise ApiError(404, f"{found.kind} sends no webhooks")
    incoming = _request(request, await request.body())
    try:
        answer: WebhookAnswer = await run_in_threadpool(kind.webhook, found.settings, incoming)
    except TryLater as exc:
        logger.warning("webhook %s/%s not checked now: %s", channel, provider, exc)
        return Response("try again later", status_code=503, headers={"Retry-After": "10"})
    except BadSignature as exc:
        # Why, in the log only: the caller learns nothing about what was checked.
        logger.warning("webhook %s/%s refused: %s", channel, provider, exc)
        raise ApiError(401, f"not signed by {provider}") from None
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("webhook %s/%s unreadable: %s: %s", channel, provider, type(exc).__name__, exc)
        raise ApiError(400, f"not a {found.kind} webhook") from None
    counts = await run_in_threadpool(outreach.receipts.apply, answer.events, channel, provider)
    if answer.reply is not None:
        reply = answer.reply
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
    return {"channel": channel, "provider": provider, "events": len(answer.events), "results": counts}
