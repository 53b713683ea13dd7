"""The durable schedule: planned sends in Redis sorted sets, claimed under a lease by Lua scripts.

A send lives in two forms. While it is only planned, it is compact: a member of
its shard's ``due`` set and a short field of its customer's ``plan:`` hash that
names an *intent* (what the journey step asked for, stored once in the
``intents`` hash and shared by every send of that step for customers in the same
zone and country). Its event's start time, ingestion time, id and data are two
more fields of the same hash, shared by the event's sends. The first time
anything happens to the send (its claim, or a cancellation) a Lua script gives
it a hash of its own, where its state, attempts and outcome are kept, and a
history list. ``Schedule.get`` reads either form as the same dict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from heapq import merge
from itertools import islice
from typing import Any

import redis

from ..clock import Clock, ceil_ms, from_ms, to_ms
from ..errors import InputError, OutreachError, TimingError
from ..journeys.config import rule_for
from ..store import scripts
from ..store.keys import Keys, is_send_id, planned_send_ids, split_send_id
from ..timing import SendRule, resolve

#: Upper bounds (seconds) of the delivery-latency histogram: planned instant to hand-over.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class SendState(StrEnum):
    """Every state a send can be in (docs/DELIVERY.md); the Lua scripts write the same words."""

    SCHEDULED = "scheduled"
    CLAIMED = "claimed"
    SENDING = "sending"
    RETRY_SCHEDULED = "retry_scheduled"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


#: States in which a send will never be attempted again (``FINAL`` in ``lua/_prelude.lua``).
FINAL_STATES = frozenset({SendState.DELIVERED, SendState.FAILED, SendState.SUPPRESSED, SendState.CANCELLED})
#: Hex digits of an intent ref (48 bits: no collision among all intents a deployment makes).
INTENT_DIGITS = 12


def log_entry(at: datetime, what: str, text: str, **data: Any) -> str:
    """One JSON line of a send's history."""
    return json.dumps(
        {"at_ms": to_ms(at), "what": what, "text": text, **data},
        ensure_ascii=False,
        default=str,
    )


def _str(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


@dataclass(frozen=True)
class Intent:
    """What a journey step asked for when the send was planned, for one zone and country.

    Kept once per distinct value and shared by every send that names it; the
    send keeps only a reference, so the intent it was planned with stays the
    same even when the journey's configuration changes later.
    """

    journey: str
    step: str
    category: str
    template: str
    #: JSON list of channels, in the step's order.
    channels: str
    #: JSON of the step's rule as configured (``holidays = "customer"`` is read when the send fires).
    rule: str
    survey: str
    event_type: str
    #: The customer's zone and country when the send was planned.
    zone: str
    country: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @cached_property
    def ref(self) -> str:
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:INTENT_DIGITS]

    @cached_property
    def fields(self) -> dict[str, str]:
        """The intent as a send's fields (computed once and shared: copy before changing it)."""
        return asdict(self)

    def send_rule(self) -> SendRule:
        """The rule as it was resolved when the send was planned."""
        return rule_for(self.rule, self.country or None)


@dataclass(frozen=True)
class Claim:
    send_id: str
    token: str


@dataclass(frozen=True)
class HandOver:
    """A send about to go to its provider, as the hand-over gate (``handover.lua``) checks it."""

    send_id: str
    token: str
    category: str
    channel: str
    address: str
    #: Whether the category is allowed for this customer when they never said (country default).
    consent_default: bool


@dataclass(frozen=True)
class Stop:
    """What a cancellation or an opt-out did to one send.

    ``cancelled``: no provider is asked for the send from now on. ``too_late``: a
    hand-over to a provider began at ``handed_at`` (for a delivered send, its last
    one). ``final``: the send had already ended otherwise (``state`` says how).
    ``unknown``: there is no such send.
    """

    send_id: str
    outcome: str
    #: The send's state just before.
    state: str = ""
    handed_at: datetime | None = None

    def to_mapping(self) -> dict[str, Any]:
        return {
            "send_id": self.send_id,
            "outcome": self.outcome,
            "state": self.state,
            "handed_at": self.handed_at.isoformat() if self.handed_at else None,
        }


