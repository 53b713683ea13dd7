"""Provider delivery receipts: what a bounce or a complaint does to the address, consent and history."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from ..archive import Records
from ..channels.webhooks import PROGRESS, RANK, STATUSES, Blocked, Inbound, Status, Unblocked
from ..clock import Clock, to_ms
from ..customers.addresses import address_hash
from ..customers.profiles import Customers
from ..errors import InputError
from ..policy.decide import Policy
from ..registry import needs_consent
from ..schedule import log_entry
from ..store.keys import Keys

#: How long a customer's message keeps WhatsApp's customer-service window open.
SERVICE_WINDOW_SECONDS = 24 * 3600

#: Receipt statuses a provider may report (``outreach.channels.webhooks``).
RECEIPT_STATUSES = STATUSES


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
    sends: Records,
    customers: Customers,
    policy: Policy,
    set_consent: Callable[..., Any],
    clock: Clock,
    permanent: bool = True,
    provider: str | None = None,
    recipient: str = "",
) -> dict[str, Any]:
    """Record a provider's receipt in the send's history and act on it.

    Providers repeat callbacks and send them out of order: a status already recorded is a
    ``repeat``, and progress that comes after a later status (delivered after read, or after a
    bounce) is ``stale``; neither changes anything. A bounce, a complaint or a permanent failure
    means the address must not be used on the channel again; a complaint also withdraws consent
    for the send's category (through ``set_consent``, so the customer's open sends of it stop too).
    Raises UnknownSend or WrongChannel before anything is written.
    """
    send = sends.get(send_id)
    if send is None:
        raise UnknownSend(send_id)
    if send.channel and send.channel != channel:
        raise WrongChannel(channel, send_id, send.channel)
    now = clock.now()
    by = f"{channel} ({provider})" if provider else channel
    text = f"{by} reports {status}" + (f": {detail}" if detail else "")
    extra = {"provider": provider} if provider else {}
    entry = log_entry(now, "receipt", text, channel=channel, status=status, detail=detail, **extra)
    seen = f"{status}:permanent" if status == "failed" and permanent else status
    recorded = sends.receipt(send_id, channel, status, RANK[status], status in PROGRESS, entry, seen)
    result: dict[str, Any] = {
        "send_id": send_id,
        "channel": channel,
        "status": status,
        "recorded": recorded,
        "suppressed_address": None,
        "consent_withdrawn": None,
    }
    if recorded != "new" or not (status in ("bounced", "complained") or (status == "failed" and permanent)):
        return result
    customer = customers.get(send.customer_id)
    address = customer.address(channel) if customer is not None else None
    if address and recipient and not same_address(recipient, address):
        # About another address than the customer's (changed since, or a forged report): kept.
        note = f"the report is about {recipient}, not {address}: the address is kept"
        sends.note(send_id, log_entry(now, "receipt_ignored", note, channel=channel))
        return result
    if address:
        policy.suppress_address(channel, address)
        result["suppressed_address"] = address
        note = f"{address} is suppressed for {channel} ({status})"
        sends.note(send_id, log_entry(now, "suppressed_address", note, channel=channel))
    category = send.category
    if (
        status == "complained"
        and customer is not None
        and needs_consent(category)
        and customer.consent.get(category) is not False
    ):
        set_consent(customer.id, category=category, allowed=False, source=f"{channel} complaint")
        result["consent_withdrawn"] = category
        note = f"consent for {category} withdrawn after a complaint"
        sends.note(send_id, log_entry(now, "consent_withdrawn", note, category=category))
    return result


def same_address(one: str, other: str) -> bool:
    """Whether two addresses are one: case aside, and an email domain in either form
    (``bücher.de`` is ``xn--bcher-kva.de``)."""

    def plain(address: str) -> str:
        local, at, domain = address.strip().lower().rpartition("@")
        if not at:
            return address.strip().lower()
        with contextlib.suppress(UnicodeError):  # not a domain IDNA knows: compared as it is
            domain = domain.encode("idna").decode("ascii")
        return f"{local}@{domain}"

    return plain(one) == plain(other)


def open_window(client: Any, keys: Keys, secret: str, channel: str, address: str, at_ms: int) -> None:
    """A customer wrote to us at ``at_ms``: the channel's service window is open for 24 hours from
    then (a later message moves it on; an older one, delivered late, never moves it back)."""
    key = keys.window(channel, address_hash(address, secret))
    before = client.get(key)
    if before is not None and int(before) >= at_ms:
        return
    # The instant decides (``window_open``); the expiry only clears the key away a while after.
    client.set(key, at_ms, ex=SERVICE_WINDOW_SECONDS + 3600)


def close_window(client: Any, keys: Keys, secrets: Sequence[str], channel: str, address: str) -> None:
    """The provider says the window is closed (WhatsApp 131047): forget when the customer wrote."""
    client.delete(*(keys.window(channel, address_hash(address, s)) for s in secrets))


def window_open(client: Any, keys: Keys, secret: str, channel: str, address: str, now_ms: int) -> bool:
    """Whether the customer wrote to us on the channel within the service window."""
    opened = client.get(keys.window(channel, address_hash(address, secret)))
    return opened is not None and 0 <= now_ms - int(opened) < SERVICE_WINDOW_SECONDS * 1000


def apply_events(
    events: Sequence[Status | Inbound | Blocked | Unblocked],
    channel: str,
    provider: str,
    *,
    client: Any,
    keys: Keys,
    secret: str,
    record: Callable[..., dict[str, Any]],
    find: Callable[[str, str, str], str | None],
    suppress: Callable[[str, str], None],
    now_ms: int,
    unsuppress: Callable[[str, str], None] | None = None,
) -> dict[str, int]:
    """What a provider's webhook said, applied: statuses to their sends (``record``: a bound
    ``record_receipt``; ``find``: the send of a provider's message id, in Redis or the archive),
    inbound messages to the service window, blocks to the suppression list
    (``suppress(channel, address)``) and back (``unsuppress``). Returns counts by result; a status
    for a message Outreach did not send (or no longer keeps) is counted as ``unknown``."""
    counts: dict[str, int] = {}
    for event in events:
        if isinstance(event, Inbound):
            opened = min(now_ms, event.at_ms) if event.at_ms is not None else now_ms
            open_window(client, keys, secret, channel, event.address, opened)
            outcome = "inbound"
        elif isinstance(event, Blocked):
            suppress(channel, event.address)
            outcome = "blocked"
        elif isinstance(event, Unblocked):
            if unsuppress is not None:
                unsuppress(channel, event.address)
            outcome = "unblocked"
        else:
            send_id = find(channel, provider, event.reference)
            if send_id is None:
                outcome = "unknown"
            else:
                try:
                    outcome = record(channel, send_id, event.status, event.detail, permanent=event.permanent,
                                     provider=provider, recipient=event.recipient)["recorded"]  # fmt: skip
                except UnknownSend:
                    outcome = "unknown"
                except InputError:
                    # Another channel's send (a stale delivery elsewhere): nothing to record, and
                    # no reason to make the provider send the whole batch again.
                    outcome = "refused"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


class Receipts:
    """Receipts and provider events applied with the application's parts: what the receipt API, the
    webhooks and ``outreach bounces ingest`` share."""

    def __init__(
        self,
        client: Any,
        keys: Keys,
        clock: Clock,
        sends: Records,
        customers: Customers,
        policy: Policy,
        set_consent: Callable[..., Any],
        secret: str,
    ) -> None:
        self.client, self.keys, self.clock, self.secret = client, keys, clock, secret
        self.sends, self.customers, self.policy, self.set_consent = (
            sends,
            customers,
            policy,
            set_consent,
        )

    def record(
        self, channel: str, send_id: str, status: str, detail: str = "", **options: Any
    ) -> dict[str, Any]:
        """``record_receipt`` for this application."""
        return record_receipt(channel, send_id, status, detail, sends=self.sends,
                              customers=self.customers, policy=self.policy, set_consent=self.set_consent,
                              clock=self.clock, **options)  # fmt: skip

    def apply(
        self, events: Sequence[Status | Inbound | Blocked | Unblocked], channel: str, provider: str
    ) -> dict[str, int]:
        """``apply_events`` for this application: counts by result."""
        policy = self.policy
        return apply_events(events, channel, provider, client=self.client, keys=self.keys,
                            secret=self.secret, record=self.record, find=self.sends.find_send,
                            suppress=policy.suppress_address, unsuppress=policy.unsuppress_address,
                            now_ms=to_ms(self.clock.now()))  # fmt: skip
