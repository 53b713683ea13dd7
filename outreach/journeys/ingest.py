"""Ingestion: one lifecycle event in, planned sends and cancellations out.

Idempotent: an event id already processed is skipped, and every effect is
idempotent on its own (send ids derive from the event id), so an event that is
processed again after a crash plans nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from ..clock import Clock, from_ms, to_ms
from ..customers.profile import Customer
from ..customers.profiles import Customers
from ..errors import InputError, TimingError
from ..registry import consentable
from ..schedule import Intent, Schedule, Stop
from ..store.keys import Keys, send_id_for
from ..timing import resolve
from .branches import Branches
from .config import Journey, Journeys, Step
from .events import Event
from .inbox import Inbox
from .recurring import Recurring


def unsubscribed_categories(event: Event) -> list[str]:
    """The categories a ``customer.unsubscribed`` event withdraws (never transactional)."""
    unsubscribable = consentable()
    named = event.data.get("categories") or list(unsubscribable)
    return [c for c in named if c in unsubscribable]


def _check_zone(customer: Customer, journeys: list[Journey]) -> None:
    """A customer whose zone is unknown cannot be sent anything at a local time."""
    if customer.zone_known:
        return
    for journey in journeys:
        for step in journey.steps:
            if step.send_rule(customer.country).local:
                country = (
                    f"its country {customer.country} has clocks in more than one zone"
                    if customer.country
                    else "no country either"
                )
                raise InputError(
                    "zone", None, f"customer {customer.id} has no time zone ({country}), and {journey.name}."
                    f"{step.name} goes out at local times: set the profile's zone, then replay",
                )  # fmt: skip


@dataclass
class IngestResult:
    event_id: str
    duplicate: bool = False
    planned: list[str] = field(default_factory=list)
    #: Sends this event cancelled in time: no provider is asked for them from now on.
    cancelled: list[str] = field(default_factory=list)
    #: Sends it meant to cancel whose hand-over had already begun (``Stop.handed_at``).
    too_late: list[Stop] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self, stop: Stop) -> None:
        if stop.outcome == "cancelled":
            self.cancelled.append(stop.send_id)
        elif stop.outcome == "too_late" and stop.state != "delivered":
            self.too_late.append(stop)


class Ingestor:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        customers: Customers,
        schedule: Schedule,
        journeys: Journeys,
        recurring: Recurring,
        inbox: Inbox,
        event_ttl_days: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.customers = customers
        self.schedule = schedule
        self.journeys = journeys
        self.recurring = recurring
        self.inbox = inbox
        self.event_ttl = event_ttl_days * 86400
        self.branches = Branches(client, keys, schedule)

    def ingest(self, event: Event) -> IngestResult:
        """Apply one event. Raises InputError (unknown customer, bad data) for the dead-letter store."""
        result = IngestResult(event.id)
        marker = self.keys.event(event.id)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(marker, "pending", nx=True, ex=self.event_ttl)
        self.inbox.started(event.id, event.customer_id, pipe)
        fresh = pipe.execute()[0]
        if not fresh and self.client.get(marker) == b"done":
            result.duplicate = True
            self.inbox.done(event.id, event.customer_id)
            return result
        # Still 'pending': an earlier attempt died midway; every step below is idempotent.
        customer = self.customers.require(event.customer_id)
        starting = [
            journey
            for journey in self.journeys.by_trigger.get(event.type, [])
            if journey.matches(event.data)
            and (event.type != "customer.checkin_due" or event.data.get("journey") == journey.name)
        ]
        # Refused before anything changes, so a replay after the profile is fixed applies it whole.
        _check_zone(customer, starting)
        if event.type == "customer.unsubscribed":
            customer = self._unsubscribe(customer, event)
        for journey in self.journeys.by_exit.get(event.type, []):
            # An unsubscribe ends only the journeys of the categories it names.
            if event.type != "customer.unsubscribed" or journey.category in unsubscribed_categories(event):
                self._exit(journey, customer, event, result)
        for journey in starting:
            self._start(journey, customer, event, result)
        self.branches.on_event(self.journeys, event, customer, result, self.plan_step)
        if event.type == "customer.checkin_due":
            self.recurring.contacted(customer.id, self.clock.now())
        # Applied: marked done and out of the inbox in one round trip.
        pipe = self.client.pipeline(transaction=False)
        pipe.set(marker, "done", ex=self.event_ttl)
        self.inbox.done(event.id, event.customer_id, pipe=pipe)
        pipe.execute()
        return result

    def _unsubscribe(self, customer: Customer, event: Event) -> Customer:
        source = str(event.data.get("source") or f"event {event.id}")
        for category in unsubscribed_categories(event):
            if customer.consent.get(category) is not False:
                customer = self.customers.set_consent(
                    customer.id, category=category, allowed=False, source=source, at=event.occurred_at
                )
        self.recurring.enroll(customer)
        return customer

    def _exit(self, journey: Journey, customer: Customer, event: Event, result: IngestResult):
        if any(step.when for step in journey.steps):
            self.branches.forget(journey, customer)
        keep = {s.name for s in journey.steps if not s.cancel_on_exit}
        for send in self.schedule.open_sends(customer.id):
            if send.journey != journey.name or send.step in keep:
                continue
            text = f"journey {journey.name} exited on {event.type} (event {event.id})"
            result.record(self.schedule.cancel(send.id, "journey_exit", text))

    def _supersede(
        self, journey: Journey, field_name: str, customer: Customer, event: Event, result: IngestResult
    ) -> bool:
        """Cancel the sends of an older event for the same key (``field_name`` of the event data);
        False if this event is the older."""
        value = event.data.get(field_name)
        if value is None or value == "":
            raise InputError(f"data.{field_name}", value, f"required by journey {journey.name}")
        key = self.keys.supersede(journey.name, customer.id, str(value))
        mine = json.dumps([to_ms(event.occurred_at), event.id])
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    older = json.loads(raw) if raw else None
                    if older and older[1] != event.id and tuple(older) > (to_ms(event.occurred_at), event.id):
                        pipe.unwatch()
                        result.notes.append(f"superseded on arrival by event {older[1]}")
                        return False
                    pipe.multi()
                    pipe.set(key, mine, ex=self.event_ttl)
                    pipe.sadd(self.keys.customer_keys(customer.id), key)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        if older and older[1] != event.id:
            for step in journey.steps:
                # A step that waited for an event was planned under "<event>~<step>" (``branches``).
                planned_as = f"{older[1]}~{step.name}" if step.when else older[1]
                send_id = send_id_for(planned_as, journey.name, step.name, customer.id)
                text = f"superseded by event {event.id} ({field_name}={value})"
                result.record(self.schedule.cancel(send_id, "superseded", text))
        return True

    def _start(self, journey: Journey, customer: Customer, event: Event, result: IngestResult):
        if journey.supersede_by and not self._supersede(
            journey, journey.supersede_by, customer, event, result
        ):
            return
        if any(step.when for step in journey.steps):
            self.branches.started(journey, customer, event)
        for step in journey.steps:
            if not step.when:  # a step that waits is planned when its event comes (``branches``)
                self.plan_step(
                    journey, step, customer, event.id, event.type, event.occurred_at, event.data, result
                )

    def plan_step(
        self, journey: Journey, step: Step, customer: Customer, event_id: str, event_type: str,
        occurred_at: datetime, data: Mapping[str, Any], result: IngestResult,
    ) -> None:  # fmt: skip
        """Plan one step for the event ``event_id`` that happened at ``occurred_at`` (its data: ``data``)."""
        # The schedule keeps the start in ms; resolve from that, as the send will be when it fires.
        start = from_ms(to_ms(occurred_at))
        rule = step.send_rule(customer.country)
        try:
            resolution = resolve(rule, rule.start(start, data, customer.zone), customer.zone)
        except TimingError as exc:
            result.notes.append(f"{journey.name}.{step.name} not planned: {exc}")
            return
        if rule.backward and resolution.utc < start:
            result.notes.append(
                f"{journey.name}.{step.name} not planned: {rule.days} days before data.{rule.anchor} "
                f"({resolution.local.isoformat()}) is already past"
            )
            return
        intent = Intent(
            journey=journey.name,
            step=step.name,
            category=journey.category,
            template=step.template,
            channels=json.dumps(step.channels),
            rule=step.rule_json,
            survey=step.survey or "",
            event_type=event_type,
            zone=customer.zone,
            country=customer.country or "",
        )
        send_id = send_id_for(event_id, journey.name, step.name, customer.id)
        if self.schedule.plan(send_id, resolution.utc, intent, event_id=event_id, start=start, data=data):
            result.planned.append(send_id)
