"""Provider delivery receipts: what a bounce or a complaint does to the address, consent and history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..clock import Clock
from ..customers.profiles import Customers
from ..errors import InputError
from ..policy.decide import Policy
from ..registry import needs_consent
from ..schedule import Schedule, log_entry

#: Receipt statuses a provider may report.
RECEIPT_STATUSES = ("delivered", "bounced", "complained", "failed")


class UnknownSend(InputError):
    """The receipt names a send that does not exist (or no longer does)."""

    def __init__(self, send_id: str) -> None:
        super().__init__("send_id", send_id, "no such send")


class WrongChannel(InputError):
    """The receipt comes from another channel than the one that delivered the send."""

    def __init__(self, channel: str, send_id: str, sent_by: str) -> None:
        super().__init__("channel", channel, f"send {send_id} went by {sent_by}")


def record_receipt(
    channel: str,
    send_id: str,
    status: str,
    detail: str = "",
    *,
    schedule: Schedule,
    customers: Customers,
    policy: Policy,
    set_consent: Callable[..., Any],
    clock: Clock,
) -> dict[str, Any]:
    """Record a provider's receipt in the send's history and act on it.

    A bounce or a complaint means the address must not be used on the channel again; a
    complaint also withdraws consent for the send's category (through ``set_consent``, so
    the customer's open sends of it stop too). A repeated complaint changes nothing more.
    Raises UnknownSend or WrongChannel before anything is written.
    """
    send = schedule.get(send_id)
    if send is None:
        raise UnknownSend(send_id)
    if send.channel and send.channel != channel:
        raise WrongChannel(channel, send_id, send.channel)
    now = clock.now()
    text = f"{channel} reports {status}" + (f": {detail}" if detail else "")
    schedule.note(send_id, log_entry(now, "receipt", text, channel=channel, status=status, detail=detail))
    suppressed = withdrawn = None
    if status in ("bounced", "complained"):
        customer = customers.get(send.customer_id)
        address = customer.address(channel) if customer is not None else None
        if address:
            policy.suppress_address(channel, address)
            suppressed = address
            schedule.note(
                send_id,
                log_entry(now, "suppressed_address", f"{address} is suppressed for {channel} ({status})",
                          channel=channel),
            )  # fmt: skip
        category = send.category
        if (
            status == "complained"
            and customer is not None
            and needs_consent(category)
            and customer.consent.get(category) is not False
        ):
            set_consent(customer.id, category=category, allowed=False, source=f"{channel} complaint")
            withdrawn = category
            schedule.note(
                send_id,
                log_entry(now, "consent_withdrawn", f"consent for {category} withdrawn after a complaint",
                          category=category),
            )  # fmt: skip
    return {
        "send_id": send_id,
        "channel": channel,
        "status": status,
        "suppressed_address": suppressed,
        "consent_withdrawn": withdrawn,
    }
