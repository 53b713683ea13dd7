"""The send record: its states, what a journey step asked for (its intent), and the typed ``Send``
every reader gets, decoded once where it leaves Redis (``Schedule.get_many``).

A send is stored as strings (a hash of its own, or its compact planned form, docs/ARCHITECTURE.md);
``Send.from_fields`` turns those strings into typed values, and ``Send.as_stored`` gives them back
as stored, for the API and the data-rights export that show the record as it is kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from .. import jsontext
from ..clock import from_ms, to_ms
from ..customers.profile import Customer
from ..timing import CustomerCalendar, SendRule, rule_for


def b36(number: int) -> str:
    """A non-negative number in base 36 (event times are after 2000: see ``journeys.events``)."""
    if number < 0:
        raise ValueError(f"base 36 of a negative number: {number}")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


class SendState(StrEnum):
    """Every state a send can be in (docs/DELIVERY.md); the Lua scripts write the same words."""

    SCHEDULED = "scheduled"
    CLAIMED = "claimed"
    SENDING = "sending"
    RETRY_SCHEDULED = "retry_scheduled"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"


#: States in which a send will never be attempted again (``FINAL`` in ``store/lua/_prelude.lua``).
FINAL_STATES = frozenset({SendState.DELIVERED, SendState.FAILED, SendState.SUPPRESSED, SendState.CANCELLED})
#: Hex digits of an intent ref (48 bits: no collision among all intents a deployment makes).
INTENT_DIGITS = 12
#: The arm of an experiment whose customers get nothing (``journeys.experiments``; policy suppresses it).
HOLDOUT = "holdout"
#: Intent fields left out of its JSON and of a send's fields while empty: an intent without an
#: experiment keeps the ref it had before experiments existed.
_OPTIONAL = ("experiment", "variant")


def log_entry(at: datetime, what: str, text: str, **data: Any) -> str:
    """One JSON line of a send's history."""
    return jsontext.dumps({"at_ms": to_ms(at), "what": what, "text": text, **data})


@dataclass(frozen=True)
class Intent:
    """What a journey step asked for when the send was planned, for one zone and country.

    Kept once per distinct value and shared by every send that names it; the
    send keeps only a reference, so the intent it was planned with stays the
    same even when the journey's configuration changes later.
    """

    journey: str
    step: str
    category: str
    template: str
    #: JSON list of channels, in the step's order.
    channels: str
    #: JSON of the step's rule as configured (``holidays = "customer"`` is read when the send fires).
    rule: str
    survey: str
    event_type: str
    #: The customer's zone and country when the send was planned.
    zone: str
    country: str
    #: The experiment of the step and the customer's arm in it (a variant or ``HOLDOUT``); '' for none.
    experiment: str = ""
    variant: str = ""

    def to_json(self) -> str:
        return json.dumps(self.fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @cached_property
    def ref(self) -> str:
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:INTENT_DIGITS]

    @cached_property
    def fields(self) -> dict[str, str]:
        """The intent as a send's fields (computed once and shared: copy before changing it)."""
        return {k: v for k, v in asdict(self).items() if v or k not in _OPTIONAL}

    @classmethod
    def of(cls, record: Mapping[str, str]) -> Intent:
        """An intent from a record that holds its fields (the optional ones may be missing)."""
        return cls(
            **{f.name: record.get(f.name, "") if f.name in _OPTIONAL else record[f.name] for f in fields(cls)}
        )

    def send_rule(self, calendar: CustomerCalendar | None = None) -> SendRule:
        """The rule as it was resolved when the send was planned, for the customer's calendar (its
        country is the intent's: the one the send was planned for)."""
        country = self.country or None
        if calendar is None or calendar.country != country:
            region = (
                calendar.region if calendar and country and (calendar.region or "")[:2] == country else None
            )
            calendar = replace(calendar or CustomerCalendar(), country=country, region=region)
        return rule_for(self.rule, calendar)

    @cached_property
    def channel_list(self) -> tuple[str, ...]:
        return tuple(json.loads(self.channels))


@dataclass(frozen=True)
class Claim:
    send_id: str
    token: str


@dataclass(frozen=True)
class HandOver:
    """A send about to go to its provider, as the hand-over gate (``handover.lua``) checks it."""

    send_id: str
    token: str
    category: str
    channel: str
    address: str
    #: Whether the category is allowed for this customer when they never said (country default).
    consent_default: bool
    #: Whether the category needs consent at all (``registry.needs_consent``).
    consentable: bool = True
    #: The members of the channel's suppression list that would mean the address
    #: (``customers.addresses.suppression_forms``); none: only the address itself in lower case.
    suppression: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stop:
    """What a cancellation or an opt-out did to one send.

    ``cancelled``: no provider is asked for the send from now on. ``too_late``: a
    hand-over to a provider began at ``handed_at`` (for a delivered send, its last
    one). ``final``: the send had already ended otherwise (``state`` says how).
    ``unknown``: there is no such send.
    """

    send_id: str
    outcome: str
    #: The send's state just before.
    state: str = ""
    handed_at: datetime | None = None

    def to_mapping(self) -> dict[str, Any]:
        return {
            "send_id": self.send_id,
            "outcome": self.outcome,
            "state": self.state,
            "handed_at": self.handed_at.isoformat() if self.handed_at else None,
        }


