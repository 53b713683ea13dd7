"""The event record: what happened to a customer, validated where it comes in.

An event's time decides what its journeys plan, and its id is remembered for the
deduplication window (``OUTREACH_EVENT_TTL_DAYS``) so a repeat is applied once. So
``check_time`` accepts only times the window can vouch for: not older than the
window (a replay of an event whose id was forgotten would be applied again), not
more than a day ahead (clock skew), never before 2000.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..customers.profile import text_field
from ..errors import InputError, TimingError, UnknownEventType
from ..payload import check
from ..registry import EVENT_TYPES
from ..timing import parse_instant

#: No event is older than this, whatever the window.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
#: How far ahead of now an event may be stamped (the clocks of two systems disagree a little).
MAX_AHEAD = timedelta(days=1)

#: The start of the event ids a broadcast's sends carry: no event from outside may have one.
RESERVED_ID = "broadcast:"


def check_time(occurred: datetime, now: datetime, window: timedelta) -> None:
    """Refuse an event time outside ``[now - window, now + 1 day]`` (and before 2000)."""
    oldest = max(EARLIEST, now - window)
    if occurred < oldest:
        why = (
            f"is older than the deduplication window ({window.days} days, from {oldest.isoformat()}): "
            "a repeat of it could no longer be recognised"
            if oldest > EARLIEST
            else f"is before {EARLIEST.date().isoformat()}"
        )
        raise InputError("occurred_at", _iso(occurred), why)
    if occurred > now + MAX_AHEAD:
        raise InputError("occurred_at", _iso(occurred), f"is more than a day ahead of now ({_iso(now)})")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    customer_id: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, now: datetime | None = None) -> Event:
        """Validate an event; ``id`` and ``occurred_at`` default to a new id and now."""
        if not isinstance(data, Mapping):
            raise InputError("event", data, "must be an object")
        unknown = set(data) - {"id", "type", "customer_id", "occurred_at", "data"}
        if unknown:
            name = sorted(unknown)[0]
            raise InputError(name, data[name], "unknown event field")
        event_type = text_field(data, "type", required=True)
        if event_type not in EVENT_TYPES:
            raise UnknownEventType(event_type, EVENT_TYPES.names())
        customer_id = text_field(data, "customer_id", required=True)
        event_id = text_field(data, "id") or uuid.uuid4().hex
        if event_id.startswith(RESERVED_ID):  # a broadcast's sends carry this event (``broadcasts``)
            raise InputError("id", event_id, f"ids starting with {RESERVED_ID!r} are reserved for broadcasts")
        raw_time = data.get("occurred_at")
        if raw_time is None or raw_time == "":
            occurred = (now or datetime.now(UTC)).astimezone(UTC)
        elif isinstance(raw_time, datetime):
            if raw_time.tzinfo is None:
                raise InputError("occurred_at", raw_time, "needs a UTC offset")
            occurred = _utc(raw_time)
        else:
            try:
                occurred = _utc(parse_instant(str(raw_time)))
            except TimingError:
                raise InputError("occurred_at", raw_time, "not ISO 8601 with an offset") from None
        payload = data.get("data") or {}
        if not isinstance(payload, Mapping):
            raise InputError("data", payload, "must be an object")
        check("data", payload)
        EVENT_TYPES[event_type].contract.check(payload)
        # A field given as null is absent: a template's {% if data.x is defined %} says so too.
        return cls(
            event_id, event_type, customer_id, occurred, {k: v for k, v in payload.items() if v is not None}
        )

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }


def _utc(at: datetime) -> datetime:
    """The instant in UTC; one at the very edge of the calendar (0001-01-01 at +14:00) has none."""
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise InputError("occurred_at", at.isoformat(), "is outside the calendar") from None
