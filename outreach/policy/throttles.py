"""Journey throttles: at most N sends of a journey to one customer in any sliding period.

A send takes its slot when the policy lets it go (``lua/throttle.lua``: the count and the
add in one step, so two workers never both take the last slot) and gives it back when it
ends without reaching a provider. A retry of the same send holds the slot it has.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import redis

from ..clock import from_ms, to_ms
from ..store import replies, scripts
from ..store.keys import Keys


class Throttles:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._take = scripts.load(client, __package__, "throttle")

    def take(
        self, customer_id: str, journey: str, send_id: str, limit: int, period: timedelta, now: datetime
    ) -> datetime | None:
        """Take a slot for the send: None when taken (or held already), else when the oldest frees."""
        keys = [self.keys.throttle(customer_id, journey), self.keys.customer_keys(customer_id)]
        args: list[str | int] = [send_id, to_ms(now), int(period.total_seconds() * 1000), limit]
        verdict, *rest = replies.texts(self._take(keys=keys, args=args))
        return None if verdict == "ok" else from_ms(int(rest[0]))

    def release(self, customer_id: str, journey: str, send_id: str) -> None:
        """The send ended without reaching a provider: its slot is free again."""
        self.client.zrem(self.keys.throttle(customer_id, journey), send_id)
