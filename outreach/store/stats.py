"""The counters and gauges of the stats hashes (one per shard, one for the pump), read as one."""

from __future__ import annotations

import redis

from .keys import Keys
from .replies import text


def read_stats(client: redis.Redis, keys: Keys) -> dict[str, float]:
    """Every counter and gauge, summed over the shards (a value that is not a number is skipped)."""
    pipe = client.pipeline(transaction=False)
    for key in keys.all_stats():
        pipe.hgetall(key)
    totals: dict[str, float] = {}
    for raw in pipe.execute():
        for name, value in raw.items():
            field = text(name)
            try:
                totals[field] = totals.get(field, 0.0) + float(value)
            except ValueError:
                continue
    return totals
