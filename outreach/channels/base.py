"""What every transport receives and must do, and what makes a kind of provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

from ..registry import Entry

if TYPE_CHECKING:
    from .parsing import Where
    from .webhooks import WebhookAnswer, WebhookRequest


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt, fully rendered; ``send_id`` is the idempotency key."""

    send_id: str
    attempt: int
    customer_id: str
    journey: str
    step: str
    channel: str
    address: str
    locale: str
    subject: str | None
    text: str
    html: str | None
    utc: datetime
    local: datetime
    #: Message category (transactional, lifecycle, survey, marketing).
    category: str = "transactional"
    #: The customer's display name, for the To header.
    name: str = ""
    #: Where the customer can unsubscribe (https) and the mailto for it; None when
    #: the category cannot be unsubscribed from (transactional).
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    #: An approved template message to send instead of the text (WhatsApp outside the
    #: customer-service window; ``outreach.channels.approved``).
    template: ApprovedMessage | None = None
    #: The one provider an earlier attempt's lost answer ties this send to (a channel with several).
    provider: str | None = None


@dataclass(frozen=True)
class ApprovedMessage:
    """A provider-approved template: its name, the provider's language code and its ordered
    body parameters, already rendered for the customer."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Handed:
    """What a channel with several providers answers for a hand-over: which provider took the
    message, its reference there, and what happened to the providers tried before it."""

    provider: str
    reference: str
    notes: tuple[str, ...] = ()


@runtime_checkable
class Transport(Protocol):
    def send(self, delivery: Delivery) -> str | Handed:
        """Hand the message over; returns the provider's reference (or, for a channel with several
        providers, ``Handed``).

        Raises TransientChannelError (worth retrying) or PermanentChannelError.
        """


@runtime_checkable
class BatchTransport(Transport, Protocol):
    """A transport that hands many deliveries over at once (one write, one request)."""

    def send_many(self, deliveries: Sequence[Delivery]) -> list[str | Exception]:
        """Hand the deliveries over together; per delivery, the reference or the channel error.

        The deliverer records the outcomes of one call together: a crash between the
        two repeats the whole batch (with the same idempotency keys).
        """


#: A provider kind's settings (``SmtpConfig``, ``HttpConfig``).
S = TypeVar("S")


@dataclass(frozen=True, kw_only=True)
class ProviderKind(Entry, Generic[S]):
    """A kind of provider a channel hands its messages to (``outreach.channels.registry``).

    ``parse`` reads the provider's settings from its table of ``config/channels.toml`` and the
    environment (None: not configured); ``build`` makes the transport for those settings;
    ``webhook`` reads what the provider posts back (delivery statuses, bounces, inbound messages)
    after checking its signature (``outreach.channels.webhooks``).
    """

    #: The keys a channel's table may hold for this kind (besides ``rate`` and ``burst``).
    keys: frozenset[str]
    parse: Callable[[Where, Mapping[str, object], Mapping[str, str]], S | None]
    build: Callable[[str, S], Transport]
    #: The variables of the earlier form that override a channel's own keys: channel -> {key:
    #: variable} (a provider table's keys always have ``OUTREACH_<CHANNEL>_<PROVIDER>_<KEY>``).
    env: Callable[[str], dict[str, str]] = lambda channel: {}
    webhook: Callable[[S, WebhookRequest], WebhookAnswer] | None = None
    #: Whether the provider sends business-initiated messages only as approved templates
    #: (WhatsApp outside the 24-hour customer-service window).
    templates: bool = False
