"""Send rules: the quiet hours (``Window``), ``SendRule`` and its parsing, and ``rule_for``.

A rule says "N calendar days after the event, at HH:MM, inside a daily window, on
allowed weekdays (or the country's business days), not on public holidays, not in the
customer's observances". docs/TIMING.md states the semantics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from outreach.errors import TimingError

from .calendar import _WEEKDAY_CODES, _countries, _holiday_code, _weekday_set
from .observances import OBSERVANCES, RAMADAN_CHOICES
from .sun import Place, check_coordinates
from .zones import _MIDNIGHT, UTC, _from_wall, zone

#: Upper bound for ``days`` and ``delay``; keeps all arithmetic far from datetime.max.
MAX_DAYS = 3660
#: Rule value that means "the customer's own": their country's or region's holidays, the
#: observances their profile lists.
CUSTOMER = "customer"
#: ``weekdays`` value that means the working days of the customer's country.
BUSINESS_DAYS = "business"
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
#: Keys that describe the customer, not the journey: filled in per customer by ``rule_for``.
CUSTOMER_KEYS = ("country", "region", "latitude", "longitude")
_KEYS = (
    "days", "at", "window", "weekdays", "holidays", "observances", "ramadan", "delay_hours", "delay_minutes",
    "before", "after", *CUSTOMER_KEYS,
)  # fmt: skip


def _parse_time(field: str, text: object, *, allow_24: bool = False) -> dt.time:
    if isinstance(text, dt.time) and text.tzinfo is None:
        return text
    m = _TIME_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise TimingError(field, text, "expected a local time HH:MM")
    h, mi, s = int(m[1]), int(m[2]), int(m[3] or 0)
    if allow_24 and (h, mi, s) == (24, 0, 0):
        return _MIDNIGHT  # "21:00-24:00" means up to the end of the day
    if h > 23 or mi > 59 or s > 59:
        raise TimingError(field, text, "not a valid time of day (00:00 to 23:59)")
    return dt.time(h, mi, s)


def _fmt_time(t: dt.time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


@dataclass(frozen=True)
class Window:
    """Quiet hours: the daily window ``[open, close)`` of local wall time a send may go out in.

    Every local time outside the window is a quiet hour; it wraps midnight if open > close.
    This is the one place that says what local hours a send may go out: ``resolve`` moves
    a send into the window, and the policy re-checks it (through ``resolve``) before delivery.
    """

    open: dt.time
    close: dt.time

    def __post_init__(self) -> None:
        for t in (self.open, self.close):
            if not isinstance(t, dt.time) or t.tzinfo is not None or t.microsecond:
                raise TimingError("window", t, "expected a naive time of day")
        if self.open == self.close:
            raise TimingError("window", str(self), "open and close must differ")

    @classmethod
    def parse(cls, text: str) -> Window:
        """Parse ``"08:00-21:00"``; ``"21:00-07:00"`` wraps midnight."""
        parts = text.split("-") if isinstance(text, str) else []
        if len(parts) != 2:
            raise TimingError("window", text, "expected HH:MM-HH:MM")
        try:
            return cls(_parse_time("window", parts[0]), _parse_time("window", parts[1], allow_24=True))
        except TimingError as exc:
            raise TimingError("window", text, exc.problem) from None

    def __str__(self) -> str:
        return f"{_fmt_time(self.open)}-{_fmt_time(self.close)}"

    def contains(self, t: dt.time) -> bool:
        """True if the wall time ``t`` lies inside the window."""
        if self.open < self.close:
            return self.open <= t < self.close
        return t >= self.open or t < self.close


def _number(field: str, value: object) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise TimingError(field, value, "expected a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TimingError(field, value, "expected a number")
    if not math.isfinite(value) or value < 0:
        raise TimingError(field, value, "must be a finite number >= 0")
    return value


@dataclass(frozen=True)
class SendRule:
    """When to send, relative to an event: see docs/TIMING.md for the exact semantics."""

    days: int = 0
    at: dt.time | None = None
    window: Window | None = None
    weekdays: frozenset[int] = frozenset(range(7))
    holidays: str | None = None
    delay: dt.timedelta = dt.timedelta(0)
    #: The event data field (a date or datetime) the rule counts from instead of the event's time.
    anchor: str | None = None
    #: Count ``days`` back from the anchor and shift only earlier, never past it (``before``).
    backward: bool = False
    #: Sending is allowed on the working days of ``country`` (its weekend, year by year).
    business: bool = False
    #: The customer's country (ISO 3166 alpha-2): whose weekend ``business`` means, and which
    #: festival schedule (Israel's or the diaspora's) and lunar calendar an observance follows.
    country: str | None = None
    #: The customer's subdivision (``MY-03``) where its weekend is not the country's.
    region: str | None = None
    #: The observance calendars of the customer that bind this rule (``observances.OBSERVANCES``).
    observances: frozenset[str] = frozenset()
    #: What Ramadan does to a customer who observes ``islamic`` (``RAMADAN_CHOICES``), or None.
    ramadan: str | None = None
    #: Where the customer watches the sun from (their coordinates); None: the zone's reference point.
    place: Place | None = None

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int):
            raise TimingError("days", self.days, "expected a whole number of days")
        if not 0 <= self.days <= MAX_DAYS:
            raise TimingError("days", self.days, f"must be between 0 and {MAX_DAYS}")
        if self.at is not None and (
            not isinstance(self.at, dt.time) or self.at.tzinfo is not None or self.at.microsecond
        ):
            raise TimingError("at", self.at, "expected a naive local time HH:MM")
        if self.window is not None and not isinstance(self.window, Window):
            raise TimingError("window", self.window, "expected a Window")
        object.__setattr__(self, "weekdays", _weekday_set(self.weekdays))
        if self.business and self.weekdays != frozenset(range(7)):
            raise TimingError("weekdays", "business", "business days cannot be combined with a weekday list")
        if self.country is not None:
            if not isinstance(self.country, str) or self.country.upper() not in _countries():
                raise TimingError("country", self.country, "unknown country (ISO 3166 alpha-2, e.g. IL)")
            object.__setattr__(self, "country", self.country.upper())
        if self.region is not None:
            try:
                country, subdiv = _holiday_code(self.region)
            except TimingError:
                country, subdiv = None, None
            if subdiv is None or country != self.country:
                problem = "must be a subdivision (CC-XX) the holidays package knows, in the rule's country"
                raise TimingError("region", self.region, problem)
            object.__setattr__(self, "region", f"{country}-{subdiv}")
        if self.business and self.country is None:
            raise TimingError("weekdays", "business", "business days need the customer's country")
        observances = [self.observances] if isinstance(self.observances, str) else self.observances
        if not isinstance(observances, frozenset | set | list | tuple) or any(
            not isinstance(o, str) or o not in OBSERVANCES for o in observances
        ):
            raise TimingError("observances", self.observances, f"expected a list of {', '.join(OBSERVANCES)}")
        object.__setattr__(self, "observances", frozenset(observances))
        if self.ramadan is not None and (
            not isinstance(self.ramadan, str) or self.ramadan not in RAMADAN_CHOICES
        ):
            raise TimingError("ramadan", self.ramadan, f"must be one of {', '.join(RAMADAN_CHOICES)}")
        if self.place is not None and not isinstance(self.place, Place):
            raise TimingError("place", self.place, "expected a Place")
        if self.holidays is not None:
            country, subdiv = _holiday_code(self.holidays)
            object.__setattr__(self, "holidays", f"{country}-{subdiv}" if subdiv else country)
        named = self.anchor is None or (isinstance(self.anchor, str) and self.anchor.isidentifier())
        if not named or (self.backward and self.anchor is None):
            field = "before" if self.backward else "after"
            raise TimingError(field, self.anchor, "must name a date or datetime field of the event data")
        if self.backward and self.delay:
            raise TimingError("delay_hours", self.delay, "a step before a date counts in days, not a delay")
        if not isinstance(self.delay, dt.timedelta) or not (
            dt.timedelta(0) <= self.delay <= dt.timedelta(days=MAX_DAYS)
        ):
            raise TimingError("delay", self.delay, f"must be between 0 and {MAX_DAYS} days")

    @property
    def local(self) -> bool:
        """Whether the rule reads the customer's clock or calendar (anything but a plain delay)."""
        every_day = self.weekdays == frozenset(range(7))
        return bool(
            self.days or self.at or self.window or not every_day or self.holidays or self.anchor
            or self.business or self.observances or self.ramadan
        )  # fmt: skip

    def start(self, event_time: dt.datetime, data: Mapping[str, Any], zone_name: str) -> dt.datetime:
        """What the rule counts from: the event's time, or its anchor field (a date is its local
        midnight in the customer's zone). TimingError when the field is missing or not a date."""
        if self.anchor is None:
            return event_time
        field = "before" if self.backward else "after"
        value = data.get(self.anchor) if isinstance(data, Mapping) else None
        if isinstance(value, str) and len(value) == 10:
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                pass
            else:
                return _from_wall(dt.datetime.combine(day, dt.time(0)), zone(zone_name))[0]
        if isinstance(value, str):
            try:
                instant = dt.datetime.fromisoformat(value)
            except ValueError:
                instant = None
            if instant is not None and instant.tzinfo is not None:
                return instant.astimezone(UTC)
        raise TimingError(field, f"data.{self.anchor}={value!r}", "the event has no such date or datetime")

    def quiet_hours(self) -> SendRule:
        """Only the hours a send may go out (window, weekdays, holidays, observances), from any
        instant: what binds a retry, a late send or a send pushed past a cap."""
        return SendRule(
            window=self.window, weekdays=self.weekdays, holidays=self.holidays, business=self.business,
            country=self.country, region=self.region, observances=self.observances, ramadan=self.ramadan,
            place=self.place,
        )  # fmt: skip

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SendRule:
        """Build a rule from config/CLI keys; a None value means the key is absent."""
        if not isinstance(data, Mapping):
            raise TimingError("rule", data, "expected a mapping of send-rule keys")
        for key in data:
            if key not in _KEYS:
                raise TimingError(str(key), data[key], f"unknown key (known: {', '.join(_KEYS)})")
        get = {k: v for k, v in data.items() if v is not None}
        kw: dict[str, Any] = {}
        if "days" in get:
            days = get["days"]
            if isinstance(days, str) and days.strip().isdigit():
                days = int(days)
            kw["days"] = days
        if "at" in get:
            kw["at"] = _parse_time("at", get["at"])
        if "window" in get:
            w = get["window"]
            kw["window"] = w if isinstance(w, Window) else Window.parse(w)
        if get.get("weekdays") == BUSINESS_DAYS:
            kw["business"] = True
        elif "weekdays" in get:  # validated by __post_init__
            kw["weekdays"] = get["weekdays"]
        for key in ("holidays", "observances", "ramadan", "country", "region"):
            if key in get:
                kw[key] = get[key]
        if ("latitude" in get) != ("longitude" in get):
            missing = "longitude" if "latitude" in get else "latitude"
            raise TimingError(missing, None, "coordinates need both latitude and longitude")
        if "latitude" in get:
            check_coordinates(get["latitude"], get["longitude"])
            kw["place"] = Place(float(get["latitude"]), float(get["longitude"]))
        if "before" in get and "after" in get:
            raise TimingError("after", get["after"], "a step counts from one date: before or after, not both")
        for key in ("before", "after"):
            if key in get:
                field = get[key]
                kw["anchor"] = field.removeprefix("data.") if isinstance(field, str) else field
                kw["backward"] = key == "before"
        hours = _number("delay_hours", get.get("delay_hours", 0))
        minutes = _number("delay_minutes", get.get("delay_minutes", 0))
        try:
            kw["delay"] = dt.timedelta(hours=hours) + dt.timedelta(minutes=minutes)
        except OverflowError:
            field, value = ("delay_hours", hours) if hours * 60 >= minutes else ("delay_minutes", minutes)
            raise TimingError(field, value, f"must be at most {MAX_DAYS} days") from None
        return cls(**kw)

    def to_mapping(self) -> dict[str, Any]:
        """The JSON-ready inverse of from_mapping; keys at their default are left out."""
        out: dict[str, Any] = {}
        if self.days:
            out["days"] = self.days
        if self.at is not None:
            out["at"] = _fmt_time(self.at)
        if self.window is not None:
            out["window"] = str(self.window)
        if self.weekdays != frozenset(range(7)):
            out["weekdays"] = [_WEEKDAY_CODES[i] for i in sorted(self.weekdays)]
        if self.business:
            out["weekdays"] = BUSINESS_DAYS
        if self.holidays is not None:
            out["holidays"] = self.holidays
        if self.observances:
            out["observances"] = sorted(self.observances)
        if self.ramadan is not None:
            out["ramadan"] = self.ramadan
        if self.country is not None:
            out["country"] = self.country
        if self.region is not None:
            out["region"] = self.region
        if self.place is not None:
            out["latitude"], out["longitude"] = self.place.latitude, self.place.longitude
        if self.anchor is not None:
            out["before" if self.backward else "after"] = self.anchor
        if self.delay:
            if not self.delay % dt.timedelta(hours=1):
                out["delay_hours"] = self.delay // dt.timedelta(hours=1)
            elif not self.delay % dt.timedelta(minutes=1):
                out["delay_minutes"] = self.delay // dt.timedelta(minutes=1)
            else:
                out["delay_minutes"] = self.delay.total_seconds() / 60
        return out

    def merged(self, defaults: SendRule | Mapping[str, Any]) -> SendRule:
        """``defaults`` with every field of this rule that is not at its default on top."""
        base = defaults if isinstance(defaults, SendRule) else SendRule.from_mapping(defaults)
        own = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }
        return dataclasses.replace(base, **own)


