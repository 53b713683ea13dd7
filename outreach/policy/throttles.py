"""Journey throttles: at most N sends of a journey to one customer in any sliding period.

A send takes its slot when the policy lets it go (``lua/throttle.lua``: the count and the
add in one step, so two workers never both take the last slot) and gives it back when it
ends without reaching a provider in the worker; one that ends so elsewhere (an exit cancels
it while it waits for a retry) is found when the period is full, and its slot freed. A retry
of the same send holds the slot it has.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import redis

from ..archive import Records
from ..clock import from_ms, to_ms
from ..schedule import Send, SendState
from ..store import replies, scripts
from ..store.keys import Keys


class Throttles:
    def __init__(self, client: redis.Redis, keys: Keys, sends: Records | None = None) -> None:
        self.client = client
        self.keys = keys
        #: Where a slot's send is now (a full period's slots are checked against it: ``take``).
        self.sends = sends
        self._take = scripts.load(client, __package__, "throttle")

    def take(
        self, customer_id: str, journey: str, send_id: str, limit: int, period: timedelta, now: datetime
    ) -> datetime | None:
        """Take a slot for the send: None when taken (or held already), else when the oldest frees.

        When the period is full, its slots are checked first: a send that holds one and ended without
        reaching a provider (cancelled by an exit, suppressed on its next attempt, gone) gives it back.
        """
        key = self.keys.throttle(customer_id, journey)
        keys = [key, self.keys.customer_keys(customer_id)]
        args: list[str | int] = [send_id, to_ms(now), int(period.total_seconds() * 1000), limit]
        verdict, *rest = replies.texts(self._take(keys=keys, args=args))
        if verdict != "ok" and self.sends is not None:
            holders = [h for h in replies.texts(self.client.zrange(key, 0, -1)) if h != send_id]
            found = self.sends.get_many(holders)
            unused = [h for h, s in zip(holders, found, strict=True) if s is None or _unused(s)]
            if unused:
                self.client.zrem(key, *unused)
                verdict, *rest = replies.texts(self._take(keys=keys, args=args))
        return None if verdict == "ok" else from_ms(int(rest[0]))

    def release(self, customer_id: str, journey: str, send_id: str) -> None:
        """The send ended without reaching a provider: its slot is free again."""
        self.client.zrem(self.keys.throttle(customer_id, journey), send_id)


def _unused(send: Send) -> bool:
    """A send that holds a slot it will never use: ended, and not delivered."""
    return send.is_final and send.state != SendState.DELIVERED
