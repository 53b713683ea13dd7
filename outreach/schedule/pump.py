"""The pump: the scheduler's tick that turns due sends into work for the deliver actor.

Each tick returns expired leases to the schedule, then claims due sends under
backpressure (never more in flight than ``max_inflight``, so the workers can
finish what they hold within a lease) and hands them over in batches. It records
its lag (how long the oldest due send waited to be claimed) for the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis

from ..clock import Clock, to_ms
from ..store.keys import Keys
from .send import Claim
from .transitions import Schedule


class Pump:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        schedule: Schedule,
        hand: Callable[[Sequence[Claim]], object],
        *,
        claim_limit: int,
        max_inflight: int,
        batch: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.schedule = schedule
        #: Gives one batch of claims to the workers (the deliver actor's ``send``).
        self.hand = hand
        self.claim_limit = claim_limit
        self.max_inflight = max_inflight
        self.batch = batch

    def tick(self, *, max_rounds: int = 20) -> int:
        """Reap, claim and hand over; returns how many sends were claimed."""
        self.schedule.reap(self.claim_limit)
        oldest = self.schedule.next_due()
        now = self.clock.now()
        lag_ms = max(0, to_ms(now) - to_ms(oldest)) if oldest and oldest <= now else 0
        total = 0
        room = self.max_inflight - self.schedule.depth()[1]
        for _ in range(max_rounds):
            if room <= 0:
                break
            claims = self.schedule.claim(min(self.claim_limit, room))
            room -= len(claims)
            for i in range(0, len(claims), self.batch):
                self.hand(claims[i : i + self.batch])
            total += len(claims)
            if len(claims) < self.claim_limit:
                break
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.keys.stats, mapping={"pump:lag_ms": lag_ms, "pump:last_ms": to_ms(now)})
        pipe.hincrby(self.keys.stats, "pump:claimed", total)
        pipe.execute()
        return total
