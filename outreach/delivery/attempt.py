"""An attempt of a send under way, and how an outcome that needs no hand-over is booked: a retry
with backoff, a deferral, a final state (suppressed, failed and dead-lettered)."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..channels.base import Delivery
from ..clock import Clock, to_ms
from ..customers.profile import Customer
from ..errors import TransientChannelError
from ..policy.decide import Policy, send_rule
from ..registry import needs_consent
from ..schedule import OutcomeBook, Send, log_entry
from ..settings import Settings
from ..store.deadletters import DeadLetters
from ..timing import resolve


@dataclass(frozen=True)
class Outcome:
    send_id: str
    state: str
    reason: str


#: The reasons of outcomes this attempt did not record (the send had ended or was claimed anew
#: before it began, or was stopped at the hand-over): their state is the send's, not this attempt's.
NOT_ATTEMPTED, STOPPED = "not attempted", "stopped at the hand-over"


@dataclass
class Attempt:
    """A send under way: the policy let it through; rendered for the first channel it has left to try."""

    send: Send
    customer: Customer
    now: datetime
    #: (channel, address) pairs still to try, in order; the first is the one rendered.
    channels: list[tuple[str, str]]
    #: History entries of this attempt, written with its outcome.
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    delivery: Delivery | None = None
    register: str = ""
    #: When the hand-over gate let the send go to its current channel's provider.
    handed: datetime | None = None
    #: A channel passed over because every provider's circuit was open: with no channel left, the
    #: send waits for it instead of failing.
    later: tuple[str, TransientChannelError] | None = None
    #: The channel whose provider refused free text (its window closed after all): only an approved
    #: template goes there now.
    template_only: str | None = None

    @property
    def message(self) -> Delivery:
        """The message rendered for the current channel (every attempt handed over has one)."""
        assert self.delivery is not None, f"send {self.send.id} was not rendered"
        return self.delivery


#: A line per delivered batch, or per outcome (``OUTREACH_OUTCOME_LOG``), at INFO (``-v``, a worker).
outcome_log = logging.getLogger("outreach.outcomes")


class Outcomes:
    """Booking outcomes that need no hand-over (a mixin of ``Deliverer``, which holds the parts)."""

    settings: Settings
    clock: Clock
    deadletters: DeadLetters
    policy: Policy

    def _unused(self, item: Attempt) -> None:
        """The send took its cap slot when the policy let it through, and ends without reaching a
        provider: the slot (and a survey's fatigue lock) is given back."""
        if needs_consent(item.send.category):
            self.policy.release_cap(item.send.id, item.customer.id)

    def _give_up(self, item: Attempt, book: OutcomeBook, otherwise: Callable[[], Outcome]) -> Outcome:
        """No channel left for this attempt: wait for a channel that is only down for now, else
        ``otherwise()``."""
        if item.later is not None:
            channel, exc = item.later
            return self._retry(item, channel, exc, self.clock.now(), book)
        return otherwise()

    def _retry(
        self, item: Attempt, channel: str, exc: TransientChannelError, failed: datetime, book: OutcomeBook
    ) -> Outcome:
        """Back to the schedule: backoff and Retry-After count from ``failed``, when the error came back."""
        send, customer = item.send, item.customer
        attempts = send.attempts or 1
        if attempts >= self.settings.max_attempts:
            self._unused(item)
            return self._fail(send, "attempts_exhausted", f"{channel}: {exc} (attempt {attempts})", book,
                              notes=item.notes)  # fmt: skip
        backoff = min(self.settings.retry_base_seconds * 2 ** (attempts - 1), self.settings.retry_max_seconds)
        delay = backoff * random.uniform(0.5, 1.0)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        when = resolve(
            send_rule(send, customer).quiet_hours(), failed + timedelta(seconds=delay), customer.zone
        )
        entry = log_entry(
            failed,
            "retry_scheduled",
            f"{channel} failed for now ({exc}); attempt {attempts + 1} at {when.local.isoformat()}",
            channel=channel,
            attempt=attempts,
            **({"handed_ms": to_ms(item.handed)} if item.handed else {}),
        )
        # A lost answer at one of several providers: the next attempt asks that one only.
        pin = ("pinned", f"{channel}:{exc.provider}") if exc.provider and not exc.elsewhere else None
        book.finish(send.id, "retry_scheduled", entry, due=when.utc, reason="transient_error",
                    token=send.token, notes=item.notes, **({"field": pin} if pin else {}))  # fmt: skip
        return Outcome(send.id, "retry_scheduled", str(exc))

    def _defer(
        self,
        send: Send,
        until: datetime,
        reason: str,
        text: str,
        book: OutcomeBook,
        *,
        decision: dict[str, Any] | None = None,
        notes: list[str] | None = None,
    ) -> Outcome:
        entry = log_entry(
            self.clock.now(),
            "deferred",
            text,
            reason=reason,
            until_ms=to_ms(until),
            **({"decision": decision} if decision else {}),
        )
        book.finish(send.id, "deferred", entry, due=until, reason=reason, token=send.token,
                    notes=notes or ())  # fmt: skip
        return Outcome(send.id, "deferred", reason)

    def _end(
        self,
        send: Send,
        state: str,
        reason: str,
        text: str,
        book: OutcomeBook,
        *,
        notes: list[str] | None = None,
        **extra: Any,
    ) -> Outcome:
        entry = log_entry(self.clock.now(), state, text, reason=reason, **extra)
        book.finish(send.id, state, entry, field=("reason", reason), reason=reason,
                    token=send.token, notes=notes or ())  # fmt: skip
        return Outcome(send.id, state, reason)

    def _fail(
        self, send: Send, reason: str, text: str, book: OutcomeBook, *, notes: list[str] | None = None
    ) -> Outcome:
        outcome = self._end(send, "failed", reason, text, book, notes=notes)
        self.deadletters.add("send", f"{reason}: {text}", {"send_id": send.id}, source="deliver")
        return outcome


def log_batch(outcomes: list[Outcome], sends: dict[str, Send], now: datetime) -> None:
    """One line for a delivered batch: the outcomes it recorded counted by state, the reason codes of
    those not delivered counted, the sends it did not attempt (already ended, claimed anew, stopped
    at the hand-over) counted apart, and the longest delivery latency; no id, address or text."""
    states: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    latest = 0.0
    untouched = 0
    for outcome in outcomes:
        if outcome.reason in (NOT_ATTEMPTED, STOPPED):
            untouched += 1
            continue
        states[outcome.state] += 1
        send = sends.get(outcome.send_id)
        if outcome.state == "delivered":
            if send is not None:
                latest = max(latest, (now - send.resolved).total_seconds())
        else:
            reasons["transient_error" if outcome.state == "retry_scheduled" else outcome.reason] += 1
    fields: dict[str, object] = {"sends": len(outcomes), **states}
    if untouched:
        fields["not_attempted"] = untouched
    if reasons:
        fields["reasons"] = dict(reasons)
    if states["delivered"]:
        fields["max_latency_s"] = round(latest, 3)
    text = " ".join(f"{k}={v}" for k, v in fields.items() if k != "reasons")
    if reasons:
        text += " reasons=" + ",".join(f"{k}:{v}" for k, v in reasons.items())
    outcome_log.info(text, extra={"fields": fields})


def log_outcomes(outcomes: list[Outcome], sends: dict[str, Send], now: datetime) -> None:
    """One line per outcome: ids, journey step, state, reason code, latency; no address or text."""
    for outcome in outcomes:
        send = sends.get(outcome.send_id)
        fields: dict[str, object] = {"send_id": outcome.send_id, "state": outcome.state}
        if send is not None:
            fields.update(journey=send.journey, step=send.step, category=send.category)
            if outcome.state == "delivered":
                fields.update(
                    channel=outcome.reason, latency_s=round((now - send.resolved).total_seconds(), 3)
                )
        if outcome.state != "delivered":
            # A retry's reason is the provider's error text (it may name the address): only its code.
            fields["reason"] = "transient_error" if outcome.state == "retry_scheduled" else outcome.reason
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        outcome_log.info(text, extra={"fields": fields})
