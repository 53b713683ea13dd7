"""Ingestion: lifecycle events in, planned sends and cancellations out.

Events are applied in batches (``Ingestor.ingest_many``): a few round trips for a
whole batch, whatever its size, in place of several per event. Idempotent: an event
id already processed is skipped, and every effect is idempotent on its own (send ids
derive from the event id), so an event that is processed again after a crash plans
nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from ..clock import Clock, from_ms, to_ms
from ..customers.engagement import Engagement
from ..customers.profile import Customer
from ..customers.profiles import Customers
from ..errors import CustomerErased, InputError
from ..registry import consentable
from ..schedule import Schedule, Stop
from ..store import scripts
from ..store.keys import Keys, send_id_for
from ..store.replies import texts
from .branches import Branches
from .config import Journey, Journeys, Step
from .digests import Digests
from .events import Event
from .experiments import record_goals
from .inbox import Inbox
from .planning import Steps
from .recurring import Recurring


def unsubscribed_categories(event: Event) -> list[str]:
    """The categories a ``customer.unsubscribed`` event withdraws (never transactional)."""
    unsubscribable = consentable()
    named = event.data.get("categories") or list(unsubscribable)
    return [c for c in named if c in unsubscribable]


def _digesting(journey: Journey) -> list[Step]:
    """The journey's digest steps that collect its events (one that takes the journey's throttled
    overflow lists only that: ``delivery.steprules``)."""
    overflow = journey.throttle is not None and journey.throttle.overflow == "digest"
    return [step for step in journey.steps if step.digest and not overflow]


def _check_zone(customer: Customer, journeys: list[Journey]) -> None:
    """A customer whose zone is unknown cannot be sent anything at a local time."""
    if customer.zone_known:
        return
    for journey in journeys:
        for step in journey.steps:
            rules = [step.send_rule(customer.calendar)]  # and a timing variant's, which may be local
            rules += [
                a.send_rule(customer.calendar) for a in (step.experiment.arms() if step.experiment else ())
            ]
            if any(rule.local for rule in rules):
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


@dataclass
class _Start:
    """One journey an event starts, its steps resolved: one call of ``start.lua``."""

    index: int
    event: Event
    customer: Customer
    journey: Journey
    keys: list[str]
    args: list[str | bytes]
    #: What resolving its steps noted (kept only if the start is not superseded on arrival).
    notes: list[str]


@dataclass
class _Batch:
    """A batch on its way: each event's result, and what waits for the next flush (``_flush``)."""

    results: list[IngestResult | InputError]
    starts: list[_Start] = field(default_factory=list)
    #: Applied events (their starts among ``starts``) to mark done once the starts ran.
    applied: list[tuple[int, Event]] = field(default_factory=list)
    #: Events for digest steps, collected once the starts ran (``Digests.collect_many``).
    collects: list[tuple[Journey, Step, Customer, Event, IngestResult]] = field(default_factory=list)


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
        self._start = scripts.load(client, __package__, "start")
        self.steps = Steps()
        self.digests = Digests(client, keys, schedule, self.steps, self.event_ttl)
        self.engagement = Engagement(client, keys)

    def ingest(self, event: Event) -> IngestResult:
        """Apply one event. Raises InputError (unknown customer, bad data) for the dead-letter store."""
        [result] = self.ingest_many([event])
        if isinstance(result, InputError):
            raise result
        return result

    def ingest_many(self, events: Sequence[Event]) -> list[IngestResult | InputError]:
        """Apply events in their order, a few round trips for the whole batch.

        An event that cannot be applied (unknown or erased customer, bad data, no zone)
        changes nothing and is returned, as its InputError, in its place; the others go on.
        The markers with the inbox leases (``Inbox.take``) and the profiles are read in one
        round trip each; the journeys the events start are planned with one ``start.lua`` call
        each, all in one round trip, and those events are then marked done in one more
        (``Inbox.applied``: one script per shard). An event with effects beyond starting
        journeys (an exit, an unsubscribe, a branch, a check-in) is applied on its own after
        those before it were marked done, and marked done at once: events are marked done in
        their order, so a batch tried again after a crash never applies an event after one
        that follows it.
        """
        batch = _Batch([IngestResult(event.id) for event in events])
        if not events:
            return batch.results
        markers = self.inbox.take([(event.id, event.customer_id) for event in events])
        customers = self.customers.get_many([event.customer_id for event in events])
        #: Where each (event id, customer id) first came in the batch.
        first: dict[tuple[str, str], int] = {}
        leased = self.clock.now()
        for i, event in enumerate(events):
            result = batch.results[i]
            assert isinstance(result, IngestResult)
            which = (event.id, event.customer_id)
            refused = batch.results[first[which]] if which in first else None
            if isinstance(refused, InputError):
                batch.results[i] = refused  # the same event again: refused again
                continue
            if which in first or markers[i] == "done":
                result.duplicate = True
                batch.applied.append((i, event))
                continue
            first[which] = i
            try:
                customer = customers.get(event.customer_id) or self.customers.require(event.customer_id)
                starting = self._starting(event, customer)
                if self._plain(event):
                    batch.starts += self._starts(i, event, customer, starting, result)
                    batch.collects += [
                        (j, s, customer, event, result) for j in starting for s in _digesting(j)
                    ]
                    batch.applied.append((i, event))
                    continue
                self._flush(batch)
                customers[customer.id] = self._apply(i, event, customer, starting, result, batch)
                batch.applied.append((i, event))
                self._flush(batch)
            except InputError as exc:
                batch.results[i] = exc
            if self.clock.now() - leased > self.inbox.lease / 3:
                # A slow batch (unsubscribes, exits) keeps the lease of the events still to come.
                leased = self.clock.now()
                self.inbox.renew([(e.id, e.customer_id) for e in events[i + 1 :]])
        self._flush(batch)
        applied = [e for e, r in zip(events, batch.results, strict=True) if isinstance(r, IngestResult)]
        record_goals(self.client, self.keys, self.journeys.goals, applied)
        return batch.results

    def _flush(self, batch: _Batch) -> None:
        """Run the starts waiting in ``batch``, then mark their events (and the other applied ones)
        done and out of the inbox, in one round trip (``Inbox.applied``); an event whose customer
        was erased meanwhile is refused instead."""
        gone = self._run(batch.starts, batch.results)
        # Refused too: a repeat of a refused event in the same batch, taken for a duplicate.
        refused = {(s.event.id, s.event.customer_id) for s in batch.starts if s.index in gone}
        self.digests.collect_many([c for c in batch.collects if (c[3].id, c[3].customer_id) not in refused])
        done = [(i, e) for i, e in batch.applied if (e.id, e.customer_id) not in refused]
        batch.starts, batch.applied, batch.collects = [], [], []
        self.inbox.applied([(event.id, event.customer_id) for _, event in done])

    def _plain(self, event: Event) -> bool:
        """Does the event do nothing but start journeys without waiting steps?"""
        journeys = self.journeys
        if event.type in ("customer.unsubscribed", "customer.checkin_due"):
            return False
        if (
            event.type in journeys.by_exit
            or event.type in journeys.by_when
            or event.type in journeys.by_unless
        ):
            return False
        return not any(step.when for j in journeys.by_trigger.get(event.type, []) for step in j.steps)

    def _starting(self, event: Event, customer: Customer) -> list[Journey]:
        """The journeys the event starts; InputError, before anything changes, for a customer
        without a zone whom one of them would message at a local time."""
        starting = [
            journey
            for journey in self.journeys.by_trigger.get(event.type, [])
            if journey.matches(event.data)
            and (event.type != "customer.checkin_due" or event.data.get("journey") == journey.name)
        ]
        _check_zone(customer, starting)
        return starting

    def _apply(
        self, index: int, event: Event, customer: Customer, starting: list[Journey], result: IngestResult,
        batch: _Batch,
    ) -> Customer:  # fmt: skip
        """An event with more effects than starts, applied now; returns the customer as it is now."""
        if event.type == "customer.unsubscribed":
            customer = self._unsubscribe(customer, event)
        for journey in self.journeys.by_exit.get(event.type, []):
            # An unsubscribe ends only the journeys of the categories it names.
            if event.type != "customer.unsubscribed" or journey.category in unsubscribed_categories(event):
                self._exit(journey, customer, event, result)
        if self._run(self._starts(index, event, customer, starting, result), batch.results):
            raise CustomerErased(customer.id)  # meanwhile: nothing was planned
        self.digests.collect_many([(j, s, customer, event, result) for j in starting for s in _digesting(j)])
        self.branches.on_event(self.journeys, event, customer, result, self.plan_step)
        if event.type == "customer.checkin_due":
            self.recurring.contacted(customer.id, self.clock.now())
        return customer

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
        if journey.digest_step is not None:  # after its open digest was cancelled: never sent empty
            self.digests.forget(journey, customer)

    def _starts(
        self, index: int, event: Event, customer: Customer, journeys: list[Journey], result: IngestResult
    ) -> list[_Start]:
        """The ``start.lua`` calls that start ``journeys`` for the event (nothing is written yet)."""
        out = []
        at_ms = to_ms(event.occurred_at)
        start = from_ms(at_ms)
        shared = self.schedule.compact_event(event.id, start, event.data)
        for journey in journeys:
            keys = [
                self.keys.due(self.keys.shard_of(customer.id)),
                self.keys.planned(customer.id),
                self.keys.customer_keys(customer.id),
                self.keys.planned(customer.id),  # in the shard, unused: no supersede key
                self.keys.customer(customer.id),
            ]
            if journey.supersede_by:
                value = event.data.get(journey.supersede_by)
                if value is None or value == "":
                    needed = f"required by journey {journey.name}"
                    raise InputError(f"data.{journey.supersede_by}", value, needed)
                keys[3] = self.keys.supersede(journey.name, customer.id, str(value))
            args: list[str | bytes] = [
                str(at_ms),
                event.id,
                "1" if journey.supersede_by else "",
                str(self.event_ttl),
                *shared,
            ]
            notes: list[str] = []
            learns = any(step.send_time for step in journey.steps)
            hours = self.engagement.hours(customer.id) if learns else None
            for step in journey.steps:
                if step.when or step.digest:  # planned when its event comes (``branches``), or by
                    continue  # its first event of a window (``digests``)
                planned = self.steps.resolve(
                    journey, step, customer, event.id, event.type, start, event.data, notes, hours
                )
                if planned is not None:
                    send_id, due, intent = planned
                    keys += [self.keys.send(send_id), *self.schedule.done_keys(send_id)]
                    args += self.schedule.compact_send(send_id, due, intent)
            out.append(_Start(index, event, customer, journey, keys, args, notes))
        return out

    def _run(self, starts: list[_Start], results: list[IngestResult | InputError]) -> set[int]:
        """Run ``start.lua`` for each start, in one round trip; then cancel what they superseded.
        Returns the indexes of the events whose customer was erased meanwhile (refused in
        ``results``: nothing was planned for them)."""
        if not starts:
            return set()
        replies = scripts.run_many(self.client, self._start, [(s.keys, s.args) for s in starts])
        gone: set[int] = set()
        for start, reply in zip(starts, replies, strict=True):
            verdict, other, *planned = texts(reply[:2]) + list(reply[2:]) if len(reply) > 1 else ["gone", ""]
            result, event, journey = results[start.index], start.event, start.journey
            if verdict == "gone":
                gone.add(start.index)
                results[start.index] = CustomerErased(event.customer_id)
                continue
            if not isinstance(result, IngestResult):
                continue  # refused meanwhile: nothing was written for it
            if verdict == "older":
                result.notes.append(f"superseded on arrival by event {other}")
                continue
            result.notes += start.notes
            if any(step.when for step in journey.steps):
                self.branches.started(journey, start.customer, event)
            result.planned += [
                str(send_id) for send_id, new in zip(start.args[7::5], planned, strict=True) if new
            ]
            if other:
                self._cancel_superseded(journey, other, event, result)
        return gone

    def _cancel_superseded(self, journey: Journey, older: str, event: Event, result: IngestResult) -> None:
        """Cancel the sends the older event ``older`` planned for the journey."""
        field_name = journey.supersede_by
        assert field_name is not None, "only a journey with supersede_by supersedes"
        value = event.data.get(field_name)
        for step in journey.steps:
            # A step that waited for an event was planned under "<event>~<step>" (``branches``).
            planned_as = f"{older}~{step.name}" if step.when else older
            send_id = send_id_for(planned_as, journey.name, step.name, event.customer_id)
            text = f"superseded by event {event.id} ({field_name}={value})"
            result.record(self.schedule.cancel(send_id, "superseded", text))

    def plan_step(
        self, journey: Journey, step: Step, customer: Customer, event_id: str, event_type: str,
        occurred_at: datetime, data: Mapping[str, Any], result: IngestResult,
    ) -> None:  # fmt: skip
        """Plan one step for the event ``event_id`` that happened at ``occurred_at`` (its data: ``data``)."""
        # The schedule keeps the start in ms; resolve from that, as the send will be when it fires.
        start = from_ms(to_ms(occurred_at))
        hours = self.engagement.hours(customer.id) if step.send_time else None
        planned = self.steps.resolve(journey, step, customer, event_id, event_type, start, data, result.notes,
                                     hours)  # fmt: skip
        if planned is None:
            return
        send_id, due, intent = planned
        if self.schedule.plan(send_id, due, intent, event_id=event_id, start=start, data=data):
            result.planned.append(send_id)
