"""Handing prepared sends over to their channels' providers, and booking what each answered: the
last gate before the provider (what changed since the decision), the fall-through to the next
channel, the delivered outcome with the provider's reference (which its webhooks name)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from ..channels.base import BatchTransport, Handed, Transport
from ..channels.config import ChannelsConfig
from ..clock import Clock, to_ms
from ..errors import PermanentChannelError, TransientChannelError
from ..journeys.recurring import Recurring
from ..policy.decide import Policy
from ..registry import needs_consent
from ..schedule import Claim, HandOver, OutcomeBook, Schedule, log_entry
from ..settings import Settings
from ..timing import zone
from .attempt import STOPPED, Attempt, Outcome
from .receipts import close_window

logger = logging.getLogger(__name__)


class HandOvers:
    """The hand-over rounds (a mixin of ``Deliverer``, which holds the parts)."""

    settings: Settings
    clock: Clock
    schedule: Schedule
    transports: Mapping[str, Transport]
    channels: ChannelsConfig
    policy: Policy
    recurring: Recurring

    # Provided by Outcomes and Deliverer.
    _unused: Callable[[Attempt], None]
    _retry: Callable[..., Outcome]
    _give_up: Callable[..., Outcome]
    _end: Callable[..., Outcome]
    _fail: Callable[..., Outcome]
    _prepare: Callable[[Attempt, OutcomeBook], Attempt | Outcome]

    # -- handing over ---------------------------------------------------------------------

    def _hand_over(
        self, waiting: list[Attempt], outcomes: list[Outcome], book: OutcomeBook, lease: Lease
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
                    result: str | Handed | Exception = transport.send(item.message)
                except (TransientChannelError, PermanentChannelError) as exc:
                    result = exc
                self._after(item, result, self.clock.now(), outcomes, book, again)
            book.flush()
        return again

    def _sole_provider(self, channel: str) -> str:
        """The provider of a channel served by one (the name its references are kept under): a
        transport built from channels.toml says it; one given in code is named after its channel."""
        name = getattr(self.transports[channel], "provider_name", None)
        return name if isinstance(name, str) and name else channel

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
            failures = "; ".join([*item.failures, note])

            def ended() -> Outcome:
                if item.failures:  # an earlier channel failed: a failure to look at
                    return self._fail(send, "permanent_channel_error", failures, book, notes=item.notes)
                return self._end(send, "suppressed", "no_usable_channel", text, book, notes=item.notes)

            self._fall_through(item, outcomes, book, again, ended)
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
        outcomes.append(Outcome(send.id, status, STOPPED))

    def _fall_through(
        self, item: Attempt, outcomes: list[Outcome], book: OutcomeBook, again: list[Attempt],
        ended: Callable[[], Outcome],
    ) -> None:  # fmt: skip
        """On to the item's next channel (rendered for it, handed over next round), or ``ended()``."""
        item.channels.pop(0)
        if not item.channels:
            self._unused(item)
            outcomes.append(self._give_up(item, book, ended))
            return
        following = self._prepare(item, book)
        if isinstance(following, Attempt):
            again.append(following)
        else:
            outcomes.append(following)

    def _after(
        self, item: Attempt, result: str | Handed | Exception, answered: datetime, outcomes: list[Outcome],
        book: OutcomeBook, again: list[Attempt],
    ) -> None:  # fmt: skip
        """Book the outcome of one hand-over (answered by the provider at ``answered``),
        or move the item on to its next channel."""
        send, customer = item.send, item.customer
        channel, address = item.channels[0]
        if isinstance(result, TransientChannelError | PermanentChannelError) and result.notes:
            item.notes += [log_entry(answered, "failover", note, channel=channel) for note in result.notes]
        if isinstance(result, TransientChannelError):
            spent = result.circuit_open or (send.attempts or 1) >= self.settings.max_attempts
            # A lost answer ties the send to this channel (and provider): another could deliver twice.
            if spent and len(item.channels) > 1 and result.elsewhere:
                # This channel is down for now: the next one is tried before the send is given up.
                why = "every provider's circuit is open" if result.circuit_open else "its retries are spent"
                item.failures.append(f"{channel}: {result}")
                if result.circuit_open:
                    item.later = (channel, result)
                item.notes.append(log_entry(answered, "fallthrough", f"{channel}: {why} ({result})",
                                            channel=channel))  # fmt: skip
                self._fall_through(item, outcomes, book, again, _never)
                return
            outcomes.append(self._retry(item, channel, result, answered, book))
            return
        closed = isinstance(result, PermanentChannelError) and result.window_closed
        if closed and item.template_only != channel:
            # We thought the customer had written within the window; the provider says not: the
            # window is forgotten and the same channel gets the step's approved template, if any.
            close_window(self.schedule.client, self.schedule.keys, self.settings.secrets, channel, address)
            item.template_only = channel  # once: a template refused in turn falls through below
            item.notes.append(log_entry(answered, "window_closed", f"{channel}: {result}", channel=channel))
            following = self._prepare(item, book)
            if isinstance(following, Attempt):
                again.append(following)
            else:
                outcomes.append(following)
            return
        if (
            isinstance(result, PermanentChannelError)
            and not result.address
            and not result.elsewhere
            and not result.window_closed
        ):
            # Accepted, but the answer names no message: it may be on its way, so no other channel
            # is tried and nothing is retried; the dead letter says what the provider answered.
            outcomes.append(self._fail(send, "permanent_channel_error", f"{channel}: {result}", book,
                                       notes=item.notes))  # fmt: skip
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
        if isinstance(result, Handed):
            item.notes += [log_entry(answered, "failover", note, channel=channel) for note in result.notes]
            provider, reference = result.provider, result.reference
        else:
            provider, reference = self._sole_provider(channel), result
        local = answered.astimezone(zone(customer.zone))
        entry = log_entry(
            answered,
            "delivered",
            f"delivered by {channel}{f' ({provider})' if provider != channel else ''} to {address} at "
            f"{local.isoformat()}",
            channel=channel,
            provider=provider,
            reference=reference,
            attempt=delivery.attempt,
            locale=delivery.locale,
            register=item.register,
            handed_ms=to_ms(item.handed),
        )
        latency = (item.handed - send.resolved).total_seconds()
        book.finish(send.id, "delivered", entry, field=("channel", channel), reason="ok",
                    latency=max(latency, 0.0), token=send.token, notes=item.notes)  # fmt: skip
        # The provider's webhooks name its message id: they find the send by it.
        book.batch.set(self.schedule.keys.reference(channel, provider, reference), send.id,
                       ex=max(self.settings.history_days, 1) * 86_400)  # fmt: skip
        # The next check-in counts from this message, in the same round trip.
        self.recurring.contacted(customer.id, answered, pipe=book.batch)
        outcomes.append(Outcome(send.id, "delivered", channel))


def _never() -> Outcome:
    raise AssertionError("a send falling through with channels left never ends here")


class Lease:
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