@dataclass(frozen=True)
class ConsentChange:
    """A consent change: the profile as stored, and what it did to the customer's open sends.

    It reads as the stored profile too (``change.consent``, ``change.id``), as the
    ``Customer`` that ``set_consent`` returned before it said what it stopped.
    """

    customer: Customer
    stops: list[Stop] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        if name == "customer" or name.startswith("__"):
            raise AttributeError(name)  # not set yet (copy, pickle): never look it up on itself
        return getattr(self.customer, name)


@dataclass(frozen=True)
class Send:
    """A send as read from Redis, in either form: its intent, its event and its state, typed."""

    id: str
    customer_id: str
    intent: Intent
    event_id: str
    #: When the event happened: the journey's steps count from here.
    start: datetime
    #: When the send was planned (the event's ingestion).
    created: datetime
    #: The event's data, for the template.
    data: Mapping[str, Any]
    state: SendState
    #: When it is (or was last) due in the schedule.
    due: datetime
    #: The instant its rule resolved to when it was planned (delivery latency counts from here).
    resolved: datetime
    attempts: int
    #: The claim token of the attempt under way ('' when not claimed).
    token: str = ""
    #: The channel that delivered it.
    channel: str = ""
    #: Why it ended as it did (a reason code).
    reason: str = ""
    #: The tombstone: why it was cancelled ('' when it was not).
    cancelled: str = ""
    #: The token of the attempt whose hand-over has begun and is not answered yet.
    handing: str = ""
    #: When its last hand-over began.
    handed: datetime | None = None
    #: When it reached a final state.
    finished: datetime | None = None
    #: "<channel>:<provider>" when an earlier attempt's answer was lost there: it goes nowhere else.
    pinned: str = ""
    #: The furthest status its provider reported (``delivery.receipts``), if any.
    receipt: str = ""
    #: The fields as read, for ``as_stored``.
    _fields: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], intent: Intent) -> Send:
        """Decode a send's stored fields (intent and event fields already spelled out)."""

        def ms(name: str) -> datetime | None:
            value = fields.get(name)
            return from_ms(int(value)) if value else None

        due = ms("due_ms")
        assert due is not None, f"send {fields.get('id')} has no due time"
        return cls(
            id=fields["id"],
            customer_id=fields["customer_id"],
            intent=intent,
            event_id=fields["event_id"],
            start=datetime.fromisoformat(fields["start"]),
            created=from_ms(int(fields["created_ms"])),
            data=json.loads(fields.get("data") or "{}"),
            state=SendState(fields["state"]),
            due=due,
            resolved=ms("resolved_ms") or due,
            attempts=int(fields.get("attempts") or 0),
            token=fields.get("token", ""),
            channel=fields.get("channel", ""),
            reason=fields.get("reason", ""),
            cancelled=fields.get("cancelled", ""),
            handing=fields.get("handing", ""),
            handed=ms("handed_ms"),
            finished=ms("finished_ms"),
            pinned=fields.get("pinned", ""),
            receipt=fields.get("receipt", ""),
            _fields=fields,
        )

    def as_stored(self) -> dict[str, str]:
        """The fields as read from Redis (the intent's spelled out), not rebuilt from the typed values:
        what the API, ``explain --json`` and the data-rights export show."""
        return dict(self._fields)

    # The intent's parts, as every reader names them.

    @property
    def journey(self) -> str:
        return self.intent.journey

    @property
    def step(self) -> str:
        return self.intent.step

    @property
    def category(self) -> str:
        return self.intent.category

    @property
    def template(self) -> str:
        return self.intent.template

    @property
    def survey(self) -> str:
        return self.intent.survey

    @property
    def event_type(self) -> str:
        return self.intent.event_type

    @property
    def zone(self) -> str:
        """The customer's zone when the send was planned."""
        return self.intent.zone

    @property
    def channels(self) -> tuple[str, ...]:
        """The step's channels, in order."""
        return self.intent.channel_list

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def outcome_reason(self) -> str:
        """Why a finished send ended as it did: ``ok`` when delivered, else its reason code, its
        tombstone's, or its state."""
        if self.state == SendState.DELIVERED:
            return "ok"
        return self.reason or self.cancelled or self.state.value

    def send_rule(self, calendar: CustomerCalendar | None) -> SendRule:
        """The step's rule, with ``"customer"`` values read from the customer's ``calendar``."""
        return rule_for(self.intent.rule, calendar)
