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
from ..store.replies import texts


class Inbox:
    def __init__(
        self, client: redis.Redis, keys: Keys, clock: Clock, lease_seconds: float, max_dispatches: int,
        event_ttl_days: int,
    ) -> None:  # fmt: skip
        self.client = client
        self.keys = keys
        self.clock = clock
        self.lease_ms = int(lease_seconds * 1000)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_dispatches = max_dispatches
        self.marker_ttl = event_ttl_days * 86400
        self._overdue = scripts.load(client, __package__, "inbox")
        self._take = scripts.load(client, __package__, "take")
        self._applied = scripts.load(client, __package__, "applied")

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

    def take(self, events: Sequence[tuple[str, str]]) -> list[str]:
        """A worker begins applying these (event id, customer id): each one's marker as it was ('', new
        and marked 'pending' now; 'pending', an attempt died midway; 'done', applied already), and its
        deadline one lease from now (never earlier); one script per shard, in one round trip."""
        deadline = to_ms(self.clock.now()) + self.lease_ms
        by_shard = self._by_shard(events)
        calls = [
            ([self.keys.inbox(shard), *(self.keys.event(e, c) for e, c in pairs)],
             [self.marker_ttl, deadline, *(e for e, _ in pairs)])
            for shard, pairs in by_shard.items()
        ]  # fmt: skip
        held: dict[tuple[str, str], str] = {}
        for pairs, states in zip(
            by_shard.values(), scripts.run_many(self.client, self._take, calls), strict=True
        ):
            held.update(zip(pairs, texts(states), strict=True))
        return [held[pair] for pair in events]

    def applied(self, events: Sequence[tuple[str, str]]) -> None:
        """These (event id, customer id) were applied: marked 'done' and out of the inbox, one script
        per shard, in one round trip."""
        calls = [
            ([self.keys.inbox(shard), self.keys.inbox_events(shard), self.keys.inbox_tries(shard),
              *(self.keys.event(e, c) for e, c in pairs)], [self.marker_ttl, *(e for e, _ in pairs)])
            for shard, pairs in self._by_shard(events).items()
        ]  # fmt: skip
        if calls:
            scripts.run_many(self.client, self._applied, calls)

    def renew(self, events: Sequence[tuple[str, str]]) -> None:
        """These (event id, customer id) are still being applied: each one's deadline is one lease from
        now (never earlier); one command per shard, in one round trip."""
        deadline = to_ms(self.clock.now()) + self.lease_ms
        pipe = self.client.pipeline(transaction=False)
        for shard, pairs in self._by_shard(events).items():
            pipe.zadd(
                self.keys.inbox(shard), dict.fromkeys((e for e, _ in pairs), deadline), xx=True, gt=True
            )
        pipe.execute()

    def done(self, events: Sequence[tuple[object, object]]) -> None:
        """These (event id, customer id) were given up (dead-lettered): they leave the inbox, three
        commands per shard, in one round trip; their markers stay as they were."""
        kept = [(e, c) for e, c in events if isinstance(e, str) and isinstance(c, str)]  # the rest: too
        pipe = self.client.pipeline(transaction=False)  # malformed to have been kept
        for shard, pairs in self._by_shard(kept).items():
            ids = [e for e, _ in pairs]
            pipe.zrem(self.keys.inbox(shard), *ids)
            pipe.hdel(self.keys.inbox_events(shard), *ids)
            pipe.hdel(self.keys.inbox_tries(shard), *ids)
        if kept:
            pipe.execute()

    def _by_shard(self, events: Sequence[tuple[str, str]]) -> dict[int, list[tuple[str, str]]]:
        out: dict[int, list[tuple[str, str]]] = {}
        for event_id, customer_id in dict.fromkeys(events):
            out.setdefault(self.keys.shard_of(customer_id), []).append((event_id, customer_id))
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
        for taken, dropped in scripts.run_many(self.client, self._overdue, calls):
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
