"""What providers post back, in one shape: a provider kind's ``webhook`` checks the request's
signature the provider's own way and reads its body into statuses (of a message Outreach handed
over, by the provider's message id) and inbound messages (a customer writing to us).

The web process routes ``/v1/webhooks/{channel}/{provider}`` here; the delivery stage
(``outreach.delivery.receipts``) finds the send by the reference recorded at the hand-over.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

#: What a provider may say about a message, in Outreach's words. ``accepted`` (queued, sent to the
#: carrier), ``delivered`` and ``read`` are progress and never go backwards; ``bounced``,
#: ``failed`` and ``complained`` are recorded once each, whenever they come.
PROGRESS = ("accepted", "delivered", "read")
NEGATIVE = ("bounced", "failed", "complained")
STATUSES = PROGRESS + NEGATIVE
#: How far along a message a status is: progress never goes back (delivered after read is stale).
RANK = {"accepted": 0, "delivered": 1, "read": 2, "failed": 3, "bounced": 3, "complained": 4}


class BadSignature(Exception):
    """The request is not signed by the provider (or not with the configured secret)."""


class TryLater(Exception):
    """The request could not be checked now (the provider's signing certificate could not be
    fetched): answered 503, so the provider sends it again rather than dropping it."""


@dataclass(frozen=True)
class Status:
    """A provider's report on one message it was handed (``reference``: its message id)."""

    reference: str
    status: str
    detail: str = ""
    #: For ``failed``: whether the address itself is bad (suppress it) or it was a passing trouble.
    permanent: bool = True
    #: The address the report is about, where the provider names it (a bounce's Final-Recipient):
    #: a report about another address than the customer's suppresses nothing.
    recipient: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


@dataclass(frozen=True)
class Inbound:
    """A customer wrote to us on the channel (it opens WhatsApp's customer-service window)."""

    address: str
    text: str = ""
    #: When the customer wrote (UTC ms), where the provider says: a webhook repeated or delivered
    #: late opens the window only for what is left of it.
    at_ms: int | None = None


@dataclass(frozen=True)
class Blocked:
    """The customer blocked the account on the channel (LINE ``unfollow``, a Telegram bot kicked):
    nothing sent there reaches them, so the address is suppressed for the channel."""

    address: str


@dataclass(frozen=True)
class Unblocked:
    """The customer followed or unblocked the account again (LINE ``follow``, a Telegram bot
    restarted): a suppression their block set is lifted."""

    address: str


@dataclass(frozen=True)
class WebhookRequest:
    """The request as the provider made it: ``url`` is the public URL it called (signatures such as
    Twilio's cover it), header names are lowercase."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    #: The URL as this process received it (differs from ``url`` behind a proxy that rewrites it).
    received_url: str = ""

    @property
    def urls(self) -> list[str]:
        """The URLs a signature over the URL may have been made for: the public one first."""
        return [u for u in dict.fromkeys([self.url, self.received_url]) if u]

    def form(self) -> dict[str, str]:
        """The body as an ``application/x-www-form-urlencoded`` form (last value of a repeated key)."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass(frozen=True)
class Reply:
    """What to answer instead of the plain acknowledgement (a verification challenge)."""

    status: int = 200
    body: str = ""
    content_type: str = "text/plain"


@dataclass(frozen=True)
class WebhookAnswer:
    events: Sequence[Status | Inbound | Blocked | Unblocked] = field(default_factory=list)
    reply: Reply | None = None


def hmac_hex(secret: str, body: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode("utf-8"), body, getattr(hashlib, digest)).hexdigest()


def same(expected: str | bytes, given: str | None) -> bool:
    """Constant-time comparison of a signature with the one given (False when none was)."""
    if not given:
        return False
    a = expected.encode("utf-8") if isinstance(expected, str) else expected
    return hmac.compare_digest(a, given.strip().encode("utf-8", "replace"))
