"""Delivery: claimed sends in, one recorded outcome per send out.

For each send: start the attempt (tombstones win), ask the policy for the one
decision (send, defer or suppress), then try the usable channels in order:
rate limit, render, the hand-over gate (what changed since the decision:
cancellation, consent, do-not-contact, suppression), hand over. A transient
failure goes back to the schedule with backoff counted from the failure; a
permanent one suppresses that address and falls through to the next channel.
A send is attempted by one worker at a time (claim tokens); a crash after the
hand-over leads to a new attempt with the same send id as the idempotency key
(docs/DELIVERY.md).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ..channels.base import BatchTransport, Delivery, Transport
from ..channels.config import ChannelsConfig
from ..clock import Clock, to_ms
from ..customers.profile import Customer
from ..customers.profiles import Customers
from ..errors import PermanentChannelError, TemplateError, TimingError, TransientChannelError
from ..journeys.config import Journeys
from ..journeys.recurring import Recurring
from ..links import message_links
from ..localization.render import Renderer
from ..policy.decide import Action, Lookups, Policy
from ..registry import needs_consent
from ..schedule import Claim, HandOver, OutcomeBook, Schedule, Send, log_entry
from ..settings import Settings
from ..store.deadletters import DeadLetters
from ..surveys.answers import answer_links
from ..timing import zone
from .attempt import Attempt, Outcome, Outcomes, log_outcomes, outcome_log
from .ratelimit import RateLimiter
from .versions import current, removed_text

logger = logging.getLogger(__name__)


class Deliverer(Outcomes):
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        schedule: Schedule,
        customers: Customers,
        renderer: Renderer,
        transports: Mapping[str, Transport],
        channels: ChannelsConfig,
        limiter: RateLimiter,
        policy: Policy,
        deadletters: DeadLetters,
        recurring: Recurring,
        journeys: Journeys,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.schedule = schedule
        self.customers = customers
        self.renderer = renderer
        self.transports = transports
        self.channels = channels
        self.limiter = limiter
        self.policy = policy
        self.deadletters = deadletters
        self.recurring = recurring
        #: The journeys as configured now: a send follows its step's current version (``versions``).
        self.journeys = journeys
        self._available = frozenset(transports)

    def deliver(self, claims: list[Claim]) -> list[Outcome]:
        """Attempt a batch of claimed sends; one send failing never affects the others.

        Every send is decided and rendered first; then each channel gets its sends
        in one hand-over where the transport can take many at once (the outbox),
        else one by one, each delivery recorded before the next goes out. What
        needs no hand-over (deferrals, suppressions, retries, failures) is
        recorded for the whole batch in one round trip at the end.
        """
        statuses = self.schedule.begin(claims)
        outcomes: list[Outcome] = []
        ready = [c for c, status in zip(claims, statuses, strict=True) if status == "go"]
        for claim, status in zip(claims, statuses, strict=True):
            if status != "go":
                outcomes.append(Outcome(claim.send_id, status, "not attempted"))
        sends = self.schedule.get_many([c.send_id for c in ready])
        customers = self.customers.get_many([s.customer_id for s in sends if s])
        lookups = self.policy.lookups([(s, customers.get(s.customer_id)) for s in sends if s])
        book = self.schedule.book()
        lease = _Lease(self.schedule, self.clock, self.settings.lease_seconds)
        waiting: list[Attempt] = []
        for index, send in enumerate(sends):
            if send is None:
                continue
            lease.keep([c.send_id for c in ready[index:]])
            try:
                result = self._start(send, customers.get(send.customer_id), lookups, book)
            except Exception as exc:  # noqa: BLE001 - one bad send must not sink the batch
                logger.exception("send %s failed unexpectedly", send.id)
                result = self._fail(send, "internal_error", f"{type(exc).__name__}: {exc}", book)
            if isinstance(result, Attempt):
                waiting.append(result)
            else:
                outcomes.append(result)
        try:
            while waiting:
                waiting = self._hand_over(waiting, outcomes, book, lease)
        finally:
            book.flush()
        if outcome_log.isEnabledFor(logging.INFO):
            log_outcomes(outcomes, {s.id: s for s in sends if s is not None}, self.clock.now())
        return outcomes

    # -- deciding and rendering -----------------------------------------------------------

    def _start(
        self, send: Send, customer: Customer | None, lookups: Lookups, book: OutcomeBook
    ) -> Attempt | Outcome:
        now = self.clock.now()
        found = current(send, self.journeys, now, self.renderer)
        if found is None:
            return self._end(send, "cancelled", "step_removed", removed_text(send), book)
        if found.unfit:
            return self._end(send, "cancelled", "step_changed", found.unfit, book)
        send, notes = found.send, found.notes
        try:
            decision = self.policy.decide(send, customer, now, self._available, lookups)
        except TimingError as exc:
            return self._fail(send, "timing_invalid", str(exc), book, notes=notes)
        if decision.action == Action.SUPPRESS:
            return self._end(send, "suppressed", decision.reason, decision.text, book, notes=notes,
                             decision=decision.to_mapping())  # fmt: skip
        if decision.action == Action.DEFER:
            assert decision.until is not None, "a deferral says until when"
            return self._defer(send, decision.until, decision.reason, decision.text, book,
                               decision=decision.to_mapping(), notes=notes)  # fmt: skip
        assert customer is not None
        notes += [log_entry(now, "fallthrough", note) for note in decision.skipped]
        return self._prepare(Attempt(send, customer, now, list(decision.channels), notes), book)

    def _prepare(self, item: Attempt, book: OutcomeBook) -> Attempt | Outcome:
        """Take the rate limit's token and render for the item's next channel."""
        send, customer, now = item.send, item.customer, item.now
        channel, address = item.channels[0]
        config = self.channels.channels.get(channel)
        if config is not None and config.rate:
            wait = self.limiter.acquire(channel, config.rate, config.burst or max(1, int(config.rate)))
            if wait > 0:
                # Spread the waiting sends so they do not all come back in the same instant.
                until = now + timedelta(seconds=wait * (1 + random.random()))
                text = f"{channel} is at its rate of {config.rate:g}/s; waits {wait:.2f} s"
                return self._defer(send, until, "rate_limited", text, book, notes=item.notes)
        send_id = send.id
        links = message_links(
            self.settings.secret, self.settings.public_url, customer.id, send_id,
            send.category if needs_consent(send.category) else None,
            now + timedelta(days=self.settings.link_days), self.settings.unsubscribe_mailto,
        )  # fmt: skip
        context: dict[str, Any] = {"data": dict(send.data), "send": send.as_stored(), **links.context()}
        if send.survey:
            expires = now + timedelta(days=self.settings.survey_link_days)
            context["survey"] = {
                "kind": send.survey,
                "links": answer_links(self.settings.secret, self.settings.public_url, send_id, customer.id,
                                      send.survey, expires),
            }  # fmt: skip
        try:
            rendered = self.renderer.render(send.template, channel, customer, context, now=now)
        except TemplateError as exc:
            self._unused(item)
            return self._fail(send, "template_error", str(exc), book, notes=item.notes)
        item.register = rendered.register
        item.delivery = Delivery(
            send_id=send_id,
            attempt=send.attempts or 1,
            customer_id=customer.id,
            journey=send.journey,
            step=send.step,
            channel=channel,
            address=address,
            locale=rendered.locale,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            utc=now,
            local=now.astimezone(zone(customer.zone)),
            category=send.category,
            name=customer.name,
            unsubscribe_url=links.unsubscribe_url,
            unsubscribe_mailto=links.unsubscribe_mailto,
        )
        return item

    # -- handing over ---------------------------------------------------------------------

    def _hand_over(
        self, waiting: list[Attempt], outcomes: list[Outcome], book: OutcomeBook, lease: _Lease
    ) -> list[Attempt]:
        """One round: every item to its channel; returns those that fall through to their next one.

        Each hand-over first passes the gate (``Schedule.hand_over``) in the same round
        trip that records the previous outcomes, so a cancellation or an opt-out that
        came while the batch was decided, rendered or handed over stops every send not
        yet at its provider.
        """
        by_channel: dict[str, list[Attempt]] = {}
        for item in waiting:
            by_channel.setdefault(item.channels[0][0], []).append(item)
        again: list[Attempt] = []
        for channel, items in by_channel.items():
            transport = self.transports[channel]
            if isinstance(transport, BatchTransport):
                # One hand-over for all: its deliveries are recorded together, right after it.
                lease.keep([item.send.id for item in items])
                passed = self._gate(items, outcomes, book, again)
                if passed:
                    answers = transport.send_many([item.message for item in passed])
                    answered = self.clock.now()
                    for item, answer in zip(passed, answers, strict=True):
                        self._after(item, answer, answered, outcomes, book, again)
                book.flush()
                continue
            for index, item in enumerate(items):
                lease.keep([i.send.id for i in items[index:]])
                # The previous delivery is recorded in this round trip, before the next goes out.
                if not self._gate([item], outcomes, book, again):
                    continue
                try:
                    result: str | Exception = transport.send(item.message)
                except (TransientChannelError, PermanentChannelError) as exc:
                    result = exc
                self._after(item, result, self.clock.now(), outcomes, book, again)
            book.flush()
        return again

    def _gate(
        self, items: list[Attempt], outcomes: list[Outcome], book: OutcomeBook, again: list[Attempt]
    ) -> list[Attempt]:
        """The last check before the provider; returns the items that may go now."""
        requests = []
        for item in items:
            channel, address = item.channels[0]
            category = item.send.category
            default = self.policy.default_allows(item.customer.country, category)
            requests.append(
                HandOver(item.send.id, item.send.token, category, channel, address, default,
                         needs_consent(category), self.policy.suppression_forms(address))
            )  # fmt: skip
        handed, statuses = book.hand_over(requests)
        # Marked by the gate, then found suppressed in the same round trip: not handed over.
        self.schedule.release(
            [
                Claim(r.send_id, r.token)
                for r, s in zip(requests, statuses, strict=True)
                if s == "address_suppressed"
            ]
        )
        passed = []
        for item, status in zip(items, statuses, strict=True):
            if status == "go":
                item.handed = handed
                passed.append(item)
            else:
                self._stopped(item, status, outcomes, book, again)
        return passed

    def _stopped(
        self, item: Attempt, status: str, outcomes: list[Outcome], book: OutcomeBook, again: list[Attempt]
    ) -> None:
        """Book a send the gate stopped: what changed since the batch was decided decides."""
        send, customer = item.send, item.customer
        channel, address = item.channels[0]
        category = send.category
        if status in ("channel_opt_out", "address_suppressed"):
            why = (
                "the customer opted out of this channel"
                if status == "channel_opt_out"
                else f"{address} is on the suppression list"
            )
            note = f"{channel}: {why} (found at the hand-over)"
            item.notes.append(log_entry(self.clock.now(), "fallthrough", note, channel=channel))
            text = f"no usable channel: {note}"
            self._fall_through(item, outcomes, book, again, lambda: self._end(
                send, "suppressed", "no_usable_channel", text, book, notes=item.notes))  # fmt: skip
            return
        suppressions = {
            "customer_gone": ("customer_unknown", f"customer {customer.id} is gone (erased or deleted)"),
            "do_not_contact": ("do_not_contact", f"{customer.id} is on the do-not-contact list"),
            "no_consent": ("no_consent", f"{customer.id} withdrew consent to {category} messages"),
        }
        if status in suppressions:
            self._unused(item)
            reason, text = suppressions[status]
            outcomes.append(self._end(send, "suppressed", reason, f"{text} before the hand-over", book,
                                      notes=item.notes))  # fmt: skip
            return
        # Cancelled, claimed again by another worker, erased or already ended: nothing to record.
        if status == "cancelled":
            self._unused(item)
        outcomes.append(Outcome(send.id, status, "stopped at the hand-over"))

    def _fall_through(
        self, item: Attempt, outcomes: list[Outcome], book: OutcomeBook, again: list[Attempt],
        ended: Callable[[], Outcome],
    ) -> None:  # fmt: skip
        """On to the item's next channel (rendered for it, handed over next round), or ``ended()``."""
        item.channels.pop(0)
        if not item.channels:
            self._unused(item)
            outcomes.append(ended())
            return
        following = self._prepare(item, book)
        if isinstance(following, Attempt):
            again.append(following)
        else:
            outcomes.append(following)

    def _after(
        self, item: Attempt, result: str | Exception, answered: datetime, outcomes: list[Outcome],
        book: OutcomeBook, again: list[Attempt],
    ) -> None:  # fmt: skip
        """Book the outcome of one hand-over (answered by the provider at ``answered``),
        or move the item on to its next channel."""
        send, customer = item.send, item.customer
        channel, address = item.channels[0]
        if isinstance(result, TransientChannelError):
            outcomes.append(self._retry(item, channel, result, answered, book))
            return
        if isinstance(result, PermanentChannelError):
            item.failures.append(f"{channel}: {result}")
            if result.address:
                self.policy.suppress_address(channel, address)
                note = f"{channel}: {result}; {address} is suppressed for {channel}"
            else:
                note = f"{channel}: {result} (a provider problem: the address is kept)"
            handed_ms = to_ms(item.handed) if item.handed else None
            item.notes.append(log_entry(answered, "fallthrough", note, channel=channel, handed_ms=handed_ms))
            failures = "; ".join(item.failures)
            self._fall_through(item, outcomes, book, again, lambda: self._fail(
                send, "permanent_channel_error", failures, book, notes=item.notes))  # fmt: skip
            return
        if isinstance(result, Exception):
            logger.error("send %s: %s failed unexpectedly: %r", send.id, channel, result)
            outcomes.append(self._fail(send, "internal_error", f"{type(result).__name__}: {result}", book,
                                       notes=item.notes))  # fmt: skip
            return
        delivery = item.delivery
        assert delivery is not None and item.handed is not None
        local = answered.astimezone(zone(customer.zone))
        entry = log_entry(
            answered,
            "delivered",
            f"delivered by {channel} to {address} at {local.isoformat()}",
            channel=channel,
            reference=result,
            attempt=delivery.attempt,
            locale=delivery.locale,
            register=item.register,
            handed_ms=to_ms(item.handed),
        )
        latency = (item.handed - send.resolved).total_seconds()
        book.finish(send.id, "delivered", entry, field=("channel", channel), reason="ok",
                    latency=max(latency, 0.0), token=send.token, notes=item.notes)  # fmt: skip
        # The next check-in counts from this message, in the same round trip.
        self.recurring.contacted(customer.id, answered, pipe=book.batch)
        outcomes.append(Outcome(send.id, "delivered", channel))


class _Lease:
    """Renews the leases of a batch's sends before a slow hand-over lets them run out."""

    def __init__(self, schedule: Schedule, clock: Clock, lease_seconds: int) -> None:
        self.schedule = schedule
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.renewed = clock.now()

    def keep(self, send_ids: list[str]) -> None:
        now = self.clock.now()
        if (now - self.renewed).total_seconds() * 3 > self.lease_seconds:
            self.schedule.renew(send_ids)
            self.renewed = now
