"""What a journey's step adds to the policy's decision, once the policy lets a send go: its
conditions (``if``), its journey's throttle, and a digest's list (docs/JOURNEYS.md).

A mixin of ``Deliverer``, which holds the parts. A send whose condition does not hold ends
``suppressed`` with reason ``condition``; one past its journey's throttle ends ``suppressed``
with reason ``throttled`` (its event listed in the journey's next digest when the throttle
says ``overflow = "digest"``). Each verdict is written to the send's history with what it read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..clock import Clock
from ..customers.engagement import Engagement
from ..customers.profile import Customer
from ..journeys.config import Journey, Journeys, Step
from ..journeys.digests import Digests
from ..journeys.kinds import Throttle
from ..journeys.sendtime import account
from ..policy.decide import Policy
from ..policy.throttles import Throttles
from ..registry import needs_consent
from ..schedule import OutcomeBook, Schedule, Send, log_entry
from ..timing import zone
from .attempt import Attempt, Outcome, Outcomes
from .conditions import Facts


class StepRules(Outcomes):
    clock: Clock
    schedule: Schedule
    journeys: Journeys
    policy: Policy
    facts: Facts | None
    throttles: Throttles | None
    digests: Digests | None

    def _step_rules(
        self, send: Send, customer: Customer, now: datetime, notes: list[str], book: OutcomeBook
    ) -> Outcome | None:
        """The send's step's conditions and its journey's and category's throttles: an outcome when they
        stop it."""
        journey = self.journeys.all.get(send.journey)
        if journey is None:  # a broadcast's send: no journey step of its own
            return None
        step = journey.step(send.step)
        if step.send_time == "learned":  # what the customer's history says now, counted
            hours = Engagement(self.schedule.client, self.schedule.keys).hours(customer.id)
            notes.append(log_entry(now, "send_time", f"send time: {account(step.rule, hours)}"))
        if step.conditions and self.facts is not None:
            held, text = self.facts.check(send, journey, step, customer)
            if not held:
                self._give_back(send, customer)
                return self._end(send, "suppressed", "condition", f"branch not taken: {text}", book,
                                 notes=notes)  # fmt: skip
            notes.append(log_entry(now, "branch", f"branch taken: {text}"))
        for scope, throttle in _throttles(journey, step):
            assert self.throttles is not None
            frees = self.throttles.take(customer.id, scope, send.id, throttle.max, throttle.period, now)
            if frees is None:
                continue
            self._give_back(send, customer)  # the cap slot, and the journey's if its category's is full
            local = frees.astimezone(zone(customer.zone)).isoformat()
            whose = f"category {journey.category}" if scope != journey.name else journey.name
            text = f"{whose}: {throttle.describe()} per customer reached (a slot frees at {local})"
            text += self._overflow(journey, step, send, customer, throttle, now)
            return self._end(send, "suppressed", "throttled", text, book, notes=notes)
        return None

    def _overflow(
        self, journey: Journey, step: Step, send: Send, customer: Customer, throttle: Throttle, now: datetime
    ) -> str:
        """List a held-back send's event in the journey's digest when its throttle says so; what was done."""
        digest = journey.digest_step
        if throttle.overflow != "digest" or digest is None or digest.name == step.name or not self.digests:
            return ""
        event = (send.event_id, send.event_type, send.start, send.data)
        said: list[str] = []
        # Its window counts from now, when the throttle held the event back, not from the event.
        found = self.digests.collect(journey, digest, customer, *event, said, opens=now)
        return f"; its event is listed in the digest {found[1]}" if found else f"; {'; '.join(said)}"

    def _unused(self, item: Attempt) -> None:
        self._give_back(item.send, item.customer)

    def _give_back(self, send: Send, customer: Customer) -> None:
        """The send ends without reaching a provider after the policy let it through: its cap slot (and
        a survey's fatigue lock) and its throttle slots are free again (releasing one it does not hold
        changes nothing)."""
        if needs_consent(send.category):
            self.policy.release_cap(send.id, customer.id)
        journey = self.journeys.all.get(send.journey)
        if journey is not None and self.throttles is not None:
            for scope, _ in _throttles(journey, journey.step(send.step)):
                self.throttles.release(customer.id, scope, send.id)

    def _digest_context(self, send: Send, notes: list[str], now: datetime) -> dict[str, Any] | None:
        """``digest`` for a digest step's templates: the events it lists, in the order they happened
        (its history says which); None when the step is not a digest."""
        journey = self.journeys.all.get(send.journey)
        step = journey.step(send.step) if journey is not None else None
        if step is None or step.digest is None or self.digests is None:
            return None
        items = self.digests.seal(send, step)
        ids = ", ".join(item["event_id"] for item in items)
        notes.append(
            log_entry(now, "digest", f"lists {len(items)} events: {ids}" if items else "lists no event")
        )
        return {"count": len(items), "items": [item["data"] for item in items], "events": items}


def _throttles(journey: Journey, step: Step) -> list[tuple[str, Throttle]]:
    """(scope, throttle) the step's sends are held to: the journey's (its name), then its category's
    (``category.<name>``: no journey name has a dot). The digest a journey's overflow goes to is held
    to neither."""
    if journey.throttle is not None and journey.throttle.overflow == "digest" and step.digest is not None:
        return []
    scopes = [(journey.name, journey.throttle), (f"category.{journey.category}", journey.category_throttle)]
    return [(scope, throttle) for scope, throttle in scopes if throttle is not None]
