"""Send policy: one deterministic, explainable decision per send at the moment it would go out.

``Policy.decide(send, customer, now)`` returns send, defer until an instant, or
suppress, with a reason code and a sentence. The rules run in this order (the
first that stops the send decides):

1. customer unknown or erased                    → suppress
2. global do-not-contact                         → suppress
3. consent for the message category              → suppress (transactional needs none)
4. channels, in the customer's or their country's
   order: channel consent, suppression lists
   (bounced addresses), an address, a provider   → suppress when none is left
5. journey exit and supersede tombstones         → suppress
5b. the law's hours for the category on each
   channel (``policy.channels``)                  → defer when no channel is open
6. the send rule in the customer's local time
   (window, weekdays, holidays, observances;
   re-resolved)                                   → defer
6b. a company blackout (``policy.blackouts``)    → defer past its end, in order
7. the age of a survey about an interaction     → suppress a stale survey
7b. an experiment's holdout group                → suppress (``holdout``), never sent
8. frequency caps and survey fatigue (atomic)    → defer or suppress, as configured
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

import redis

from ..clock import to_ms
from ..customers.addresses import address_hash, suppression_forms
from ..customers.profile import Customer
from ..registry import needs_consent
from ..schedule import HOLDOUT, Send
from ..store import replies, scripts
from ..store.keys import Keys
from ..timing import SendRule, resolve, zone
from .blackouts import holding
from .channels import ordered, usable, within_legal_hours
from .config import PolicyConfig
from .lookups import Lookups, read_lookups


class Action(StrEnum):
    """What a decision does with a send."""

    SEND = "send"
    DEFER = "defer"
    SUPPRESS = "suppress"


#: Every reason code a decision can carry (docs/POLICY.md explains each).
REASONS = {
    "ok": "send",
    "customer_unknown": "suppress",
    "customer_erased": "suppress",
    "do_not_contact": "suppress",
    "no_consent": "suppress",
    "no_usable_channel": "suppress",
    "cancelled": "suppress",
    "window": "defer",
    "legal_hours": "defer",
    "blackout": "defer",
    "survey_stale": "suppress",
    "survey_fatigue": "suppress",
    "cap_day": "defer or suppress",
    "cap_week": "defer or suppress",
    "date_passed": "suppress",
    "holdout": "suppress",
    # After the policy let a send go, its journey step's own rules (``delivery.steprules``).
    "condition": "suppress",
    "throttled": "suppress",
    "empty_digest": "suppress",
}


def _before_the_date(
    send: Send, customer: Customer, rule: SendRule, decision: Decision, now: datetime
) -> Decision:
    """A step counted back from a date (``before``) never goes at or after that date: a deferral
    (a re-plan, a late send, a cap) or a send that would reach it is dropped instead."""
    if not rule.backward or decision.action == Action.SUPPRESS:
        return decision
    date = rule.start(send.start, send.data, customer.zone)
    moment = decision.until if decision.action == Action.DEFER and decision.until else now
    if moment < date:
        return decision
    text = f"it would go at {moment.isoformat()}, not before data.{rule.anchor} ({date.isoformat()})"
    return Decision(Action.SUPPRESS, "date_passed", f"{text}; {decision.text}")


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str  # a code from REASONS
    text: str
    until: datetime | None = None
    #: Usable (channel, address) pairs, in the order to try them.
    channels: tuple[tuple[str, str], ...] = ()
    #: Why channels were passed over (recorded as fall-throughs).
    skipped: tuple[str, ...] = field(default_factory=tuple)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "text": self.text,
            "until": self.until.isoformat() if self.until else None,
            "channels": [c for c, _ in self.channels],
            "skipped": list(self.skipped),
        }


def send_rule(send: Send, customer: Customer) -> SendRule:
    """The stored rule of a send, with ``"customer"`` values read for the customer now."""
    return send.send_rule(customer.calendar)


class Policy:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        config: PolicyConfig,
        is_erased: Callable[[str], bool],
        secrets: Sequence[str],
    ) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        #: Key the suppression lists (``Settings.secrets``: the first writes, all are read).
        self.secrets = tuple(secrets)
        #: Whether an unknown customer id is one that was erased (``Customers.is_erased``).
        self.is_erased = is_erased
        self._cap = scripts.load(client, __package__, "cap")
        self._uncap = scripts.load(client, __package__, "uncap")

    # -- consent --------------------------------------------------------------------------

    def allows(self, customer: Customer, category: str) -> bool:
        """Consent for a category: the customer's own word, else the country's default."""
        if not needs_consent(category):
            return True
        if category in customer.consent:
            return customer.consent[category]
        return self.default_allows(customer.country, category)

    def default_allows(self, country: str | None, category: str) -> bool:
        """Whether a category is allowed for a customer who never said (the country's default)."""
        if not needs_consent(category):
            return True
        table = self.config.countries.get(country or "", {})
        return table.get(category, self.config.consent.get(category, "opt_out")) == "opt_out"

    def release_cap(self, send_id: str, customer_id: str) -> bool:
        """Give back the cap slot a send took and never used (it ended without reaching a provider)."""
        marker = self.client.get(self.keys.cap_slot(send_id))
        if marker is None:
            return False
        try:
            taken = json.loads(marker)
        except ValueError:
            taken = None
        if not (isinstance(taken, list) and len(taken) == 5 and all(isinstance(k, str) for k in taken)):
            # A marker from before slots named what they took: only the marker can go.
            return bool(self.client.delete(self.keys.cap_slot(send_id)))
        keys = [*taken[:4], taken[4] or self.keys.fatigue(customer_id), self.keys.cap_slot(send_id)]
        return bool(self._uncap(keys=keys, args=[send_id]))

    def suppress_address(self, channel: str, address: str) -> None:
        """Never use this address on this channel again (a hard bounce, a rejection)."""
        self.client.sadd(self.keys.suppressed(channel), address_hash(address, self.secrets[0]))

    def unsuppress_address(self, channel: str, address: str) -> None:
        """The address may be used on this channel again (the customer unblocked the account)."""
        self.client.srem(self.keys.suppressed(channel), *self.suppression_forms(address))

    def suppression_forms(self, address: str) -> tuple[str, ...]:
        """The members of a suppression list that would mean this address."""
        return suppression_forms(address, self.secrets)

    def is_suppressed(self, channel: str, address: str) -> bool:
        return any(
            self.client.smismember(self.keys.suppressed(channel), list(self.suppression_forms(address)))
        )

    # -- the decision ---------------------------------------------------------------------

    def lookups(self, pairs: list[tuple[Send, Customer | None]]) -> Lookups:
        """What a batch of decisions reads, in one round trip (``policy.lookups``)."""
        return read_lookups(self.client, self.keys, self.suppression_forms, pairs)

    def decide(
        self,
        send: Send,
        customer: Customer | None,
        now: datetime,
        transports: set[str] | frozenset[str],
        lookups: Lookups | None = None,
    ) -> Decision:
        """The one decision for a send about to go out (see the module docstring for the order).

        ``lookups`` (from ``lookups()``) lets a batch share one round trip for the
        do-not-contact and suppression lists; without it they are read here.
        """
        category = send.category
        if customer is None:
            if self.is_erased(send.customer_id):
                return Decision(Action.SUPPRESS, "customer_erased", "the customer's data was erased")
            return Decision(
                Action.SUPPRESS, "customer_unknown", f"customer {send.customer_id} does not exist"
            )
        if lookups is None:
            lookups = self.lookups([(send, customer)])
        if customer.id in lookups.dnc:
            return Decision(Action.SUPPRESS, "do_not_contact", f"{customer.id} is on the do-not-contact list")
        if not self.allows(customer, category):
            return Decision(
                Action.SUPPRESS, "no_consent", f"{customer.id} has not consented to {category} messages"
            )
        channels, skipped = self._channels(send, customer, transports, lookups.bounced)
        if not channels:
            return Decision(
                Action.SUPPRESS,
                "no_usable_channel",
                "no usable channel: " + "; ".join(skipped),
                skipped=tuple(skipped),
            )
        if send.cancelled:
            return Decision(Action.SUPPRESS, "cancelled", f"cancelled ({send.cancelled})")
        channels, closed, opens = within_legal_hours(
            channels, customer, category, self.config.legal_hours, now
        )
        skipped += closed
        if opens is not None:
            return Decision(Action.DEFER, "legal_hours", "; ".join(closed), until=opens)
        rule = send_rule(send, customer)
        waiting = self._window(send, customer, rule, now)
        if waiting is not None:
            return _before_the_date(send, customer, rule, waiting, now)
        held = holding(lookups.blackouts, category, customer.country, now)
        if held is not None:
            quiet = rule.quiet_hours()  # in order after the end, and still inside the customer's hours
            until = resolve(quiet, resolve(quiet, held.until, customer.zone).utc + held.order(send.due),
                            customer.zone).utc  # fmt: skip
            moment = until.astimezone(zone(customer.zone)).isoformat()
            text = f"held by {held.describe()}; resumes in the order sends were due, at {moment}"
            held_until = Decision(Action.DEFER, "blackout", text, until=until)
            return _before_the_date(send, customer, rule, held_until, now)
        # The age limit is about interactions: an NPS weeks after sign-up is not "late".
        if category == "survey" and send.event_type == "interaction.resolved" and self.config.max_age_hours:
            age = now - send.start
            if age > timedelta(hours=self.config.max_age_hours):
                hours = age.total_seconds() / 3600
                return Decision(
                    Action.SUPPRESS,
                    "survey_stale",
                    f"the interaction was {hours:.0f} h ago; surveys "
                    f"older than {self.config.max_age_hours:g} h are dropped",
                )
        if send.intent.variant == HOLDOUT:  # at the moment it would have gone; no cap slot taken
            text = f"holdout group of experiment {send.intent.experiment}: recorded, never sent"
            return Decision(Action.SUPPRESS, "holdout", text)
        if needs_consent(category):
            capped = self._caps(send, customer, rule, now)
            if capped is not None:
                return _before_the_date(send, customer, rule, capped, now)
        ok = Decision(Action.SEND, "ok", "all rules passed", channels=tuple(channels), skipped=tuple(skipped))
        return _before_the_date(send, customer, rule, ok, now)

    def _channels(
        self, send: Send, customer: Customer, transports: Collection[str], bounced: set[tuple[str, str]]
    ) -> tuple[list[tuple[str, str]], list[str]]:
        return usable(ordered(send.channels, customer, self.config.routing), customer, transports, bounced)

    def _window(self, send: Send, customer: Customer, rule: SendRule, now: datetime) -> Decision | None:
        """Re-resolve the intent in the customer's current zone; defer if it is not time yet."""
        resolution = resolve(rule, rule.start(send.start, send.data, customer.zone), customer.zone)
        moved = (
            f": the customer moved from {send.zone} to {customer.zone}" if customer.zone != send.zone else ""
        )
        if resolution.utc > now:
            return Decision(
                Action.DEFER,
                "window",
                f"due at {resolution.local.isoformat()} ({customer.zone}){moved}",
                until=resolution.utc,
            )
        grace = self.config.late_grace
        if to_ms(resolution.utc) != to_ms(send.resolved) and now - resolution.utc > grace:
            # The plan changed (a new zone, holidays, tz data) and its instant has passed:
            # the same local rule from now, so it still lands at the hour it names.
            again = resolve(
                replace(rule, days=0, delay=timedelta(0), anchor=None, backward=False), now, customer.zone
            )
            if again.utc > now:
                return Decision(
                    Action.DEFER,
                    "window",
                    f"re-planned to {again.local.isoformat()} ({customer.zone}){moved}",
                    until=again.utc,
                )
            return None
        if now - send.due <= grace:
            return None
        # Late (a retry, a backlog, a stopped scheduler): only the window still binds.
        again = resolve(rule.quiet_hours(), now, customer.zone)
        if again.utc > now:
            reasons = ", ".join(s.reason for s in again.shifts)
            return Decision(
                Action.DEFER,
                "window",
                f"late and outside the send rule ({reasons}); waits until {again.local.isoformat()}",
                until=again.utc,
            )
        return None

    def _caps(self, send: Send, customer: Customer, rule: SendRule, now: datetime) -> Decision | None:
        category = send.category
        tz = zone(customer.zone)
        local = now.astimezone(tz)
        day = local.date().isoformat()
        year, week, _ = local.isocalendar()
        week_id = f"{year}-W{week:02d}"
        caps = self.config.caps
        limits = [
            caps.get(category, {}).get("day", -1),
            caps.get(category, {}).get("week", -1),
            caps.get("all", {}).get("day", -1),
            caps.get("all", {}).get("week", -1),
        ]
        fatigue_ms = int(self.config.fatigue_days * 86_400_000) if category == "survey" else 0
        keys = [
            self.keys.cap(customer.id, category, day),
            self.keys.cap(customer.id, category, week_id),
            self.keys.cap(customer.id, "all", day),
            self.keys.cap(customer.id, "all", week_id),
            self.keys.fatigue(customer.id),
            self.keys.cap_slot(send.id),
        ]
        args: list[str | int] = [
            *limits,
            2 * 86_400_000,
            8 * 86_400_000,
            fatigue_ms,
            send.id,
            str(to_ms(now)),
        ]
        result = replies.text(self._cap(keys=keys, args=args))
        if result == "ok":
            return None
        if result == "fatigue":
            return Decision(
                Action.SUPPRESS,
                "survey_fatigue",
                f"{customer.id} got a survey in the last {self.config.fatigue_days:g} days",
            )
        per_day = result.endswith("_day")
        scope = category if result.startswith("category") else "all capped categories"
        reason = "cap_day" if per_day else "cap_week"
        limit = limits[["category_day", "category_week", "all_day", "all_week"].index(result)]
        period = f"day ({day})" if per_day else f"week ({week_id})"
        text = f"{scope}: {limit} per local {period} reached"
        if self.config.on_limit.get(category, "defer") == "suppress":
            return Decision(Action.SUPPRESS, reason, text)
        # The next local day (or Monday) from its first instant, then the send rule's window.
        days = 1 if per_day else 7 - local.weekday()
        start = resolve(SendRule(days=days, at=time(0)), now, customer.zone)
        until = resolve(rule.quiet_hours(), start.utc, customer.zone)
        return Decision(
            Action.DEFER, reason, f"{text}; waits until {until.local.isoformat()}", until=until.utc
        )
