"""Recurring journeys (periodic check-ins): an index of customers sorted by when they are next due.

The sweep reads only what is due from the index, never all customers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import redis

from ..clock import Clock, from_ms, to_ms
from ..customers.profile import Customer
from ..store import scripts
from ..store.keys import Keys
from ..timing import parse_instant
from .config import Journey, Journeys
from .events import Event

#: Seconds a claimed index entry waits before it is due again (if its event was lost).
RECURRING_LEASE_SECONDS = 3600


def _period(journey: Journey) -> timedelta:
    """How often a recurring journey comes due (``Journeys.recurring()`` holds only those with one)."""
    assert journey.every_days is not None, f"journey {journey.name} is not recurring"
    return timedelta(days=journey.every_days)


class Recurring:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        journeys: Journeys,
        allows: Callable[[Customer, str], bool],
    ) -> None:
        self.client = client
        #: Consent check (the policy's), so the index holds only those who may get a check-in.
        self.allows = allows
        self.keys = keys
        self.clock = clock
        self.journeys = journeys.recurring()
        self._claim = scripts.load(client, __package__, "claim_index")

    def _base(self, customer: Customer) -> datetime:
        raw = customer.attributes.get("last_contact_at")
        if isinstance(raw, str) and raw:
            try:
                return parse_instant(raw)
            except ValueError:
                pass
        return self.clock.now()

    def enroll(self, customer: Customer, pipe=None) -> None:
        """Index a customer (kept as is if already indexed); leaves those without consent out."""
        target = pipe or self.client.pipeline(transaction=False)
        shard = self.keys.shard_of(customer.id)
        for journey in self.journeys:
            key = self.keys.recurring(shard, journey.name)
            if self.allows(customer, journey.category):
                due = self._base(customer) + _period(journey)
                target.zadd(key, {customer.id: to_ms(due)}, nx=True)
            else:
                target.zrem(key, customer.id)
        if pipe is None:
            target.execute()

    def contacted(self, customer_id: str, at: datetime, pipe=None) -> None:
        """A message reached the customer: the next check-in counts from now."""
        target = pipe or self.client.pipeline(transaction=False)
        shard = self.keys.shard_of(customer_id)
        for journey in self.journeys:
            due = at + _period(journey)
            target.zadd(self.keys.recurring(shard, journey.name), {customer_id: to_ms(due)}, xx=True)
        if pipe is None:
            target.execute()

    def leave(self, customer_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        shard = self.keys.shard_of(customer_id)
        for journey in self.journeys:
            pipe.zrem(self.keys.recurring(shard, journey.name), customer_id)
        pipe.execute()

    def due_events(self, limit: int) -> list[Event]:
        """Claim due index entries (up to ``limit`` per journey and shard) and return their events."""
        pairs = [(journey, shard) for journey in self.journeys for shard in range(self.keys.shards)]
        calls = [
            ([self.keys.recurring(shard, journey.name)],
             [self.clock.script_now(), limit, RECURRING_LEASE_SECONDS * 1000])
            for journey, shard in pairs
        ]  # fmt: skip
        now = self.clock.now()
        events: list[Event] = []
        for (journey, _), rows in zip(pairs, scripts.run_many(self.client, self._claim, calls), strict=True):
            for i in range(0, len(rows), 2):
                customer_id = rows[i].decode()
                due_ms = int(float(rows[i + 1]))
                events.append(
                    Event(
                        id=f"recurring:{journey.name}:{customer_id}:{due_ms}",
                        type="customer.checkin_due",
                        customer_id=customer_id,
                        occurred_at=now,
                        data={"journey": journey.name},
                    )
                )
        return events

    def next_due(self) -> datetime | None:
        """The earliest due time over all recurring indexes."""
        pipe = self.client.pipeline(transaction=False)
        for journey in self.journeys:
            for shard in range(self.keys.shards):
                pipe.zrange(self.keys.recurring(shard, journey.name), 0, 0, withscores=True)
        scores = [rows[0][1] for rows in pipe.execute() if rows]
        return from_ms(min(scores)) if scores else None
