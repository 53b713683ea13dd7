"""What a batch of decisions reads, in one round trip: the do-not-contact list, the channels'
suppression lists and the company's blackouts (``Policy.lookups``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from ..customers.profile import Customer
from ..schedule import Send
from ..store.keys import Keys
from .blackouts import Blackout, read_blackouts


@dataclass(frozen=True)
class Lookups:
    """Set memberships and blackouts read once for a batch of decisions."""

    #: Customer ids on the do-not-contact list.
    dnc: set[str]
    #: (channel, lowercased address) pairs on a suppression list.
    bounced: set[tuple[str, str]]
    #: The company's blackouts (ended ones too: ``Blackout.holds`` checks the time).
    blackouts: tuple[Blackout, ...] = ()


def read_lookups(
    client: redis.Redis, keys: Keys, suppression_forms: Callable[[str], tuple[str, ...]],
    pairs: list[tuple[Send, Customer | None]],
) -> Lookups:  # fmt: skip
    """The lookups for ``pairs`` of (send, customer), in one pipelined round trip."""
    customers = sorted({c.id for _, c in pairs if c is not None})
    by_shard: dict[str, list[str]] = {}
    for customer_id in customers:
        by_shard.setdefault(keys.do_not_contact(customer_id), []).append(customer_id)
    wanted: dict[str, set[str]] = {}
    for send, customer in pairs:
        if customer is None:
            continue
        for channel in send.channels:
            address = customer.address(channel)
            if address:
                wanted.setdefault(channel, set()).add(address.lower())
    pipe = client.pipeline(transaction=False)
    for key, ids in by_shard.items():
        pipe.smismember(key, ids)
    channels = sorted(wanted)
    forms = {channel: {a: suppression_forms(a) for a in sorted(wanted[channel])} for channel in channels}
    for channel in channels:
        pipe.smismember(keys.suppressed(channel), [f for fs in forms[channel].values() for f in fs])
    pipe.hvals(keys.blackouts)
    *results, blackouts = pipe.execute()
    dnc = set()
    for ids, hits in zip(by_shard.values(), results, strict=False):
        dnc |= {c for c, hit in zip(ids, hits, strict=True) if hit}
    bounced = set()
    for channel, hits in zip(channels, results[len(by_shard) :], strict=True):
        found = iter(hits)
        for address, address_forms in forms[channel].items():
            if any([next(found) for _ in address_forms]):
                bounced.add((channel, address))
    return Lookups(dnc, bounced, read_blackouts(blackouts))
