"""Per-channel send rates shared by every worker process: a token bucket in Redis.

``RateLimiter.acquire`` either takes tokens (returns 0.0) or returns the seconds until
they would be there; it never sleeps, in Python or in Redis, so a caller that gets a
wait defers the send through the schedule instead of holding a worker thread. The
bucket lives at ``<prefix>rate:<channel>`` and is updated by one Lua script, so
concurrent workers can never take more than the budget between them.
"""

from __future__ import annotations

import math

import redis

from ..clock import Clock
from ..store import scripts


def rate_key(prefix: str, channel: str) -> str:
    """hash: one channel's bucket ('tokens', 'ts')."""
    return f"{prefix}rate:{channel}"


class RateLimiter:
    """Token buckets per channel: ``rate`` tokens per second, up to ``burst`` saved up."""

    def __init__(self, client: redis.Redis, keys_prefix: str, clock: Clock) -> None:
        self.client = client
        self.prefix = keys_prefix
        self.clock = clock
        self._take = scripts.load(client, __package__, "token_bucket")

    def acquire(self, channel: str, rate: float, burst: int, n: int = 1) -> float:
        """Take ``n`` tokens: 0.0 when taken, else the seconds until they would be available."""
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate={rate!r}: must be a number of messages per second > 0")
        if not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst={burst!r}: must be an integer >= 1")
        if not isinstance(n, int) or not 1 <= n <= burst:
            # More than the bucket holds could never be granted: fail instead of waiting forever.
            raise ValueError(f"n={n!r}: must be between 1 and burst={burst}")
        taken, wait_ms = self._take(
            keys=[rate_key(self.prefix, channel)],
            args=[self.clock.script_now(), repr(float(rate)), str(burst), str(n)],
        )
        return 0.0 if int(taken) else int(wait_ms) / 1000

    def reset(self, channel: str) -> None:
        """Forget a channel's bucket (it is full again)."""
        self.client.delete(rate_key(self.prefix, channel))
