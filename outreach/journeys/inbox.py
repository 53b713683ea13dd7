"""The durable inbox of events: an event is kept in Redis from the moment it is accepted until it is applied.

Every way in (``emit``, the HTTP API, the CLI, check-in sweeps, dead-letter
replays) writes the event here before its Dramatiq message is sent, and
ingestion removes it in the same round trip that marks the event applied. A
worker that dies holding an event (Dramatiq returns a dead worker's messages
only after its 60 s heartbeat timeout, at a later queue maintenance) therefore
delays it by one lease, not by minutes: the pump finds the event overdue and
queues it again (``inbox.lua``), each time after twice as long. An event queued
again too many times is given up to the dead-letter store, so one that always
crashes its worker cannot loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import redis

from ..clock import Clock, to_ms
from ..store import scripts
from ..store.keys import Keys


class Inbox:
    def __init__(
        self, client: redis.Redis, keys: Keys, clock: Clock, lease_seconds: float, max_dispatches: int
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.lease_ms = int(lease_seconds * 1000)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_dispatches = max_dispatches
        self._take = scripts.load(client, __package__, "inbox")

    def put(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Keep events (as the ingest actor receives them) until ``done``, in one round trip;
        each is overdue one lease from now."""
        if not events:
            return
        deadline = to_ms(self.clock.now()) + self.lease_ms
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            event_id, shard = str(event["id"]), self.keys.shard_of(str(event["customer_id"]))
            # The deadline first: an entry whose event is missing is dropped by inbox.lua,
            # while an event without a deadline would never be looked at again.
            pipe.zadd(self.keys.inbox(shard), {event_id: deadline}, nx=True)
            pipe.hset(self.keys.inbox_events(shard), event_id, json.dumps(event, ensure_ascii=False))
        pipe.execute()

    def started(self, events: Sequence[tuple[str, str]], pipe: Any) -> None:
        """A worker began applying these (event id, customer id): each one's deadline is one lease
        from now (never earlier); one command per shard, into ``pipe``."""
        deadline = to_ms(self.clock.now()) + self.lease_ms
        for shard, ids in self._by_shard(events).items():
            pipe.zadd(self.keys.inbox(shard), dict.fromkeys(ids, deadline), xx=True, gt=True)

    def done(self, events: Sequence[tuple[object, object]], pipe: Any = None) -> None:
        """These (event id, customer id) were applied (or dead-lettered): they leave the inbox, three
        commands per shard (into ``pipe`` when given)."""
        kept = [(e, c) for e, c in events if isinstance(e, str) and isinstance(c, str)]  # the rest: too
        target = pipe if pipe is not None else self.client.pipeline(transaction=False)  # malformed to keep
        for shard, ids in self._by_shard(kept).items():
            target.zrem(self.keys.inbox(shard), *ids)
            target.hdel(self.keys.inbox_events(shard), *ids)
            target.hdel(self.keys.inbox_tries(shard), *ids)
        if pipe is None and kept:
            target.execute()

    def _by_shard(self, events: Sequence[tuple[str, str]]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for event_id, customer_id in events:
            out.setdefault(self.keys.shard_of(customer_id), []).append(event_id)
        return out

    def overdue(self, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Events not applied within their lease, over every shard: (to queue again, given up)."""
        calls = [
            (
                [self.keys.inbox(s), self.keys.inbox_events(s), self.keys.inbox_tries(s)],
                [self.clock.script_now(), limit, self.lease_ms, self.max_dispatches],
            )
            for s in range(self.keys.shards)
        ]
        again: list[dict[str, Any]] = []
        given_up: list[dict[str, Any]] = []
        for taken, dropped in scripts.run_many(self.client, self._take, calls):
            again += [json.loads(raw) for raw in taken]
            given_up += [json.loads(raw) for raw in dropped]
        return again, given_up

    def pending(self) -> list[dict[str, Any]]:
        """Every event accepted and not applied yet (as the ingest actor receives it)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.hvals(self.keys.inbox_events(shard))
        return [json.loads(raw) for values in pipe.execute() for raw in values]

    def depth(self) -> int:
        """Events accepted and not applied yet."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zcard(self.keys.inbox(shard))
        return sum(pipe.execute())
