"""When a customer engages: the local hours at which they answer surveys and click links.

Each answer or click counts once in the customer's ``engagement`` hash under
``<kind>:<local hour>`` (``answer:19``, ``click:08``), the hour read in the zone the
customer had at that moment. Send-time learning (``journeys.sendtime``) reads it; it is
erased with the customer (the key is in the customer's key set).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import redis

from ..store import scripts
from ..store.keys import Keys
from ..store.replies import text_fields
from ..timing import zone

#: What a customer can do that tells when they read their messages.
KINDS = ("answer", "click")


class Engagement:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._engage = scripts.load(client, __package__, "engage")

    def record(self, customer_id: str, zone_name: str, kind: str, at: datetime) -> bool:
        """Count one answer or click of the customer at ``at`` (an aware instant); False, keeping
        nothing, when the customer is gone (erased meanwhile: ``lua/engage.lua``)."""
        assert kind in KINDS, kind
        hour = at.astimezone(zone(zone_name)).hour
        keys = [self.keys.engagement(customer_id), self.keys.customer_keys(customer_id),
                self.keys.customer(customer_id)]  # fmt: skip
        return bool(self._engage(keys=keys, args=[f"{kind}:{hour:02d}"]))

    def hours(self, customer_id: str) -> dict[str, Counter[int]]:
        """Per kind, how many times the customer engaged at each local hour (0–23)."""
        return parse(self.client.hgetall(self.keys.engagement(customer_id)))


def parse(raw: dict) -> dict[str, Counter[int]]:
    """The ``engagement`` hash as counts per kind and local hour (unknown fields are skipped)."""
    found: dict[str, Counter[int]] = {kind: Counter() for kind in KINDS}
    for name, count in text_fields(raw).items():
        kind, _, hour = name.partition(":")
        if kind in found and hour.isdigit() and 0 <= int(hour) <= 23:
            found[kind][int(hour)] += int(count)
    return found
