"""The schedule's transitions: planned sends in Redis sorted sets, claimed under a lease, each
change of state one atomic Lua script (``lua/``).

A send lives in two forms. While it is only planned, it is compact: a member of
its shard's ``due`` set and a short field of its customer's ``plan:`` hash that
names an *intent* (what the journey step asked for, stored once in the
``intents`` hash and shared by every send of that step for customers in the same
zone and country). Its event's start time, ingestion time, id and data are two
more fields of the same hash, shared by the event's sends. The first time
anything happens to the send (its claim, or a cancellation) a Lua script gives
it a hash of its own, where its state, attempts and outcome are kept, and a
history list. ``Schedule.get`` reads either form as the same typed ``Send`` (``reads.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import redis

from ..clock import Clock, ceil_ms, from_ms, to_ms
from ..errors import InputError, OutreachError
from ..store import scripts
from ..store.keys import Keys, done_field, event_digest, split_send_id
from ..store.replies import text, text_or_none, texts
from .reads import Reads
from .send import Claim, HandOver, Intent, SendState, Stop, b36, log_entry

#: Upper bounds (seconds) of the delivery-latency histogram: planned instant to hand-over.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class Schedule(Reads):
    """Planned sends by due time, over the shards of ``keys``; every transition is one atomic script."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        lease_seconds: int,
        history_days: int = 0,
        window_days: int = 30,
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.lease_ms = lease_seconds * 1000
        #: How long a send is kept after its final state (0: for ever).
        self.history_ms = history_days * 86_400_000
        #: The events' de-duplication window: an archived send's mark is kept one to two of them.
        self.window_ms = max(window_days, 1) * 86_400_000
        self._intents: dict[str, Intent] = {}
        self._stored: set[str] = set()
        #: The shard the next claim starts at (another one each time).
        self._turn = 0
        self._claim = scripts.load(client, __package__, "claim")
        self._reap = scripts.load(client, __package__, "reap")
        self._begin = scripts.load(client, __package__, "begin")
        self._finish = scripts.load(client, __package__, "finish")
        self._plan = scripts.load(client, __package__, "plan")
        self._cancel = scripts.load(client, __package__, "cancel")
        self._note = scripts.load(client, __package__, "note")
        self._receipt = scripts.load(client, __package__, "receipt")
        self._handover = scripts.load(client, __package__, "handover")
        self._release = scripts.load(client, __package__, "release")

    # -- intents --------------------------------------------------------------------------

    def store_intent(self, intent: Intent) -> str:
        """Keep an intent (once per process) and return its ref."""
        ref = intent.ref
        if ref not in self._stored:
            written = intent.to_json()
            if not self.client.hsetnx(self.keys.intents, ref, written):
                kept = text_or_none(self.client.hget(self.keys.intents, ref))
                if kept != written:
                    raise OutreachError(f"intent ref {ref} names two intents: {kept} and {written}")
            self._stored.add(ref)
            self._intents[ref] = intent
        return ref

    # -- planning -------------------------------------------------------------------------

    def compact_event(self, event_id: str, start: datetime, data: Mapping[str, Any]) -> list[str]:
        """The fields an event's planned sends share: [its field, start, ingestion time and id, data]."""
        meta = f"{b36(to_ms(start))},{b36(to_ms(self.clock.now()))},{event_id}"
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str) if data else ""
        return [event_digest(event_id), meta, body]

    def compact_send(self, send_id: str, due: datetime, intent: Intent) -> list[str | bytes]:
        """A planned send's own part: [send id, due UTC ms, its field, intent ref, its mark in the
        ``done`` hash] (the intent kept)."""
        event, step, _ = split_send_id(send_id)
        return [send_id, str(to_ms(due)), event + step, self.store_intent(intent), done_field(send_id)]

    def plan(
        self,
        send_id: str,
        due: datetime,
        intent: Intent,
        *,
        event_id: str,
        start: datetime,
        data: Mapping[str, Any],
        pipe: redis.client.Pipeline | scripts.Batch | None = None,
    ) -> bool | None:
        """Add a send once; returns False when the id was already planned.

        With ``pipe``, the script joins that pipeline (the caller executes it) and None is returned.
        """
        customer_id = split_send_id(send_id)[2]
        due_ms, send_field, ref, mark = self.compact_send(send_id, due, intent)[1:]
        event_field, meta, body = self.compact_event(event_id, start, data)
        keys = [
            self.keys.due(self.keys.shard_of(customer_id)),
            self.keys.planned(customer_id),
            self.keys.send(send_id),
            *self.done_keys(send_id),
        ]
        args = [send_id, due_ms, send_field, event_field, ref, meta, body, mark]
        if pipe is not None:
            pipe.evalsha(self._plan.sha, len(keys), *keys, *args)
            return None
        return bool(self._plan(keys=keys, args=args))

    def cancel(self, send_id: str, reason: str, text: str) -> Stop:
        """Tombstone a send; says whether it was in time (see ``Stop``)."""
        now = self.clock.now()
        entry = log_entry(now, "cancelled", text, reason=reason)
        late = log_entry(
            now,
            "cancel_too_late",
            f"{text}; too late: a hand-over had begun (no retry follows)",
            reason=reason,
        )
        shard = self.keys.shard_of_send(send_id)
        keys = [
            self.keys.due(shard),
            self.keys.inflight(shard),
            self.keys.send(send_id),
            self.keys.send_log(send_id),
            self.keys.outcomes(shard),
            self.keys.shard_stats(shard),
            self.keys.open_sends(split_send_id(send_id)[2]),
        ]
        args: list[str | int] = [
            send_id,
            reason,
            entry,
            str(to_ms(now)),
            self.keys.tag(shard),
            self.history_ms,
            late,
        ]
        outcome, state, handed = texts(self._cancel(keys=keys, args=args))
        return Stop(send_id, outcome, state, from_ms(int(handed)) if handed else None)

    # -- claiming -------------------------------------------------------------------------

    def claim(self, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due sends, taken from every shard (one round trip per round)."""
        claims: list[Claim] = []
        # Start at another shard each time, so no shard is always the one left short.
        first, self._turn = self._turn, (self._turn + 1) % self.keys.shards
        active = [(first + i) % self.keys.shards for i in range(self.keys.shards)]
        while active and len(claims) < limit:
            # Share the room among the shards that may still have due sends.
            base, extra = divmod(limit - len(claims), len(active))
            asks = [(s, base + (i < extra)) for i, s in enumerate(active) if base + (i < extra)]
            calls = [
                (
                    [self.keys.due(s), self.keys.inflight(s), self.keys.claim_seq(s)],
                    [self.clock.script_now(), n, self.lease_ms, self.keys.tag(s)],
                )
                for s, n in asks
            ]
            # Next round: the shards not asked yet, and those that gave all they were asked for.
            active = active[len(asks) :]
            results = scripts.run_many(self.client, self._claim, calls)
            for (shard, asked), out in zip(asks, results, strict=True):
                pairs = texts(out[1:])
                claims += [Claim(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]
                if len(pairs) // 2 >= asked:
                    active.append(shard)
        return claims

    def reap(self, limit: int) -> list[str]:
        """Return sends whose lease expired to the schedule."""
        calls = [
            ([self.keys.inflight(s), self.keys.due(s)], [self.clock.script_now(), limit, self.keys.tag(s)])
            for s in range(self.keys.shards)
        ]
        return [text(x) for out in scripts.run_many(self.client, self._reap, calls) for x in out]

    def begin(self, claims: list[Claim]) -> list[str]:
        """Start attempts; one status per claim ('go', 'stale', 'cancelled' or a final state)."""
        by_shard: dict[int, list[int]] = {}
        for i, claim in enumerate(claims):
            by_shard.setdefault(self.keys.shard_of_send(claim.send_id), []).append(i)
        calls = []
        for shard, indexes in by_shard.items():
            args: list[str] = [
                self.clock.script_now(),
                str(self.lease_ms),
                self.keys.tag(shard),
                str(self.history_ms),
            ]
            for i in indexes:
                args += [claims[i].send_id, claims[i].token]
            keys = [self.keys.inflight(shard), self.keys.outcomes(shard), self.keys.shard_stats(shard)]
            calls.append((keys, args))
        statuses: list[str] = [""] * len(claims)
        for indexes, out in zip(by_shard.values(), scripts.run_many(self.client, self._begin, calls),
                                strict=True):  # fmt: skip
            for i, status in zip(indexes, out, strict=True):
                statuses[i] = text(status)
        return statuses

    def hand_over(self, requests: Sequence[HandOver], batch: scripts.Batch) -> tuple[datetime, list[str]]:
        """The last gate before the providers: ``batch`` (outcomes already gathered) and the gate, in
        one round trip. Returns the gate's time and one status per request (``handover.lua``);
        an address found on its channel's suppression list reads ``address_suppressed``.
        """
        by_shard: dict[int, list[int]] = {}
        by_channel: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            by_channel.setdefault(request.channel, []).append(i)
            by_shard.setdefault(self.keys.shard_of_send(request.send_id), []).append(i)
        forms = [r.suppression or (r.address.lower(),) for r in requests]
        for channel, indexes in by_channel.items():
            batch.smismember(self.keys.suppressed(channel), [f for i in indexes for f in forms[i]])
        for shard, indexes in by_shard.items():
            keys = [self.keys.inflight(shard), self.keys.outcomes(shard), self.keys.shard_stats(shard)]
            args: list[Any] = [self.clock.script_now(), self.keys.tag(shard), self.history_ms]
            for i in indexes:
                r = requests[i]
                consent = ("1" if r.consent_default else "0") if r.consentable else "-"
                args += [r.send_id, r.token, r.category, r.channel, consent]
            batch.evalsha(self._handover.sha, len(keys), *keys, *args)
        results = scripts.execute(self.client, batch)
        tail = results[len(results) - len(by_channel) - len(by_shard) :]
        suppressed, gates = tail[: len(by_channel)], tail[len(by_channel) :]
        statuses = [""] * len(requests)
        now_ms = 0
        for indexes, out in zip(by_shard.values(), gates, strict=True):
            now_ms = int(out[0])
            for i, status in zip(indexes, out[1:], strict=True):
                statuses[i] = text(status)
        for indexes, hits in zip(by_channel.values(), suppressed, strict=True):
            found = iter(hits)
            for i in indexes:
                hit = any([next(found) for _ in forms[i]])
                if hit and statuses[i] == "go":
                    statuses[i] = "address_suppressed"
        return from_ms(now_ms), statuses

    def release(self, claims: Sequence[Claim]) -> None:
        """Take back the gate's hand-over marks of sends that did not go after all (``release.lua``)."""
        calls = [([self.keys.send(c.send_id)], [c.token]) for c in claims]
        if calls:
            scripts.run_many(self.client, self._release, calls)

    def finish(
        self,
        send_id: str,
        state: str,
        entry: str,
        *,
        due: datetime | None = None,
        field: tuple[str, str] | None = None,
        reason: str = "",
        latency: float | None = None,
        token: str = "",
        notes: Sequence[str] = (),
        pipe: redis.client.Pipeline | scripts.Batch | None = None,
    ) -> str | None:
        """Record an attempt's outcome; a retry or deferral goes back to the schedule at ``due``.

        ``latency`` (seconds from the planned instant to delivery) is counted in a histogram bucket;
        ``notes`` are history entries of the attempt written just before the outcome's.
        With ``pipe``, the script joins that pipeline (the caller executes it) and None is returned.
        """
        customer_id = split_send_id(send_id)[2]
        shard = self.keys.shard_of(customer_id)
        keys = [
            self.keys.inflight(shard),
            self.keys.due(shard),
            self.keys.send(send_id),
            self.keys.send_log(send_id),
            self.keys.outcomes(shard),
            self.keys.shard_stats(shard),
            self.keys.open_sends(customer_id),
        ]
        name, value = field or ("", "")
        bucket = ""
        if latency is not None:
            bound = next((b for b in LATENCY_BUCKETS if latency <= b), None)
            bucket = f"latency:le:{bound:g}" if bound is not None else "latency:le:+Inf"
        args: list[str | int] = [
            send_id, state, str(ceil_ms(due)) if due else "", entry, name, value,
            str(to_ms(self.clock.now())), reason or state, bucket, token,
            f"{latency:.3f}" if latency is not None else "", self.history_ms, self.keys.tag(shard), *notes,
        ]  # fmt: skip
        if pipe is not None:
            # EVALSHA straight into the pipeline: redis-py would otherwise ask
            # SCRIPT EXISTS on every execute (a round trip per outcome).
            pipe.evalsha(self._finish.sha, len(keys), *keys, *args)
            return None
        return text(self._finish(keys=keys, args=args))

    def note(self, send_id: str, entry: str) -> bool:
        """Add to a send's history (never recreating the history of an erased or archived send);
        False when the send has no record in Redis."""
        return bool(self._note(keys=[self.keys.send(send_id), self.keys.send_log(send_id)], args=[entry]))

    def receipt(
        self, send_id: str, channel: str, status: str, rank: int, progress: bool, entry: str, seen: str = ""
    ) -> str:
        """Record a provider's receipt once (``receipt.lua``; ``seen``: the field that marks it,
        the status by default): 'new', 'repeat', 'stale' or 'gone'."""
        keys = [
            self.keys.send(send_id),
            self.keys.send_log(send_id),
            self.keys.receipts(send_id),
            self.keys.shard_stats(self.keys.shard_of_send(send_id)),
        ]
        now = to_ms(self.clock.now())
        args: list[str | int] = [status, rank, "1" if progress else "0", now, entry, channel, seen or status]
        return text(self._receipt(keys=keys, args=args))

    def book(self) -> OutcomeBook:
        """Outcomes to record together, in one round trip (``flush``)."""
        return OutcomeBook(self)

    def renew(self, send_ids: list[str]) -> None:
        """Extend the leases of claimed sends still waiting in a long batch."""
        if not send_ids:
            return
        deadline = to_ms(self.clock.now()) + self.lease_ms
        by_shard: dict[int, list[str]] = {}
        for send_id in send_ids:
            by_shard.setdefault(self.keys.shard_of_send(send_id), []).append(send_id)
        pipe = self.client.pipeline(transaction=False)
        for shard, ids in by_shard.items():
            pipe.zadd(self.keys.inflight(shard), dict.fromkeys(ids, deadline), xx=True)
        pipe.execute()

    def requeue(self, send_id: str) -> None:
        """Plan a failed send again, due now, with a fresh attempt count (dead-letter replay).

        Only a send that ended ``failed``: one cancelled (or delivered) meanwhile stays so.
        """
        now = self.clock.now()
        customer_id = split_send_id(send_id)[2]
        state = text_or_none(self.client.hget(self.keys.send(send_id), "state"))
        if state != SendState.FAILED:
            raise InputError(
                "send_id", send_id, f"the send is {state or 'gone'}, not failed: nothing to replay"
            )
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.send(send_id), mapping={"state": "scheduled", "attempts": "0"})
        pipe.hdel(self.keys.send(send_id), "reason", "token")
        pipe.zadd(self.keys.due(self.keys.shard_of(customer_id)), {send_id: to_ms(now)})
        pipe.sadd(self.keys.open_sends(customer_id), send_id)
        pipe.rpush(
            self.keys.send_log(send_id),
            log_entry(now, "replayed", "replayed from the dead-letter store"),
        )
        pipe.execute()


class OutcomeBook:
    """Outcomes (and the commands that go with them) gathered for one round trip."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.batch = scripts.Batch()

    def finish(self, send_id: str, state: str, entry: str, **options: Any) -> None:
        """``Schedule.finish``, sent when the book is flushed."""
        self.schedule.finish(send_id, state, entry, pipe=self.batch, **options)

    def hand_over(self, requests: Sequence[HandOver]) -> tuple[datetime, list[str]]:
        """``Schedule.hand_over``, sent together with the outcomes gathered so far."""
        batch, self.batch = self.batch, scripts.Batch()
        return self.schedule.hand_over(requests, batch)

    def flush(self) -> None:
        if self.batch.calls:
            batch, self.batch = self.batch, scripts.Batch()
            scripts.execute(self.schedule.client, batch)
