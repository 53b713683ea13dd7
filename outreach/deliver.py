"""Delivery: claimed sends in, one recorded outcome per send out.

For each send: start the attempt (tombstones win), re-resolve its timing from
the stored intent, check consent, choose a channel, render, hand over, record.
A send is attempted by one worker at a time (claim tokens); a crash after the
hand-over leads to a new attempt with the same send id as idempotency key.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .channels.base import Delivery, Transport
from .clock import Clock, from_ms, to_ms
from .customers import Customers
from .deadletters import DeadLetters
from .errors import PermanentChannelError, TemplateError, TimingError, TransientChannelError
from .journeys import CUSTOMER_HOLIDAYS
from .models import Customer
from .recurring import Recurring
from .render import Renderer
from .schedule import Claim, Schedule, log_entry
from .settings import Settings
from .timing import SendRule, resolve, zone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    send_id: str
    state: str
    reason: str


def _rule_for(send: dict[str, str], customer: Customer) -> SendRule:
    rule = json.loads(send["rule"])
    if rule.get("holidays") == CUSTOMER_HOLIDAYS:
        if customer.country:
            rule["holidays"] = customer.country
        else:
            del rule["holidays"]
    return SendRule.from_mapping(rule)


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        schedule: Schedule,
        customers: Customers,
        renderer: Renderer,
        transports: dict[str, Transport],
        deadletters: DeadLetters,
        recurring: Recurring,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.schedule = schedule
        self.customers = customers
        self.renderer = renderer
        self.transports = transports
        self.deadletters = deadletters
        self.recurring = recurring

    def deliver(self, claims: list[Claim]) -> list[Outcome]:
        """Attempt a batch of claimed sends; one send failing never affects the others."""
        statuses = self.schedule.begin(claims)
        outcomes: list[Outcome] = []
        ready = [c for c, status in zip(claims, statuses, strict=True) if status == "go"]
        for claim, status in zip(claims, statuses, strict=True):
            if status != "go":
                outcomes.append(Outcome(claim.send_id, status, "not attempted"))
        sends = self.schedule.get_many([c.send_id for c in ready])
        customers = self.customers.get_many([s["customer_id"] for s in sends if s])
        for claim, send in zip(ready, sends, strict=True):
            if send is None:
                continue
            try:
                outcomes.append(self._one(send, customers.get(send["customer_id"])))
            except Exception as exc:  # noqa: BLE001 - one bad send must not sink the batch
                logger.exception("send %s failed unexpectedly", claim.send_id)
                outcomes.append(self._fail(send, "internal_error", f"{type(exc).__name__}: {exc}"))
        return outcomes

    # -- one send -------------------------------------------------------------------------

    def _one(self, send: dict[str, str], customer: Customer | None) -> Outcome:
        send_id = send["id"]
        now = self.clock.now()
        if customer is None:
            return self._end(
                send, "suppressed", "customer_unknown", f"customer {send['customer_id']} no longer exists"
            )
        try:
            later = self._still_due(send, customer, now)
        except TimingError as exc:
            return self._fail(send, "timing_invalid", str(exc))
        if later is not None:
            when, text = later
            entry = log_entry(
                now, "deferred", text, reason="replanned", until_ms=int(when.timestamp() * 1000)
            )
            self.schedule.finish(send_id, "deferred", entry, due=when)
            return Outcome(send_id, "deferred", "replanned")
        if not customer.allows(send["category"]):
            return self._end(
                send,
                "suppressed",
                "no_consent",
                f"{customer.id} has not consented to {send['category']} messages",
            )
        channels = json.loads(send["channels"])
        if customer.channel in channels:
            channels.remove(customer.channel)
            channels.insert(0, customer.channel)
        skipped: list[str] = []
        for channel in channels:
            address = customer.address(channel)
            if not address:
                skipped.append(f"{channel}: no address")
                continue
            if channel not in self.transports:
                skipped.append(f"{channel}: no transport configured")
                continue
            for note in skipped:
                self.schedule.note(send_id, log_entry(now, "fallthrough", note))
            return self._attempt(send, customer, channel, address, now)
        return self._end(send, "suppressed", "no_usable_channel", "no usable channel: " + "; ".join(skipped))

    def _still_due(self, send, customer: Customer, now: datetime):
        """Re-resolve the intent; returns (instant, why) if the send must wait, else None."""
        rule = _rule_for(send, customer)
        start = datetime.fromisoformat(send["start"])
        resolution = resolve(rule, start, customer.zone)
        moved = (
            f": the customer moved from {send['zone']} to {customer.zone}"
            if (customer.zone != send["zone"])
            else ""
        )
        if resolution.utc > now:
            return resolution.utc, f"re-resolved to {resolution.local.isoformat()} ({customer.zone}){moved}"
        grace = timedelta(seconds=self.settings.late_grace_seconds)
        if to_ms(resolution.utc) != int(send["resolved_ms"]) and now - resolution.utc > grace:
            # The plan changed (new zone, holidays, tz data) and its instant has passed:
            # the same local rule from now, so it still lands at the local hour it names.
            again = resolve(replace(rule, days=0, delay=timedelta(0)), now, customer.zone)
            if again.utc > now:
                return again.utc, f"re-planned to {again.local.isoformat()} ({customer.zone}){moved}"
            return None
        if now - from_ms(int(send["due_ms"])) <= grace:
            return None
        # Late (a backlog, a stopped scheduler): only the window still binds.
        window_only = SendRule(window=rule.window, weekdays=rule.weekdays, holidays=rule.holidays)
        again = resolve(window_only, now, customer.zone)
        if again.utc > now:
            reasons = ", ".join(s.reason for s in again.shifts)
            return (
                again.utc,
                f"late and outside the send rule ({reasons}); waits until {again.local.isoformat()}",
            )
        return None

    def _attempt(self, send, customer: Customer, channel: str, address: str, now: datetime):
        send_id = send["id"]
        try:
            rendered = self.renderer.render(
                send["template"],
                channel,
                customer,
                {"data": json.loads(send["data"]), "send": send},
                now=now,
            )
        except TemplateError as exc:
            return self._fail(send, "template_error", str(exc))
        delivery = Delivery(
            send_id=send_id,
            attempt=int(send.get("attempts") or 1),
            customer_id=customer.id,
            journey=send["journey"],
            step=send["step"],
            channel=channel,
            address=address,
            locale=customer.locale,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            utc=now,
            local=now.astimezone(zone(customer.zone)),
        )
        try:
            reference = self.transports[channel].send(delivery)
        except TransientChannelError as exc:
            return self._retry(send, customer, channel, exc, now)
        except PermanentChannelError as exc:
            return self._fail(send, "permanent_channel_error", f"{channel}: {exc}")
        entry = log_entry(
            now,
            "delivered",
            f"delivered by {channel} to {address} at {delivery.local.isoformat()}",
            channel=channel,
            reference=reference,
            attempt=delivery.attempt,
        )
        self.schedule.finish(send_id, "delivered", entry, field=("channel", channel))
        self.schedule.forget_pending(customer.id, send["journey"], send_id)
        self.recurring.contacted(customer.id, now)
        return Outcome(send_id, "delivered", channel)

    def _retry(self, send, customer: Customer, channel: str, exc: TransientChannelError, now):
        attempts = int(send.get("attempts") or 1)
        if attempts >= self.settings.max_attempts:
            return self._fail(send, "attempts_exhausted", f"{channel}: {exc} (attempt {attempts})")
        backoff = min(self.settings.retry_base_seconds * 2 ** (attempts - 1), self.settings.retry_max_seconds)
        delay = backoff * random.uniform(0.5, 1.0)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        rule = _rule_for(send, customer)
        window_only = SendRule(window=rule.window, weekdays=rule.weekdays, holidays=rule.holidays)
        when = resolve(window_only, now + timedelta(seconds=delay), customer.zone)
        entry = log_entry(
            now,
            "retry_scheduled",
            f"{channel} failed for now ({exc}); attempt {attempts + 1} at {when.local.isoformat()}",
            channel=channel,
            attempt=attempts,
        )
        self.schedule.finish(send["id"], "retry_scheduled", entry, due=when.utc)
        return Outcome(send["id"], "retry_scheduled", str(exc))

    def _end(self, send, state: str, reason: str, text: str) -> Outcome:
        entry = log_entry(self.clock.now(), state, text, reason=reason)
        self.schedule.finish(send["id"], state, entry, field=("reason", reason))
        self.schedule.forget_pending(send["customer_id"], send["journey"], send["id"])
        return Outcome(send["id"], state, reason)

    def _fail(self, send, reason: str, text: str) -> Outcome:
        outcome = self._end(send, "failed", reason, text)
        self.deadletters.add("send", f"{reason}: {text}", {"send_id": send["id"]}, source="deliver")
        return outcome
