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

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import redis

from ..clock import to_ms
from ..customers.profile import Customer
from ..schedule import Schedule, Send
from ..store import scripts
from ..store.keys import Keys, split_send_id
from ..store.replies import text_fields, text_or_none, texts
from .config import Journey, Step
from .events import Event
from .planning import Steps


class IngestNotes(Protocol):
    """Where an event's collection is said: what it planned, and notes (``ingest.IngestResult``)."""

    planned: list[str]
    notes: list[str]


#: How long a sealed digest keeps its list (for a retry, for explain), in seconds.
ITEMS_TTL = 30 * 86400


def digest_key(step: Step, data: Mapping[str, Any]) -> str:
    """Which collection of the step an event (or a send, by its first event's data) belongs to: the
    ``by`` field's value as canonical JSON (``1`` and ``"1"`` are two orders; "" without ``by``)."""
    assert step.digest is not None
    if step.digest.by is None:
        return ""
    return json.dumps(data.get(step.digest.by), sort_keys=True, ensure_ascii=False, default=str)


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
        at: datetime, data: Mapping[str, Any], notes: list[str], planned: list[str] | None = None, *,
        opens: datetime | None = None,
    ) -> tuple[str, str] | None:  # fmt: skip
        """List one event (it happened ``at``) in the step's open digest, or open one, whose window
        counts from ``opens`` (default: ``at``): ('opened' | 'joined' | 'seen', send id), the send
        opened added to ``planned`` and a join said in ``notes``; None when it cannot be planned (said
        in ``notes``) or the customer is gone."""
        call = self._call(journey, step, customer, event_id, event_type, at, data, notes, planned, opens)
        return self._run_one(call) if call else None

    def collect_many(self, items: list[tuple[Journey, Step, Customer, Event, IngestNotes]]) -> None:
        """``collect`` for many events in about two round trips: the open sends read in one, the scripts
        run in another; an event whose open send changed meanwhile (another event of the same
        collection, in the same batch) is collected again on its own."""
        calls = [
            self._call(j, s, c, e.id, e.type, e.occurred_at, e.data, r.notes, r.planned)
            for j, s, c, e, r in items
        ]
        ready = [call for call in calls if call is not None]
        if not ready:
            return
        pipe = self.client.pipeline(transaction=False)
        for call in ready:
            pipe.hget(call.state, "open")
        opens = [text_or_none(value) or "" for value in pipe.execute()]
        replies = scripts.run_many(
            self.client,
            self._collect,
            [call.with_open(self.keys, o) for call, o in zip(ready, opens, strict=True)],
        )
        for call, reply in zip(ready, replies, strict=True):
            verdict, *rest = texts(reply)
            if verdict == "retry":
                self._run_one(call)
            else:
                call.said(verdict, rest)

    def _call(
        self, journey: Journey, step: Step, customer: Customer, event_id: str, event_type: str,
        at: datetime, data: Mapping[str, Any], notes: list[str], planned: list[str] | None,
        opens: datetime | None = None,
    ) -> _Collect | None:  # fmt: skip
        """The script call that collects one event, but for its open send (``_Collect.with_open``)."""
        assert step.digest is not None
        start = (opens or at).replace(microsecond=(opens or at).microsecond // 1000 * 1000)
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
        # Kept longer than the window can last: its days, and a month of deferrals and retries.
        ttl = self.ttl + (step.send_rule(None).days + 31) * 86400
        args: list[str | bytes | int] = [event_id, item, step.digest.max_items, ttl, *planning]
        return _Collect(f"{journey.name}.{step.name}", state, keys, args, notes, planned)

    def _run_one(self, call: _Collect) -> tuple[str, str] | None:
        while True:
            # The open send is read first, so that the script declares its hash (one slot, any cluster).
            open_id = text_or_none(self.client.hget(call.state, "open")) or ""
            verdict, *rest = texts(self._collect(*call.with_open(self.keys, open_id)))
            if verdict != "retry":
                return call.said(verdict, rest)

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
        start = self.keys.digests_of(journey.name, customer.id)
        owned = texts(self.client.smembers(self.keys.customer_keys(customer.id)))
        found = [key for key in owned if key.startswith(start)]  # the customer's own: their key set
        if found:
            self.client.delete(*found)


@dataclass
class _Collect:
    """One event's call of ``lua/collect.lua``, and where its outcome is said."""

    ref: str
    state: str
    keys: list[str]
    args: list[str | bytes | int]
    notes: list[str]
    planned: list[str] | None

    def with_open(self, keys: Keys, open_id: str) -> tuple[list[str], list[str | bytes | int]]:
        """(keys, args) for the send the caller read as open (``''``: none)."""
        held = [keys.send(open_id), _field(open_id)] if open_id else [self.state, ""]
        return [*self.keys, held[0]], [*self.args, open_id, held[1]]

    def said(self, verdict: str, rest: list[str]) -> tuple[str, str] | None:
        if verdict == "gone":
            return None
        if verdict == "opened" and self.planned is not None:
            self.planned.append(rest[0])
        elif verdict != "opened":
            listed = "listed already" if verdict == "seen" else "listed"
            self.notes.append(f"{self.ref}: {listed} in the digest {rest[0]}")
        return verdict, rest[0]


def _field(send_id: str) -> str:
    """A planned send's field in its customer's plan hash (``schedule.compact_send``)."""
    event, step, _ = split_send_id(send_id)
    return event + step


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
