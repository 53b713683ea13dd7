"""What every transport receives and must do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


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


@runtime_checkable
class Transport(Protocol):
    def send(self, delivery: Delivery) -> str:
        """Hand the message over; returns the provider's reference.

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
