"""Delivery: claimed sends in, one recorded outcome per send out.

For each send: start the attempt (tombstones win), ask the policy for the one
decision (send, defer or suppress), then try the usable channels in order:
rate limit, render, hand over. A transient failure goes back to the schedule
with backoff; a permanent one suppresses that address and falls through to the
next channel. A send is attempted by one worker at a time (claim tokens); a
crash after the hand-over leads to a new attempt with the same send id as the
idempotency key (docs/DELIVERY.md).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .channels.base import Delivery, Transport
from .channels.config import ChannelsConfig
from .clock import Clock, from_ms, to_ms
from .customers import Customers
from .deadletters import DeadLetters
from .errors import PermanentChannelError, TemplateError, TimingError, TransientChannelError
from .models import Customer
from .policy import Lookups, Policy, send_rule, window_only
from .ratelimit import RateLimiter
from .recurring import Recurring
from .render import Renderer
from .schedule import Claim, Schedule, log_entry
from .settings import Settings
from .surveys import answer_links
from .timing import resolve, zone
from .tokens import make_token

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    send_id: str
    state: str
    reason: str


class Deliverer:
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
        self._available = frozenset(transports)

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
        lookups = self.policy.lookups([(s, customers.get(s["customer_id"])) for s in sends if s])
        renewed = self.clock.now()
        for index, (claim, send) in enumerate(zip(ready, sends, strict=True)):
            if send is None:
                continue
            now = self.clock.now()
            if (now - renewed).total_seconds() * 3 > self.settings.lease_seconds:
                # A slow provider must not let the rest of the batch's leases run out.
                self.schedule.renew([c.send_id for c in ready[index:]])
                renewed = now
            try:
                outcomes.append(self._one(send, customers.get(send["customer_id"]), lookups))
            except Exception as exc:  # noqa: BLE001 - one bad send must not sink the batch
                logger.exception("send %s failed unexpectedly", claim.send_id)
                outcomes.append(self._fail(send, "internal_error", f"{type(exc).__name__}: {exc}"))
        return outcomes

    # -- one send -------------------------------------------------------------------------

    def _one(self, send: dict[str, str], customer: Customer | None, lookups: Lookups) -> Outcome:
        send_id = send["id"]
        now = self.clock.now()
        try:
            decision = self.policy.decide(send, customer, now, self._available, lookups)
        except TimingError as exc:
            return self._fail(send, "timing_invalid", str(exc))
        if decision.action == "suppress":
            return self._end(
                send, "suppressed", decision.reason, decision.text, decision=decision.to_mapping()
            )
        if decision.action == "defer":
            return self._defer(send, decision.until, decision.reason, decision.text, decision.to_mapping())
        assert customer is not None
        for note in decision.skipped:
            self.schedule.note(send_id, log_entry(now, "fallthrough", note), with_outcome=True)
        failures: list[str] = []
        for channel, address in decision.channels:
            config = self.channels.channels.get(channel)
            if config is not None and config.rate:
                wait = self.limiter.acquire(channel, config.rate, config.burst or max(1, int(config.rate)))
                if wait > 0:
                    # Spread the waiting sends so they do not all come back in the same instant.
                    until = now + timedelta(seconds=wait * (1 + random.random()))
                    return self._defer(
                        send,
                        until,
                        "rate_limited",
                        f"{channel} is at its rate of {config.rate:g}/s; waits {wait:.2f} s",
                    )
            outcome = self._attempt(send, customer, channel, address, now)
            if isinstance(outcome, Outcome):
                return outcome
            failures.append(f"{channel}: {outcome}")
            if outcome.address:
                self.policy.suppress_address(channel, address)
                note = f"{channel}: {outcome}; {address} is suppressed for {channel}"
            else:
                note = f"{channel}: {outcome} (a provider problem: the address is kept)"
            self.schedule.note(send_id, log_entry(now, "fallthrough", note, channel=channel))
        return self._fail(send, "permanent_channel_error", "; ".join(failures))

    def _attempt(
        self, send, customer: Customer, channel: str, address: str, now: datetime
    ) -> Outcome | PermanentChannelError:
        """One hand-over: an Outcome, or the permanent failure (the caller tries the next channel)."""
        send_id = send["id"]
        context: dict = {"data": json.loads(send["data"]), "send": send}
        if send.get("survey"):
            expires = now + timedelta(days=self.settings.survey_link_days)
            context["survey"] = {
                "kind": send["survey"],
                "links": answer_links(self.settings.secret, self.settings.public_url, send_id, customer.id,
                                      send["survey"], expires),
            }  # fmt: skip
        try:
            rendered = self.renderer.render(send["template"], channel, customer, context, now=now)
        except TemplateError as exc:
            return self._fail(send, "template_error", str(exc))
        unsubscribe_url = unsubscribe_mailto = None
        if send["category"] != "transactional":
            expires = now + timedelta(days=self.settings.link_days)
            token = make_token(
                self.settings.secret,
                "unsubscribe",
                {"c": customer.id, "s": send_id, "k": send["category"]},
                expires,
            )
            unsubscribe_url = f"{self.settings.public_url.rstrip('/')}/u/{token}"
            if self.settings.unsubscribe_mailto:
                unsubscribe_mailto = f"{self.settings.unsubscribe_mailto}?subject=unsubscribe%20{token}"
        delivery = Delivery(
            send_id=send_id,
            attempt=int(send.get("attempts") or 1),
            customer_id=customer.id,
            journey=send["journey"],
            step=send["step"],
            channel=channel,
            address=address,
            locale=rendered.locale,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            utc=now,
            local=now.astimezone(zone(customer.zone)),
            category=send["category"],
            name=customer.name,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_mailto=unsubscribe_mailto,
        )
        try:
            reference = self.transports[channel].send(delivery)
        except TransientChannelError as exc:
            return self._retry(send, customer, channel, exc, now)
        except PermanentChannelError as exc:
            return exc
        entry = log_entry(
            now,
            "delivered",
            f"delivered by {channel} to {address} at {delivery.local.isoformat()}",
            channel=channel,
            reference=reference,
            attempt=delivery.attempt,
            locale=rendered.locale,
            register=rendered.register,
        )
        latency = (now - from_ms(int(send["resolved_ms"]))).total_seconds()

        # The outcome and the check-in index in one round trip.
        def record(pipe) -> None:
            self.schedule.finish(
                send_id,
                "delivered",
                entry,
                field=("channel", channel),
                reason="ok",
                latency=max(latency, 0.0),
                token=send.get("token", ""),
                pipe=pipe,
            )
            self.recurring.contacted(customer.id, now, pipe=pipe)

        self.schedule.record(record)
        return Outcome(send_id, "delivered", channel)

    def _retry(self, send, customer: Customer, channel: str, exc: TransientChannelError, now):
        attempts = int(send.get("attempts") or 1)
        if attempts >= self.settings.max_attempts:
            return self._fail(send, "attempts_exhausted", f"{channel}: {exc} (attempt {attempts})")
        backoff = min(self.settings.retry_base_seconds * 2 ** (attempts - 1), self.settings.retry_max_seconds)
        delay = backoff * random.uniform(0.5, 1.0)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        when = resolve(window_only(send_rule(send, customer)), now + timedelta(seconds=delay), customer.zone)
        entry = log_entry(
            now,
            "retry_scheduled",
            f"{channel} failed for now ({exc}); attempt {attempts + 1} at {when.local.isoformat()}",
            channel=channel,
            attempt=attempts,
        )
        self.schedule.finish(
            send["id"],
            "retry_scheduled",
            entry,
            due=when.utc,
            reason="transient_error",
            token=send.get("token", ""),
        )
        return Outcome(send["id"], "retry_scheduled", str(exc))

    def _defer(self, send, until: datetime, reason: str, text: str, decision=None) -> Outcome:
        entry = log_entry(
            self.clock.now(),
            "deferred",
            text,
            reason=reason,
            until_ms=to_ms(until),
            **({"decision": decision} if decision else {}),
        )
        self.schedule.finish(
            send["id"], "deferred", entry, due=until, reason=reason, token=send.get("token", "")
        )
        return Outcome(send["id"], "deferred", reason)

    def _end(self, send, state: str, reason: str, text: str, **extra) -> Outcome:
        entry = log_entry(self.clock.now(), state, text, reason=reason, **extra)
        self.schedule.finish(
            send["id"], state, entry, field=("reason", reason), reason=reason, token=send.get("token", "")
        )
        return Outcome(send["id"], state, reason)

    def _fail(self, send, reason: str, text: str) -> Outcome:
        outcome = self._end(send, "failed", reason, text)
        self.deadletters.add("send", f"{reason}: {text}", {"send_id": send["id"]}, source="deliver")
        return outcome
