"""The event record: what happened to a customer, validated where it comes in."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..customers.profile import text_field
from ..errors import InputError, TimingError, UnknownEventType
from ..registry import EVENT_TYPES
from ..timing import parse_instant


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
            raise UnknownEventType(event_type)
        customer_id = text_field(data, "customer_id", required=True)
        event_id = text_field(data, "id") or uuid.uuid4().hex
        raw_time = data.get("occurred_at")
        if raw_time is None or raw_time == "":
            occurred = (now or datetime.now(UTC)).astimezone(UTC)
        elif isinstance(raw_time, datetime):
            if raw_time.tzinfo is None:
                raise InputError("occurred_at", raw_time, "needs a UTC offset")
            occurred = raw_time.astimezone(UTC)
        else:
            try:
                occurred = parse_instant(str(raw_time)).astimezone(UTC)
            except TimingError:
                raise InputError("occurred_at", raw_time, "not ISO 8601 with an offset") from None
        payload = data.get("data") or {}
        if not isinstance(payload, Mapping):
            raise InputError("data", payload, "must be an object")
        return cls(event_id, event_type, customer_id, occurred, dict(payload))

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }
