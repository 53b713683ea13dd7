"""Which of a step's channels a send may use, in which order, and when the law lets each carry it.

Order: the customer's own choice first; then their country's order from ``[routing]`` of
policy.toml (WhatsApp first in Brazil, LINE in Japan, SMS in the
US...); then the step's own order. A channel is passed over when the customer opted out of it,
has no address on it, the address is on its suppression list, or no provider serves it.

Legal hours (``[legal_hours.<country>]``): marketing on SMS and WhatsApp only at the hours the
recipient's country allows, in the recipient's local time (docs/POLICY.md cites the sources). A
channel outside its legal hours is passed over for now; when every usable channel is, the send
waits for the first of them to open.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..customers.profile import Customer
from ..timing import SendRule, resolve, zone


@dataclass(frozen=True)
class LegalHours:
    """When a country's law lets a category go out on a channel (local time of the recipient)."""

    country: str
    categories: frozenset[str]
    channels: frozenset[str]
    #: The window, weekdays and holidays the law allows (a ``SendRule`` without days or ``at``).
    rule: SendRule
    #: The law or code it comes from, said in the decision.
    source: str

    def applies(self, country: str | None, category: str, channel: str) -> bool:
        return country == self.country and category in self.categories and channel in self.channels


def ordered(
    step_channels: Sequence[str], customer: Customer, routing: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """The step's channels in the order to try them for this customer."""
    order = list(step_channels)
    preferred = [customer.channel] if customer.channel else []
    preferred += [c for c in routing.get(customer.country or "", ()) if c not in preferred]
    first = [c for c in preferred if c in order]
    return first + [c for c in order if c not in first]


def usable(
    order: Sequence[str],
    customer: Customer,
    transports: Collection[str],
    bounced: set[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[str]]:
    """(channel, address) pairs the send may use, and why the others were passed over."""
    found, skipped = [], []
    for channel in order:
        address = customer.address(channel)
        if customer.channel_consent.get(channel) is False:
            skipped.append(f"{channel}: the customer opted out of this channel")
        elif not address:
            skipped.append(f"{channel}: no address")
        elif (channel, address.lower()) in bounced:
            skipped.append(f"{channel}: {address} is on the suppression list")
        elif channel not in transports:
            skipped.append(f"{channel}: no provider configured")
        else:
            found.append((channel, address))
    return found, skipped


def within_legal_hours(
    channels: list[tuple[str, str]],
    customer: Customer,
    category: str,
    laws: Sequence[LegalHours],
    now: datetime,
) -> tuple[list[tuple[str, str]], list[str], datetime | None]:
    """The channels the law lets carry the send now, why the others were passed over, and (when
    none is left) the first instant one of them opens."""
    allowed, skipped, opens = [], [], []
    for channel, address in channels:
        binding = [law for law in laws if law.applies(customer.country, category, channel)]
        if not binding:
            allowed.append((channel, address))
            continue
        # Several sets of hours (weekdays, Saturdays) for one country: any of them allows.
        opening = min(resolve(law.rule, now, customer.zone).utc for law in binding)
        if opening <= now:
            allowed.append((channel, address))
            continue
        opens.append(opening)
        local = opening.astimezone(zone(customer.zone)).isoformat()
        hours = ", ".join(str(law.rule.window) for law in binding)
        where = f"{category} messages in {customer.country} ({hours})"
        skipped.append(f"{channel}: outside the hours {binding[0].source} allows {where}; next at {local}")
    return allowed, skipped, (min(opens) if opens and not allowed else None)
