"""A broadcast as it is declared: what goes out (category, channels, template, data), to whom (its
audience: ``audience.py``), when (a local moment in each customer's zone) and how fast (a rate).

Its sends are ordinary sends of the schedule: journey ``broadcast``, step the broadcast's name,
event ``broadcast:<id>``; so every send id of a broadcast carries the same event digest, which
names the broadcast's hash in each shard (``Keys.broadcast``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InputError, TimingError
from ..payload import check
from ..registry import CATEGORIES, CHANNELS
from ..store.keys import event_digest, send_id_for
from ..timing import SendRule, rule_for

#: The journey name every broadcast send carries (its step is the broadcast's name).
JOURNEY = "broadcast"
#: Why a send of a cancelled broadcast ended (the send's ``cancelled`` reason).
CANCEL_REASON = "broadcast_cancelled"
_TEMPLATE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
_AT = re.compile(r"(?:(today|tomorrow|\+(\d{1,3})d)|(\d{4}-\d{2}-\d{2}))[ T](\d{1,2}:\d{2})")
#: Rule keys a broadcast may add to its moment (the quiet hours, weekdays, holidays...).
RULE_EXTRAS = ("window", "weekdays", "holidays", "observances", "ramadan")

#: The slowest and fastest spread a broadcast may ask for, in messages per second.
MIN_RATE, MAX_RATE = 0.000_001, 1_000_000


@dataclass(frozen=True)
class Moment:
    """A local moment in each customer's zone: a date (``day``) or a number of days after the day the
    broadcast is planned in the customer's zone (``days``), at the wall time ``at``."""

    at: str
    day: str | None = None
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> Moment:
        """``2026-12-02 10:00``, ``tomorrow 10:00``, ``today 09:30``, ``+3d 10:00``."""
        match = _AT.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InputError("at", text, "expected 'YYYY-MM-DD HH:MM', 'today HH:MM', 'tomorrow HH:MM' "
                             "or '+Nd HH:MM' (a local time in each customer's zone)")  # fmt: skip
        relative, plus, day, at = match.groups()
        hours, minutes = (int(part) for part in at.split(":"))
        if hours > 23 or minutes > 59:
            raise InputError("at", text, f"{at} is not a time of day (00:00 to 23:59)")
        if day is not None:
            try:
                dt.date.fromisoformat(day)
            except ValueError:
                raise InputError("at", text, f"{day} is not a date") from None
            return cls(at=at, day=day)
        days = int(plus) if plus is not None else (1 if relative == "tomorrow" else 0)
        return cls(at=at, days=days)

    def __str__(self) -> str:
        return f"{self.day or f'+{self.days}d'} {self.at}"


@dataclass(frozen=True)
class Broadcast:
    id: str
    name: str
    category: str
    channels: tuple[str, ...]
    #: A template folder under the project's ``templates/``, rendered as a journey step's.
    template: str
    moment: Moment
    #: The audience as declared (``audience.Audience.to_mapping``).
    audience: Mapping[str, Any]
    data: Mapping[str, Any] = field(default_factory=dict)
    #: More of the send rule: quiet hours (``window``), ``weekdays``, ``holidays``...
    rule: Mapping[str, Any] = field(default_factory=dict)
    #: Messages per second over the whole broadcast (0: no spreading).
    rate: float = 0.0
    #: When it was created (UTC ms): relative moments count from this day in each zone.
    created_ms: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.fullmatch(self.id):
            raise InputError(
                "id", self.id, "1 to 48 of a-z, 0-9, '_' and '-', starting with a letter or digit"
            )
        if not isinstance(self.name, str) or not _ID.fullmatch(self.name):
            raise InputError("name", self.name, "1 to 48 of a-z, 0-9, '_' and '-' (it names the step)")
        if self.category not in CATEGORIES:
            raise InputError("category", self.category, f"unknown category (known: {', '.join(CATEGORIES)})")
        if not self.channels:
            raise InputError("channels", list(self.channels), "at least one channel")
        for channel in self.channels:
            if channel not in CHANNELS:
                raise InputError("channels", channel, f"unknown channel (known: {', '.join(CHANNELS)})")
        if (
            not isinstance(self.template, str)
            or not _TEMPLATE.fullmatch(self.template)
            or ".." in self.template
        ):
            raise InputError(
                "template", self.template, "a folder under templates/ (letters, digits, _ . / -)"
            )
        if not isinstance(self.data, Mapping):
            raise InputError("data", self.data, "must be a JSON object")
        check("data", dict(self.data))
        if (
            isinstance(self.rate, bool) or not isinstance(self.rate, int | float) or self.rate != self.rate
            or not (self.rate == 0 or MIN_RATE <= self.rate <= MAX_RATE)
        ):  # fmt: skip
            raise InputError(
                "rate", self.rate, f"messages per second: 0 (no spread) or {MIN_RATE} to {MAX_RATE:g}"
            )
        for key in self.rule:
            if key not in RULE_EXTRAS:
                raise InputError(
                    f"rule.{key}", self.rule[key], f"a broadcast's rule takes {', '.join(RULE_EXTRAS)}"
                )
        try:
            rule_for(self.rule_json, None)
        except TimingError as exc:
            raise InputError("rule", dict(self.rule), str(exc)) from None

    # -- what its sends carry ---------------------------------------------------------------

    @property
    def event_id(self) -> str:
        return f"{JOURNEY}:{self.id}"

    @property
    def digest(self) -> str:
        """The event digest of every send id of the broadcast (``Keys.broadcast``)."""
        return event_digest(self.event_id)

    def send_id(self, customer_id: str) -> str:
        return send_id_for(self.event_id, JOURNEY, self.name, customer_id)

    def rule_mapping(self) -> dict[str, Any]:
        """The send rule: ``days`` after the start (the day planned, or the date's local midnight) at
        ``at``, with the extras."""
        return {"days": self.moment.days, "at": self.moment.at, **self.rule}

    def send_rule(self) -> SendRule:
        return SendRule.from_mapping(self.rule_mapping())

    @property
    def rule_json(self) -> str:
        return json.dumps(self.rule_mapping(), sort_keys=True, separators=(",", ":"))

    # -- stored form ------------------------------------------------------------------------

    def to_mapping(self) -> dict[str, Any]:
        out = asdict(self)
        out["channels"] = list(self.channels)
        out["moment"] = str(self.moment)
        out["audience"], out["data"], out["rule"] = dict(self.audience), dict(self.data), dict(self.rule)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_mapping(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Broadcast:
        return cls(
            id=data["id"], name=data["name"], category=data["category"], channels=tuple(data["channels"]),
            template=data["template"], moment=Moment.parse(data["moment"]), audience=data["audience"],
            data=data.get("data") or {}, rule=data.get("rule") or {}, rate=data.get("rate") or 0,
            created_ms=int(data.get("created_ms") or 0),
        )  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | bytes) -> Broadcast:
        return cls.from_mapping(json.loads(raw))
