"""Branches on a later event: steps that wait for one (``when``), and steps one cancels (``unless``).

"Wait up to 3 days for ``customer.activated``, then branch" is two steps: one with
``when = "customer.activated"`` and ``within_days = 3`` (it came: planned then, its
rule counted from that event), and one with ``unless = "customer.activated"`` and
``days = 3`` (it did not come: sent after three days, cancelled with reason
``event_came`` if the event comes first).

A journey with waiting steps keeps its start per customer, and per value of its
``supersede_by`` field when it has one (one per order: the awaited event must carry the
same field), with the trigger's id, time and data, for its longest wait. A waiting
step is planned once per start, with the trigger's data, which its templates were
checked against; a repeat of the awaited event changes nothing, and an exit of the
journey forgets the start.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import redis

from ..clock import from_ms, to_ms
from ..customers.profile import Customer
from ..schedule import Schedule
from ..store.keys import Keys
from ..store.replies import text_fields, texts
from .config import Journey, Journeys, Step
from .events import Event

#: Plans one step: (journey, step, customer, event id, event type, when, data, result).
Plan = Callable[[Journey, Step, Customer, str, str, datetime, Mapping[str, Any], Any], None]


def _scope(journey: Journey, event: Event) -> str | None:
    """Which start of the journey an event belongs to: its ``supersede_by`` value ("" without one)."""
    if not journey.supersede_by:
        return ""
    value = event.data.get(journey.supersede_by)
    return None if value is None or value == "" else str(value)


class Branches:
    def __init__(self, client: redis.Redis, keys: Keys, schedule: Schedule) -> None:
        self.client = client
        self.keys = keys
        self.schedule = schedule

    def started(self, journey: Journey, customer: Customer, event: Event) -> None:
        """Keep the journey's start for its steps that wait, as long as the longest wait (one start per
        value of the journey's ``supersede_by`` field: one per order, not one per customer)."""
        longest = max(step.within_days or 0 for step in journey.steps)
        key = self.keys.journey_start(journey.name, customer.id, _scope(journey, event) or "")
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping={"event_id": event.id, "at_ms": to_ms(event.occurred_at),
                                "data": json.dumps(event.data, ensure_ascii=False)})  # fmt: skip
        pipe.expire(key, int(timedelta(days=longest + 1).total_seconds()))
        pipe.sadd(self.keys.customer_keys(customer.id), key)  # erased with the customer
        pipe.execute()

    def forget(self, journey: Journey, customer: Customer) -> None:
        """The journey was exited: nothing waits any more, for any of its starts."""
        pattern = self.keys.journey_start(journey.name, customer.id, "*")
        owned = texts(self.client.smembers(self.keys.customer_keys(customer.id)))
        starts = [key for key in owned if fnmatch.fnmatchcase(key, pattern)]
        if starts:
            self.client.delete(*starts)

    def on_event(self, journeys: Journeys, event: Event, customer: Customer, result: Any, plan: Plan) -> None:
        """Cancel the steps this event stops (``unless``), plan the steps that waited for it (``when``)."""
        for journey, step in journeys.by_unless.get(event.type, []):
            for send in self.schedule.open_sends(customer.id):
                # Never the send this very event planned (a step "unless the same event comes again").
                if (send.journey, send.step) == (journey.name, step.name) and send.event_id != event.id:
                    text = f"{event.type} came (event {event.id}) before {journey.name}.{step.name} was sent"
                    result.record(self.schedule.cancel(send.id, "event_came", text))
        for journey, step in journeys.by_when.get(event.type, []):
            scope = _scope(journey, event)
            if scope is None:
                which = f"no data.{journey.supersede_by} to tell which start it belongs to"
                result.notes.append(f"{journey.name}.{step.name} not planned: {event.type} carries {which}")
                continue
            raw = text_fields(self.client.hgetall(self.keys.journey_start(journey.name, customer.id, scope)))
            if not raw:
                continue
            waited = event.occurred_at - from_ms(int(raw["at_ms"]))
            ref = f"{journey.name}.{step.name}"
            if not timedelta(0) <= waited <= timedelta(days=step.within_days or 0):
                late = f"{event.type} came {waited} after the start, outside its {step.within_days} days"
                result.notes.append(f"{ref} not planned: {late}")
                continue
            # One id per start and step: a repeat of the awaited event plans nothing twice.
            waited_for = f"{raw['event_id']}~{step.name}"
            data = json.loads(raw["data"])
            plan(journey, step, customer, waited_for, event.type, event.occurred_at, data, result)
