"""Reading the schedule: a send in either form as one typed ``Send``, its history, and the
due, in-flight and finished sends over every shard."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from heapq import merge
from itertools import islice
from typing import Any, cast

import redis

from ..clock import Clock, from_ms, to_ms
from ..customers.profile import Customer
from ..errors import OutreachError, TimingError
from ..store.keys import Keys, is_send_id, planned_send_ids, split_send_id
from ..store.replies import text, text_fields, text_or_none, texts
from ..timing import CustomerCalendar, resolve
from .send import Intent, Send, SendState, Stop


class Reads:
    """The read side of ``Schedule`` (a mixin: ``Schedule`` is the one object callers hold)."""

    client: redis.Redis
    keys: Keys
    clock: Clock
    window_ms: int
    _intents: dict[str, Intent]

    def done_keys(self, send_id: str) -> tuple[str, str]:
        """The two ``done`` hashes an archived send's mark may be in now (``Keys.done``)."""
        return self.keys.done_pair(send_id, to_ms(self.clock.now()), self.window_ms)

    def intent(self, ref: str) -> Intent:
        found = self._intents.get(ref)
        if found is None:
            raw = self.client.hget(self.keys.intents, ref)
            if raw is None:
                raise OutreachError(f"intent {ref} is missing from {self.keys.intents}")
            found = self._intents[ref] = Intent.of(json.loads(raw))
        return found

    def stops_of(self, sends: Sequence[Send]) -> list[Stop]:
        """Read only: what stopping these sends now would answer (for consent and do-not-contact).

        A send whose hand-over has begun is ``too_late``; any other open send will
        not go out, because the hand-over gate reads the change.
        """
        out = []
        for send in sends:
            if send.state == SendState.DELIVERED or send.handing:
                out.append(Stop(send.id, "too_late", send.state.value, send.handed))
            elif send.is_final:
                out.append(Stop(send.id, "final", send.state.value, send.handed))
            else:
                out.append(Stop(send.id, "cancelled", send.state.value, send.handed))
        return out

    # -- reading --------------------------------------------------------------------------

    def expand(self, raw: dict[str, str]) -> Send:
        """A send's stored fields (either form) decoded: intent and event fields spelled out."""
        intent = self.intent(raw.pop("intent"))
        start36, created36, event_id = raw.pop("event").split(",", 2)
        fields = {
            **intent.fields,
            "start": from_ms(int(start36, 36)).isoformat(),
            "created_ms": str(int(created36, 36)),
            "event_id": event_id,
            **raw,
        }
        return Send.from_fields(fields, intent)

    def get(self, send_id: str) -> Send | None:
        return self.get_many([send_id])[0]

    def get_many(self, send_ids: list[str]) -> list[Send | None]:
        """Sends by id, in either form; None for an id that is unknown (or not a send id)."""
        valid = [i for i, send_id in enumerate(send_ids) if is_send_id(send_id)]
        out: list[Send | None] = [None] * len(send_ids)
        pipe = self.client.pipeline(transaction=False)
        for i in valid:
            pipe.hgetall(self.keys.send(send_ids[i]))
        compact = []
        for i, raw in zip(valid, pipe.execute() if valid else [], strict=True):
            if raw:
                out[i] = self.expand(text_fields(raw))
            else:
                compact.append(i)
        if compact:
            pipe = self.client.pipeline(transaction=False)
            for i in compact:
                event, step, customer_id = split_send_id(send_ids[i])
                pipe.hmget(self.keys.planned(customer_id), event + step, event, event + "d")
                pipe.zscore(self.keys.due(self.keys.shard_of(customer_id)), send_ids[i])
            replies = pipe.execute()
            # Not in the customer's plan hash: perhaps a broadcast's send, in its own compact form.
            broadcast = self._broadcast_forms(
                [send_ids[i] for n, i in enumerate(compact) if replies[2 * n][0] is None]
            )
            for n, i in enumerate(compact):
                (ref, meta, data), due = replies[2 * n], replies[2 * n + 1]
                ref, meta, data = broadcast.get(send_ids[i]) or (ref, meta, data)
                if ref is None or meta is None or due is None:
                    continue
                send_id = send_ids[i]
                due_ms = str(int(due))
                out[i] = self.expand({  # the fields materialize() in _prelude.lua writes
                    "id": send_id, "customer_id": split_send_id(send_id)[2],
                    "intent": text(ref), "event": text(meta), "data": text_or_none(data) or "{}",
                    "state": SendState.SCHEDULED.value, "due_ms": due_ms, "resolved_ms": due_ms,
                    "attempts": "0",
                })  # fmt: skip
        return out

    def _broadcast_forms(self, send_ids: list[str]) -> dict[str, tuple[bytes, bytes | None, bytes | None]]:
        """(intent ref, event value, data) of the sends planned in a broadcast's compact form (a field
        of the broadcast's hash in the shard: ``broadcasts/lua/plan.lua``); two round trips."""
        if not send_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        places = []
        for send_id in send_ids:
            event, _, customer_id = split_send_id(send_id)
            places.append(self.keys.broadcast(self.keys.shard_of(customer_id), event))
            pipe.hget(places[-1], ">" + customer_id)
        held = [(send_id, place, text(value)) for send_id, place, value in
                zip(send_ids, places, pipe.execute(), strict=True) if value is not None]  # fmt: skip
        if not held:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for _, place, value in held:
            pipe.hmget(place, "m:" + value[:12], "data")
        out = {}
        for (send_id, _, value), (meta, data) in zip(held, pipe.execute(), strict=True):
            own = value[13:].encode() or None
            out[send_id] = (value[:12].encode(), meta, own or data)
        return out

    def history(self, send_id: str) -> list[dict[str, Any]]:
        """What happened to a send and why: how it was planned, then every later entry."""
        send = self.get(send_id)
        if send is None:
            return []
        return self.history_of(
            send, [json.loads(x) for x in self.client.lrange(self.keys.send_log(send_id), 0, -1)]
        )

    def history_of(self, send: Send, later: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A send's history: how it was planned (made again from its intent), then ``later``."""
        # The customer's calendar (region, observances) is theirs, not the intent's: read it now.
        raw = self.client.get(self.keys.customer(send.customer_id))
        calendar = Customer.from_json(raw).calendar if raw else None
        return [_planned_entry(send, calendar), *later]

    def due_between(
        self, start: datetime | None, end: datetime | None, limit: int = 100
    ) -> list[tuple[str, datetime]]:
        """(send id, due) pairs in due order, over every shard."""
        low = to_ms(start) if start else "-inf"
        high = to_ms(end) if end else "+inf"
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrangebyscore(self.keys.due(shard), low, high, start=0, num=limit, withscores=True)
        rows = merge(*pipe.execute(), key=lambda row: (row[1], row[0]))
        return [(text(member), from_ms(score)) for member, score in islice(rows, limit)]

    def inflight(self, limit: int = 100) -> list[tuple[str, datetime]]:
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrange(self.keys.inflight(shard), 0, limit - 1, withscores=True)
        rows = merge(*pipe.execute(), key=lambda row: (row[1], row[0]))
        return [(text(member), from_ms(score)) for member, score in islice(rows, limit)]

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

    def finished_between(self, low: int, high: int, batch: int) -> Iterator[list[tuple[str, int]]]:
        """Batches of (send id, UTC ms of its final state) in [low, high], shard by shard."""
        for shard in range(self.keys.shards):
            offset = 0
            while True:
                rows = self.client.zrangebyscore(
                    self.keys.outcomes(shard), low, high, start=offset, num=batch, withscores=True
                )
                if rows:
                    yield [
                        (text(member), int(score)) for member, score in cast(list[tuple[bytes, float]], rows)
                    ]
                if len(rows) < batch:
                    break
                offset += len(rows)

    def open_sends(self, customer_id: str) -> list[Send]:
        """The customer's sends that have not reached a final state: planned, claimed or waiting."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hkeys(self.keys.planned(customer_id))
        pipe.smembers(self.keys.open_sends(customer_id))
        fields, claimed = pipe.execute()
        ids = planned_send_ids(texts(fields), customer_id) + texts(claimed)
        sends = self.get_many(sorted(set(ids)))
        return [s for s in sends if s is not None and not s.is_final]

    def send_ids_of(self, customer_id: str) -> list[str]:
        """Every send of a customer, planned or not."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hkeys(self.keys.planned(customer_id))
        pipe.smembers(self.keys.customer_sends(customer_id))
        fields, others = pipe.execute()
        return sorted(set(planned_send_ids(texts(fields), customer_id)) | set(texts(others)))


def _planned_entry(send: Send, calendar: CustomerCalendar | None) -> dict[str, Any]:
    """The history's first entry, made again from the intent and the customer's calendar: how the
    send was planned."""
    intent = send.intent
    start = send.start.astimezone(UTC)
    entry: dict[str, Any] = {"at_ms": to_ms(send.created), "what": "planned"}
    origin = f"from event {intent.event_type} at {start.isoformat()}"
    try:
        rule = intent.send_rule(calendar)
        resolution = resolve(rule, rule.start(start, send.data, intent.zone), intent.zone)
        if rule.anchor:
            origin += f", counted {'back ' if rule.backward else ''}from data.{rule.anchor}"
    except TimingError as exc:
        entry["text"] = f"{intent.journey}.{intent.step} planned {origin}; its rule no longer resolves: {exc}"
        return entry
    entry["text"] = (
        f"{intent.journey}.{intent.step} planned for {resolution.local.isoformat()} ({intent.zone}) {origin}"
    )
    learned = json.loads(intent.rule).get("learned")
    if isinstance(learned, dict):  # a send time learned from the customer's answers and clicks
        entry["text"] += f"; send time learned: {learned.get('why')}"
    entry["resolution"] = resolution.to_mapping()
    if intent.experiment:  # which arm the customer's bucket gave (``journeys.experiments``)
        entry["text"] += f"; experiment {intent.experiment}: arm {intent.variant}"
        entry["experiment"], entry["variant"] = intent.experiment, intent.variant
    return entry