@dataclass(frozen=True)
class CustomerCalendar:
    """What of a customer's profile their send rules read: country, region, observances and
    coordinates (``Customer.calendar``)."""

    country: str | None = None
    #: ISO 3166-2 subdivision, e.g. ``DE-BY``.
    region: str | None = None
    observances: tuple[str, ...] = ()
    latitude: float | None = None
    longitude: float | None = None

    def holidays(self) -> str | None:
        """The holiday calendar: the region's where the ``holidays`` package has it, else the country's."""
        if self.region:
            try:
                _holiday_code(self.region)
            except TimingError:
                pass
            else:
                return self.region
        return self.country


NO_CALENDAR = CustomerCalendar()


@functools.lru_cache(maxsize=4096)
def rule_for(rule_json: str, calendar: CustomerCalendar | None) -> SendRule:
    """A configured rule (JSON) for one customer: ``holidays = "customer"`` takes their country's or
    region's holidays, ``weekdays = "business"`` their country's working days (Monday to Friday when
    the country is not known), ``observances = "customer"`` the calendars they observe."""
    calendar = calendar or NO_CALENDAR
    rule = json.loads(rule_json)
    rule.pop("learned", None)  # why a learned send time is what it is (``journeys.sendtime``)
    if rule.get("holidays") == CUSTOMER:
        rule["holidays"] = calendar.holidays()
    if rule.get("observances") == CUSTOMER:
        rule["observances"] = list(calendar.observances)
    if rule.get("weekdays") == BUSINESS_DAYS and not calendar.country:
        rule["weekdays"] = "mon-fri"
    if rule.get("observances") or rule.get("weekdays") == BUSINESS_DAYS:
        rule["country"] = calendar.country
        if rule.get("weekdays") == BUSINESS_DAYS and calendar.holidays() == calendar.region:
            rule["region"] = calendar.region
        if calendar.latitude is not None and rule.get("observances"):
            rule["latitude"], rule["longitude"] = calendar.latitude, calendar.longitude
    return SendRule.from_mapping(rule)
