"""Digest steps: one message for the events of a window, per customer (and per ``by`` value).

The first event of a window plans the digest's send, as any step's, from that event: its rule
says when the window closes (``hours = 4``, ``at = "18:00"``). Each later event joins that send's
list (``lua/collect.lua``: the check and the add are one step, so events that race list once
each and open one send). When the send is about to be rendered, its list is sealed
(``lua/seal.lua``): an event after that opens the next window. An event is listed once, even
when it is applied again after a crash; a full list (``max_items``) opens the next send. An exit
of the journey cancels the open send and forgets the collection.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis

from ..clock import to_ms
from ..customers.profile import Customer
from ..schedule import Schedule, Send
from ..store import scripts
from ..store.keys import Keys, split_send_id
from ..store.replies import text_fields, text_or_none, texts
from .config import Journey, Step
from .planning import Steps

#: How long a sealed digest keeps its list (for a retry, for explain), in seconds.
ITEMS_TTL = 30 * 86400


def digest_key(step: Step, data: Mapping[str, Any]) -> str:
    """Which collection of the step an event (or a send, by its first event's data) belongs to."""
    assert step.digest is not None
    if step.digest.by is None:
        return ""
    value = data.get(step.digest.by)
    return "" if value is None else str(value)


class Digests:
    def __init__(self, client: redis.Redis, keys: Keys, schedule: Schedule, steps: Steps, ttl: int) -> None:
        self.client = client
        self.keys = keys
        self.schedule = schedule
        self.steps = steps
        #: The collection's time to live (the event markers' too: ``OUTREACH_EVENT_TTL_DAYS``).
        self.ttl = ttl
        self._collect = scripts.load(client, __package__, "collect")
        self._seal = scripts.load(client, __package__, "seal")

    def collect(
        self, journey: Journey, step: Step, customer: Customer, event_id: str, event_type: str,
        at: datetime, data: Mapping[str, Any], notes: list[str], planned: list[str] | None = None,
    ) -> tuple[str, str] | None:  # fmt: skip
        """List one event in the step's open digest, or open one: ('opened' | 'joined' | 'seen', send
        id), the send opened added to ``planned`` and a join said in ``notes``; None when it cannot be
        planned (said in ``notes``) or the customer is gone."""
        assert step.digest is not None
        start = at.replace(microsecond=at.microsecond // 1000 * 1000)
        resolved = self.steps.resolve(journey, step, customer, event_id, event_type, start, data, notes)
        if resolved is None:
            return None
        send_id, due, intent = resolved
        state = self.keys.digest(journey.name, step.name, customer.id, digest_key(step, data))
        keys = [
            self.keys.due(self.keys.shard_of(customer.id)),
            self.keys.planned(customer.id),
            self.keys.customer_keys(customer.id),
            self.keys.customer(customer.id),
            state,
            self.keys.send(send_id),
            *self.schedule.done_keys(send_id),
        ]
        _, due_ms, send_field, ref, mark = self.schedule.compact_send(send_id, due, intent)
        event_field, meta, body = self.schedule.compact_event(event_id, start, data)
        item = json.dumps([to_ms(at), data], ensure_ascii=False, separators=(",", ":"), default=str)
        planning = [send_id, due_ms, send_field, event_field, ref, meta, body, mark]
        while True:
            # The open send is read first, so that the script declares its hash (one slot, any cluster).
            open_id = text_or_none(self.client.hget(state, "open")) or ""
            held = [self.keys.send(open_id), _field(open_id)] if open_id else [state, ""]
            args: list[str | bytes | int] = [event_id, item, step.digest.max_items, self.ttl, *planning,
                                             open_id, held[1]]  # fmt: skip
            verdict, *rest = texts(self._collect(keys=[*keys, held[0]], args=args))
            if verdict != "retry":
                break
        if verdict == "gone":
            return None
        if verdict == "opened" and planned is not None:
            planned.append(rest[0])
        elif verdict != "opened":
            listed = "listed already" if verdict == "seen" else "listed"
            notes.append(f"{journey.name}.{step.name}: {listed} in the digest {rest[0]}")
        return verdict, rest[0]

    def seal(self, send: Send, step: Step) -> list[dict[str, Any]]:
        """The events a digest send lists, in the order they happened; its list closes for good."""
        state = self.keys.digest(send.journey, step.name, send.customer_id, digest_key(step, send.data))
        keys = [state, self.keys.digest_items(send.id), self.keys.customer_keys(send.customer_id)]
        raw = text_fields(_pairs(self._seal(keys=keys, args=[send.id, ITEMS_TTL])))
        items = sorted(
            (json.loads(value) + [event_id] for event_id, value in raw.items()), key=lambda x: (x[0], x[2])
        )
        return [{"event_id": event_id, "at_ms": at_ms, "data": data} for at_ms, data, event_id in items]

    def forget(self, journey: Journey, customer: Customer) -> None:
        """The journey was exited: its collections start afresh with the next event."""
        pattern = self.keys.digest(journey.name, "*", customer.id, "*")
        owned = texts(self.client.smembers(self.keys.customer_keys(customer.id)))
        found = [key for key in owned if fnmatch.fnmatchcase(key, pattern)]
        if found:
            self.client.delete(*found)


def _field(send_id: str) -> str:
    """A planned send's field in its customer's plan hash (``schedule.compact_send``)."""
    event, step, _ = split_send_id(send_id)
    return event + step


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
