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
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from ..channels.approved import Approved
from ..channels.base import ApprovedMessage, Delivery, Transport
from ..channels.config import ChannelsConfig
from ..clock import Clock, to_ms
from ..customers.profile import Customer
from ..customers.profiles import Customers
from ..errors import TemplateError, TimingError
from ..journeys.config import Journeys
from ..journeys.digests import Digests
from ..journeys.recurring import Recurring
from ..links import link, message_links, open_token, tracker, with_open_pixel
from ..localization.render import Renderer
from ..policy.decide import Action, Policy
from ..policy.lookups import Lookups
from ..policy.throttles import Throttles
from ..registry import has_open_pixel, needs_consent, tracks_clicks
from ..schedule import Claim, OutcomeBook, Schedule, Send, log_entry
from ..settings import Settings
from ..store.deadletters import DeadLetters
from ..surveys.answers import answer_links
from ..timing import zone
from .attempt import NOT_ATTEMPTED, Attempt, Outcome, log_batch, log_outcomes, outcome_log
from .conditions import Facts
from .handover import HandOvers, Lease
from .ratelimit import RateLimiter
from .receipts import window_open
from .steprules import StepRules
from .versions import current, removed_text

logger = logging.getLogger(__name__)


class Deliverer(HandOvers, StepRules):
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
        *,
        facts: Facts | None = None,
        throttles: Throttles | None = None,
        digests: Digests | None = None,
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
        #: What a step's conditions read, its journey's throttle, a digest's lists (``steprules``).
        self.facts = facts
        self.throttles = throttles
        self.digests = digests
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
                outcomes.append(Outcome(claim.send_id, status, NOT_ATTEMPTED))
        sends = self.schedule.get_many([c.send_id for c in ready])
        customers = self.customers.get_many([s.customer_id for s in sends if s])
        lookups = self.policy.lookups([(s, customers.get(s.customer_id)) for s in sends if s])
        book = self.schedule.book()
        lease = Lease(self.schedule, self.clock, self.settings.lease_seconds)
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
        how = self.settings.outcome_log
        if outcomes and how != "off" and outcome_log.isEnabledFor(logging.INFO):
            # A line per outcome costs a busy worker about an eighth of its time (docs/PERFORMANCE.md).
            write = log_outcomes if how == "each" else log_batch
            write(outcomes, {s.id: s for s in sends if s is not None}, self.clock.now())
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
        stopped = self._step_rules(send, customer, now, notes, book)
        if stopped is not None:
            return stopped
        notes += [log_entry(now, "fallthrough", note) for note in decision.skipped]
        return self._prepare(Attempt(send, customer, now, list(decision.channels), notes), book)

    def _prepare(self, item: Attempt, book: OutcomeBook) -> Attempt | Outcome:
        """Take the rate limit's token and render for the item's next channel (passing over a
        channel that needs an approved template it does not have: WhatsApp outside the window)."""
        send, customer, now = item.send, item.customer, item.now
        while (approval := self._approval(item)) is None:
            channel = item.channels.pop(0)[0]
            note = (
                f"{channel}: the customer has not written in the last 24 hours and {send.journey}."
                f"{send.step} has no approved template in {customer.locale} (approved_templates.toml)"
            )
            item.notes.append(log_entry(now, "fallthrough", note, channel=channel))
            if not item.channels:
                self._unused(item)
                return self._give_up(item, book, lambda note=note: self._nothing_usable(item, note, book))
        channel, address = item.channels[0]
        config = self.channels.channels.get(channel)
        if config is not None and config.rate:
            wait = self.limiter.acquire(channel, config.rate, config.burst or max(1, int(config.rate)))
            if wait > 0:
                # Spread the waiting sends so they do not all come back in the same instant.
                until = now + timedelta(seconds=wait * (1 + random.random()))
                text = f"{channel} is at its rate of {config.rate:g}/s; waits {wait:.2f} s"
                return self._defer(send, until, "rate_limited", text, book, notes=item.notes)
        send_id, secret, public_url = send.id, self.settings.secret, self.settings.public_url
        expires = now + timedelta(days=self.settings.link_days)
        links = message_links(
            secret, public_url, customer.id, send_id, send.category if needs_consent(send.category) else None,
            expires, self.settings.unsubscribe_mailto,
        )  # fmt: skip
        context: dict[str, Any] = {"data": dict(send.data), "send": send.as_stored(), **links.context()}
        digest = self._digest_context(send, item.notes, now)
        if digest is not None:
            if not digest["count"]:  # its events went with an exit, a change of its step, their time
                self._unused(item)
                return self._end(send, "suppressed", "empty_digest", "the digest lists no event", book,
                                 notes=item.notes)  # fmt: skip
            context["digest"] = digest
        context["track"] = tracker(secret, public_url, send_id, customer.id, expires,
                                   tracks_clicks(send.category))  # fmt: skip
        if send.survey:
            expires = now + timedelta(days=self.settings.survey_link_days)
            context["survey"] = {
                "kind": send.survey,
                "links": answer_links(self.settings.secret, self.settings.public_url, send_id, customer.id,
                                      send.survey, expires),
            }  # fmt: skip
        approved, language = approval
        expressions = approved.parameters if approved else ()
        try:
            rendered = self.renderer.render(send.template, channel, customer, context, now=now,
                                            expressions=expressions)  # fmt: skip
        except TemplateError as exc:
            self._unused(item)
            return self._fail(send, "template_error", str(exc), book, notes=item.notes)
        if rendered.html is not None and has_open_pixel(send.category):
            pixel = link(public_url, "open", open_token(secret, send_id, customer.id, expires))
            rendered = replace(rendered, html=with_open_pixel(rendered.html, pixel))
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
            template=ApprovedMessage(approved.name, language, rendered.values) if approved else None,
            provider=_pinned(send, channel),
        )
        return item

    def _nothing_usable(self, item: Attempt, note: str, book: OutcomeBook) -> Outcome:
        if item.failures:  # an earlier channel failed: a failure to look at, not a policy outcome
            failures = "; ".join([*item.failures, note])
            return self._fail(item.send, "permanent_channel_error", failures, book, notes=item.notes)
        return self._end(item.send, "suppressed", "no_usable_channel", f"no usable channel: {note}", book,
                         notes=item.notes)  # fmt: skip

    def _approval(self, item: Attempt) -> tuple[Approved | None, str] | None:
        """For the item's next channel: (None, "") when it takes free text (its provider needs no
        approved templates, or the customer wrote within the window); the approved template and
        its language code; or None when the channel cannot be used for this send."""
        channel, address = item.channels[0]
        config = self.channels.channels.get(channel)
        if item.template_only != channel:  # (its provider said the window is closed: a template only)
            if config is None or not config.templates:
                return None, ""
            keys, now_ms = self.schedule.keys, to_ms(item.now)
            if window_open(self.schedule.client, keys, self.settings.secret, channel, address, now_ms):
                return None, ""
        approved = self.channels.approved.find(channel, item.send.journey, item.send.step)
        language = approved.language(item.customer.locale) if approved else None
        return (approved, language) if approved and language else None


def _pinned(send: Send, channel: str) -> str | None:
    """The provider an earlier attempt's lost answer ties the send to on this channel, if any."""
    pinned_channel, _, provider = send.pinned.partition(":")
    return provider if pinned_channel == channel and provider else None