class Schedule:
    """Planned sends by due time, over the shards of ``keys``; every transition is one atomic script."""

    def __init__(
        self, client: redis.Redis, keys: Keys, clock: Clock, lease_seconds: int, history_days: int = 0
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.lease_ms = lease_seconds * 1000
        #: How long a send is kept after its final state (0: for ever).
        self.history_ms = history_days * 86_400_000
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
        self._handover = scripts.load(client, __package__, "handover")
        self._release = scripts.load(client, __package__, "release")

    # -- intents --------------------------------------------------------------------------

    def store_intent(self, intent: Intent) -> str:
        """Keep an intent (once per process) and return its ref."""
        ref = intent.ref
        if ref not in self._stored:
            text = intent.to_json()
            if not self.client.hsetnx(self.keys.intents, ref, text):
                kept = _str(self.client.hget(self.keys.intents, ref))
                if kept != text:
                    raise OutreachError(f"intent ref {ref} names two intents: {kept} and {text}")
            self._stored.add(ref)
            self._intents[ref] = intent
        return ref

    def intent(self, ref: str) -> Intent:
        found = self._intents.get(ref)
        if found is None:
            raw = self.client.hget(self.keys.intents, ref)
            if raw is None:
                raise OutreachError(f"intent {ref} is missing from {self.keys.intents}")
            found = self._intents[ref] = Intent(**json.loads(raw))
        return found

    # -- planning -------------------------------------------------------------------------

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
        event, step, customer_id = split_send_id(send_id)
        ref = self.store_intent(intent)
        meta = f"{_b36(to_ms(start))},{_b36(to_ms(self.clock.now()))},{event_id}"
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str) if data else ""
        keys = [
            self.keys.due(self.keys.shard_of(customer_id)),
            self.keys.planned(customer_id),
            self.keys.send(send_id),
        ]
        args = [send_id, str(to_ms(due)), event + step, event, ref, meta, body]
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
        args = [send_id, reason, entry, str(to_ms(now)), self.keys.tag(shard), self.history_ms, late]
        outcome, state, handed = (_str(x) for x in self._cancel(keys=keys, args=args))
        return Stop(send_id, outcome, state, from_ms(int(handed)) if handed else None)

    def stops_of(self, sends: Sequence[Mapping[str, str]]) -> list[Stop]:
        """Read only: what stopping these sends now would answer (for consent and do-not-contact).

        A send whose hand-over has begun is ``too_late``; any other open send will
        not go out, because the hand-over gate reads the change.
        """
        out = []
        for send in sends:
            handed = send.get("handed_ms")
            at = from_ms(int(handed)) if handed else None
            if send["state"] == "delivered" or send.get("handing"):
                out.append(Stop(send["id"], "too_late", send["state"], at))
            elif send["state"] in FINAL_STATES:
                out.append(Stop(send["id"], "final", send["state"], at))
            else:
                out.append(Stop(send["id"], "cancelled", send["state"], at))
        return out

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
                pairs = [_str(x) for x in out[1:]]
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
        return [_str(x) for out in scripts.run_many(self.client, self._reap, calls) for x in out]

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
                statuses[i] = _str(status)
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
        for channel, indexes in by_channel.items():
            addresses = [requests[i].address.lower() for i in indexes]
            batch.smismember(self.keys.suppressed(channel), addresses)
        for shard, indexes in by_shard.items():
            keys = [self.keys.inflight(shard), self.keys.outcomes(shard), self.keys.shard_stats(shard)]
            args: list[Any] = [self.clock.script_now(), self.keys.tag(shard), self.history_ms]
            for i in indexes:
                r = requests[i]
                args += [r.send_id, r.token, r.category, r.channel, "1" if r.consent_default else "0"]
            batch.evalsha(self._handover.sha, len(keys), *keys, *args)
        results = scripts.execute(self.client, batch)
        tail = results[len(results) - len(by_channel) - len(by_shard) :]
        suppressed, gates = tail[: len(by_channel)], tail[len(by_channel) :]
        statuses = [""] * len(requests)
        now_ms = 0
        for indexes, out in zip(by_shard.values(), gates, strict=True):
            now_ms = int(out[0])
            for i, status in zip(indexes, out[1:], strict=True):
                statuses[i] = _str(status)
        for indexes, hits in zip(by_channel.values(), suppressed, strict=True):
            for i, hit in zip(indexes, hits, strict=True):
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
        args = [
            send_id, state, str(ceil_ms(due)) if due else "", entry, name, value,
            str(to_ms(self.clock.now())), reason or state, bucket, token,
            f"{latency:.3f}" if latency is not None else "", self.history_ms, self.keys.tag(shard), *notes,
        ]  # fmt: skip
        if pipe is not None:
            # EVALSHA straight into the pipeline: redis-py would otherwise ask
            # SCRIPT EXISTS on every execute (a round trip per outcome).
            pipe.evalsha(self._finish.sha, len(keys), *keys, *args)
            return None
        return _str(self._finish(keys=keys, args=args))

    # -- reading --------------------------------------------------------------------------

    def _expand(self, raw: dict[str, str]) -> dict[str, str]:
        """A send's own hash as the dict every reader uses (intent and event fields spelled out)."""
        intent = self.intent(raw.pop("intent"))
        start36, created36, event_id = raw.pop("event").split(",", 2)
        return {
            **intent.fields,
            "start": from_ms(int(start36, 36)).isoformat(),
            "created_ms": str(int(created36, 36)),
            "event_id": event_id,
            **raw,
        }

    def get(self, send_id: str) -> dict[str, str] | None:
        return self.get_many([send_id])[0]

    def get_many(self, send_ids: list[str]) -> list[dict[str, str] | None]:
        """Sends by id, in either form; None for an id that is unknown (or not a send id)."""
        valid = [i for i, send_id in enumerate(send_ids) if is_send_id(send_id)]
        out: list[dict[str, str] | None] = [None] * len(send_ids)
        pipe = self.client.pipeline(transaction=False)
        for i in valid:
            pipe.hgetall(self.keys.send(send_ids[i]))
        compact = []
        for i, raw in zip(valid, pipe.execute() if valid else [], strict=True):
            if raw:
                out[i] = self._expand({_str(k): _str(v) for k, v in raw.items()})
            else:
                compact.append(i)
        if compact:
            pipe = self.client.pipeline(transaction=False)
            for i in compact:
                event, step, customer_id = split_send_id(send_ids[i])
                pipe.hmget(self.keys.planned(customer_id), event + step, event, event + "d")
                pipe.zscore(self.keys.due(self.keys.shard_of(customer_id)), send_ids[i])
            replies = pipe.execute()
            for n, i in enumerate(compact):
                (ref, meta, data), due = replies[2 * n], replies[2 * n + 1]
                if ref is None or meta is None or due is None:
                    continue
                send_id = send_ids[i]
                due_ms = str(int(due))
                raw = {
                    "id": send_id, "customer_id": split_send_id(send_id)[2], "intent": _str(ref),
                    "event": _str(meta), "data": _str(data) or "{}", "state": "scheduled",
                    "due_ms": due_ms, "resolved_ms": due_ms, "attempts": "0",
                }  # fmt: skip
                out[i] = self._expand(raw)
        return out

    def history(self, send_id: str) -> list[dict[str, Any]]:
        """What happened to a send and why: how it was planned, then every later entry."""
        send = self.get(send_id)
        if send is None:
            return []
        entries = [_planned_entry(send, self.intent_of(send))]
        return entries + [json.loads(x) for x in self.client.lrange(self.keys.send_log(send_id), 0, -1)]

    def intent_of(self, send: Mapping[str, str]) -> Intent:
        return Intent(**{name: send.get(name, "") for name in Intent.__dataclass_fields__})

    def note(self, send_id: str, entry: str) -> None:
        """Add to a send's history (never recreating the history of an erased send)."""
        self._note(keys=[self.keys.send(send_id), self.keys.send_log(send_id)], args=[entry])

    def due_between(self, start: datetime | None, end: datetime | None, limit: int = 100):
        """(send id, due) pairs in due order, over every shard."""
        low = to_ms(start) if start else "-inf"
        high = to_ms(end) if end else "+inf"
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrangebyscore(self.keys.due(shard), low, high, start=0, num=limit, withscores=True)
        rows = merge(*pipe.execute(), key=lambda row: (row[1], row[0]))
        return [(_str(member), from_ms(score)) for member, score in islice(rows, limit)]

    def inflight(self, limit: int = 100):
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrange(self.keys.inflight(shard), 0, limit - 1, withscores=True)
        rows = merge(*pipe.execute(), key=lambda row: (row[1], row[0]))
        return [(_str(member), from_ms(score)) for member, score in islice(rows, limit)]

    def due_of(self, send_id: str) -> datetime | None:
        """When a send is next due in the schedule (None when it is not waiting there)."""
        score = self.client.zscore(self.keys.due(self.keys.shard_of_send(send_id)), send_id)
        return from_ms(score) if score is not None else None

    def next_due(self) -> datetime | None:
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrange(self.keys.due(shard), 0, 0, withscores=True)
        scores = [rows[0][1] for rows in pipe.execute() if rows]
        return from_ms(min(scores)) if scores else None

    def depth(self) -> tuple[int, int]:
        """(waiting, in flight)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zcard(self.keys.due(shard))
            pipe.zcard(self.keys.inflight(shard))
        counts = pipe.execute()
        return sum(counts[0::2]), sum(counts[1::2])

    def count_due(self, ranges: list[tuple[int | str, int | str]]) -> list[int]:
        """Sends due in each (low, high) range of UTC ms (ZCOUNT bounds), over every shard."""
        pipe = self.client.pipeline(transaction=False)
        for low, high in ranges:
            for shard in range(self.keys.shards):
                pipe.zcount(self.keys.due(shard), low, high)
        counts = pipe.execute()
        n = self.keys.shards
        return [sum(counts[i * n : (i + 1) * n]) for i in range(len(ranges))]

    def forget_outcomes(self) -> int:
        """Drop outcomes older than the history kept (their sends are gone); returns how many."""
        if not self.history_ms:
            return 0
        cutoff = to_ms(self.clock.now()) - self.history_ms
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zremrangebyscore(self.keys.outcomes(shard), "-inf", f"({cutoff}")
        return sum(pipe.execute())

    def finished_between(self, low: int, high: int, batch: int) -> Iterator[list[tuple[str, int]]]:
        """Batches of (send id, UTC ms of its final state) in [low, high], shard by shard."""
        for shard in range(self.keys.shards):
            offset = 0
            while True:
                rows = self.client.zrangebyscore(
                    self.keys.outcomes(shard), low, high, start=offset, num=batch, withscores=True
                )
                if rows:
                    yield [(_str(member), int(score)) for member, score in rows]
                if len(rows) < batch:
                    break
                offset += len(rows)

    def open_sends(self, customer_id: str) -> list[dict[str, str]]:
        """The customer's sends that have not reached a final state: planned, claimed or waiting."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hkeys(self.keys.planned(customer_id))
        pipe.smembers(self.keys.open_sends(customer_id))
        fields, claimed = pipe.execute()
        ids = planned_send_ids(map(_str, fields), customer_id) + [_str(x) for x in claimed]
        sends = self.get_many(sorted(set(ids)))
        return [s for s in sends if s is not None and s["state"] not in FINAL_STATES]

    def send_ids_of(self, customer_id: str) -> list[str]:
        """Every send of a customer, planned or not."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hkeys(self.keys.planned(customer_id))
        pipe.smembers(self.keys.customer_sends(customer_id))
        fields, others = pipe.execute()
        return sorted(set(planned_send_ids(map(_str, fields), customer_id)) | {_str(x) for x in others})

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
        state = _str(self.client.hget(self.keys.send(send_id), "state"))
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


def _planned_entry(send: Mapping[str, str], intent: Intent) -> dict[str, Any]:
    """The history's first entry, made again from the intent: how the send was planned."""
    start = datetime.fromisoformat(send["start"]).astimezone(UTC)
    entry: dict[str, Any] = {"at_ms": int(send["created_ms"]), "what": "planned"}
    origin = f"from event {intent.event_type} at {start.isoformat()}"
    try:
        resolution = resolve(intent.send_rule(), start, intent.zone)
    except TimingError as exc:
        entry["text"] = f"{intent.journey}.{intent.step} planned {origin}; its rule no longer resolves: {exc}"
        return entry
    entry["text"] = (
        f"{intent.journey}.{intent.step} planned for {resolution.local.isoformat()} ({intent.zone}) {origin}"
    )
    entry["resolution"] = resolution.to_mapping()
    return entry
