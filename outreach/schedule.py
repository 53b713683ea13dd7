"""The durable schedule: planned sends in Redis sorted sets, claimed under a lease by Lua scripts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from . import scripts
from .clock import Clock, from_ms, to_ms
from .keys import Keys

#: Upper bounds (seconds) of the delivery-latency histogram: planned instant to hand-over.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)
#: States in which a send will never be attempted again.
FINAL_STATES = frozenset({"delivered", "failed", "suppressed", "cancelled"})


def log_entry(at: datetime, what: str, text: str, **data: Any) -> str:
    """One JSON line of a send's history."""
    return json.dumps(
        {"at_ms": to_ms(at), "what": what, "text": text, **data},
        ensure_ascii=False,
        default=str,
    )


def _str(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Claim:
    send_id: str
    token: str


class Schedule:
    """Planned sends by due time; every transition is one atomic script."""

    def __init__(self, client: redis.Redis, keys: Keys, clock: Clock, lease_seconds: int) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.lease_ms = lease_seconds * 1000
        self._held = threading.local()
        self._claim = scripts.load(client, "claim")
        self._reap = scripts.load(client, "reap")
        self._begin = scripts.load(client, "begin")
        self._finish = scripts.load(client, "finish")
        self._plan = scripts.load(client, "plan")
        self._cancel = scripts.load(client, "cancel")

    # -- planning -------------------------------------------------------------------------

    def plan(self, send_id: str, due: datetime, fields: dict[str, str], entry: str) -> bool:
        """Add a send once; returns False when the id was already planned."""
        args: list[str] = [send_id, str(to_ms(due)), entry]
        for name, value in {**fields, "state": "scheduled", "due_ms": str(to_ms(due))}.items():
            args += [name, value]
        keys = [
            self.keys.due,
            self.keys.send(send_id),
            self.keys.send_log(send_id),
            self.keys.pending(fields["customer_id"], fields["journey"]),
        ]
        return bool(self._plan(keys=keys, args=args))

    def cancel(self, send_id: str, reason: str, text: str) -> str | None:
        """Tombstone a send; returns the state it had (None if unknown)."""
        entry = log_entry(self.clock.now(), "cancelled", text, reason=reason)
        keys = [
            self.keys.due,
            self.keys.inflight,
            self.keys.send(send_id),
            self.keys.send_log(send_id),
            self.keys.outcomes,
            self.keys.stats,
        ]
        args = [send_id, reason, entry, str(to_ms(self.clock.now()))]
        return _str(self._cancel(keys=keys, args=args)) or None

    # -- claiming -------------------------------------------------------------------------

    def claim(self, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due sends to the caller."""
        out = self._claim(
            keys=[self.keys.due, self.keys.inflight, self.keys.claim_seq],
            args=[self.clock.script_now(), limit, self.lease_ms, self.keys.prefix + "send:"],
        )
        pairs = [_str(x) for x in out[1:]]
        return [Claim(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]

    def reap(self, limit: int) -> list[str]:
        """Return sends whose lease expired to the schedule."""
        out = self._reap(
            keys=[self.keys.inflight, self.keys.due],
            args=[self.clock.script_now(), limit, self.keys.prefix + "send:"],
        )
        return [_str(x) for x in out]

    def begin(self, claims: list[Claim]) -> list[str]:
        """Start attempts; one status per claim ('go', 'stale', 'cancelled' or a final state)."""
        args: list[str] = [self.clock.script_now(), str(self.lease_ms), self.keys.prefix + "send:"]
        for claim in claims:
            args += [claim.send_id, claim.token]
        keys = [self.keys.inflight, self.keys.outcomes, self.keys.stats]
        return [_str(x) for x in self._begin(keys=keys, args=args)]

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
        pipe: redis.client.Pipeline | None = None,
    ) -> str | None:
        """Record an attempt's outcome; a retry or deferral goes back to the schedule at ``due``.

        ``latency`` (seconds from the planned instant to delivery) is counted in a histogram bucket.
        With ``pipe``, the script joins that pipeline (the caller executes it) and None is returned.
        """
        keys = [
            self.keys.inflight,
            self.keys.due,
            self.keys.send(send_id),
            self.keys.send_log(send_id),
            self.keys.outcomes,
            self.keys.stats,
        ]
        name, value = field or ("", "")
        bucket = ""
        if latency is not None:
            bound = next((b for b in LATENCY_BUCKETS if latency <= b), None)
            bucket = f"latency:le:{bound:g}" if bound is not None else "latency:le:+Inf"
        args = [
            send_id, state, str(to_ms(due)) if due else "", entry, name, value,
            str(to_ms(self.clock.now())), reason or state, bucket, token,
            f"{latency:.3f}" if latency is not None else "",
        ]  # fmt: skip
        notes = self._held_notes(send_id)
        if notes:
            (pipe or self.client).rpushx(self.keys.send_log(send_id), *notes)
        if pipe is not None:
            # EVALSHA straight into the pipeline: redis-py would otherwise ask
            # SCRIPT EXISTS on every execute (a round trip per outcome).
            pipe.evalsha(self._finish.sha, len(keys), *keys, *args)
            return None
        return _str(self._finish(keys=keys, args=args))

    # -- reading --------------------------------------------------------------------------

    def get(self, send_id: str) -> dict[str, str] | None:
        raw = self.client.hgetall(self.keys.send(send_id))
        return {_str(k): _str(v) for k, v in raw.items()} if raw else None

    def get_many(self, send_ids: list[str]) -> list[dict[str, str] | None]:
        pipe = self.client.pipeline(transaction=False)
        for send_id in send_ids:
            pipe.hgetall(self.keys.send(send_id))
        return [{_str(k): _str(v) for k, v in raw.items()} or None for raw in pipe.execute()]

    def history(self, send_id: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.client.lrange(self.keys.send_log(send_id), 0, -1)]

    def note(self, send_id: str, entry: str, *, with_outcome: bool = False) -> None:
        """Add to a send's history (never recreating the history of an erased send).

        ``with_outcome`` holds the entry until this thread records the send's
        outcome, which then writes both in the same round trip.
        """
        if with_outcome:
            held = self._held.__dict__.setdefault("notes", {})
            held.setdefault(send_id, []).append(entry)
        else:
            self.client.rpushx(self.keys.send_log(send_id), entry)

    def _held_notes(self, send_id: str) -> list[str]:
        return self._held.__dict__.get("notes", {}).pop(send_id, [])

    def due_between(self, start: datetime | None, end: datetime | None, limit: int = 100):
        """(send id, due) pairs in due order."""
        low = to_ms(start) if start else "-inf"
        high = to_ms(end) if end else "+inf"
        rows = self.client.zrangebyscore(self.keys.due, low, high, start=0, num=limit, withscores=True)
        return [(_str(member), from_ms(score)) for member, score in rows]

    def inflight(self, limit: int = 100):
        rows = self.client.zrange(self.keys.inflight, 0, limit - 1, withscores=True)
        return [(_str(member), from_ms(score)) for member, score in rows]

    def next_due(self) -> datetime | None:
        rows = self.client.zrange(self.keys.due, 0, 0, withscores=True)
        return from_ms(rows[0][1]) if rows else None

    def depth(self) -> tuple[int, int]:
        """(waiting, in flight)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.keys.due)
        pipe.zcard(self.keys.inflight)
        waiting, inflight = pipe.execute()
        return waiting, inflight

    def pending_ids(self, customer_id: str, journey: str) -> list[str]:
        return sorted(_str(x) for x in self.client.smembers(self.keys.pending(customer_id, journey)))

    def forget_pending(self, customer_id: str, journey: str, send_id: str, pipe=None) -> None:
        (pipe or self.client).srem(self.keys.pending(customer_id, journey), send_id)

    def record(self, build: Callable[[redis.client.Pipeline], None]) -> None:
        """Run ``build`` into one pipeline and execute it; reload scripts once if Redis lost them."""
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            build(pipe)
            try:
                pipe.execute()
                return
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                self._finish.sha = self.client.script_load(self._finish.script)

    def renew(self, send_ids: list[str]) -> None:
        """Extend the leases of claimed sends still waiting in a long batch."""
        if send_ids:
            deadline = to_ms(self.clock.now()) + self.lease_ms
            self.client.zadd(self.keys.inflight, dict.fromkeys(send_ids, deadline), xx=True)

    def requeue(self, send_id: str) -> None:
        """Plan a failed send again, due now, with a fresh attempt count (dead-letter replay)."""
        now = self.clock.now()
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.send(send_id), mapping={"state": "scheduled", "attempts": "0"})
        pipe.hdel(self.keys.send(send_id), "reason", "token")
        pipe.zadd(self.keys.due, {send_id: to_ms(now)})
        pipe.rpush(
            self.keys.send_log(send_id),
            log_entry(now, "replayed", "replayed from the dead-letter store"),
        )
        pipe.execute()
