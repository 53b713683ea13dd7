"""The local-time engine: when, in a customer's own zone, a send rule fires.

A rule says "N calendar days after the event, at HH:MM, inside a daily window, on
allowed weekdays, not on public holidays". ``resolve`` turns it into one UTC instant
and records every move it made on the way. docs/TIMING.md states the semantics.

Instants are compared in UTC only: Python compares two aware datetimes that share a
tzinfo by wall time and ignores ``fold``, and ``aware + timedelta`` is wall-clock
arithmetic, so both would be wrong across DST changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import re
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import holidays as holidays_lib

from outreach.errors import TimingError

UTC = dt.UTC
#: How far past the target the search may look before giving up.
SEARCH_DAYS = 366 * 2
#: Upper bound for ``days`` and ``delay``; keeps all arithmetic far from datetime.max.
MAX_DAYS = 3660
_DAY = dt.timedelta(days=1)
_MIDNIGHT = dt.time(0)
_WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_WARNINGS_LOCK = threading.Lock()
_KEYS = ("days", "at", "window", "weekdays", "holidays", "delay_hours", "delay_minutes")


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


def _fmt_local(t: dt.datetime) -> str:
    # English day names by hand: strftime("%a") follows the process locale.
    return f"{_WEEKDAY_NAMES[t.weekday()][:3]} {t:%Y-%m-%d %H:%M} {t.tzname()}"


@dataclass(frozen=True)
class Window:
    """A daily send window ``[open, close)`` in local wall time; wraps midnight if open > close."""

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


@functools.cache
def _zone_names() -> frozenset[str]:
    # "localtime" is whatever the host is set to, not a customer's zone.
    return frozenset(available_timezones() - {"localtime"})


def zone(name: str) -> ZoneInfo:
    """The cached ZoneInfo for an IANA zone name such as ``"Europe/Berlin"``."""
    if not isinstance(name, str) or name not in _zone_names():
        raise TimingError("zone", name, "not an IANA time zone name (e.g. 'Europe/Berlin')")
    return _load_zone(name)


@functools.cache
def _load_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO 8601 instant; an explicit offset or ``Z`` is required."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise TimingError("from", text, "expected an ISO 8601 date-time") from None
    if value.utcoffset() is None:
        raise TimingError("from", text, "needs a UTC offset or 'Z' (e.g. 2024-03-31T08:00:00Z)")
    return value


@functools.cache
def _countries() -> dict[str, list[str]]:
    return holidays_lib.list_supported_countries(include_aliases=False)


def _holiday_code(code: str) -> tuple[str, str | None]:
    """Validate ``"DE"`` / ``"de-by"`` and return the canonical (country, subdivision)."""
    if not isinstance(code, str) or not code.strip():
        raise TimingError("holidays", code, "expected a country code such as 'DE' or 'DE-BY'")
    return _holiday_code_cached(code)


@functools.lru_cache(maxsize=256)
def _holiday_code_cached(code: str) -> tuple[str, str | None]:
    country, dash, sub = code.strip().partition("-")
    subdivs = _countries().get(country.upper())
    if subdivs is None:
        raise TimingError("holidays", code, f"unknown holiday country {country!r}")
    if not dash:
        return country.upper(), None
    match = [s for s in subdivs if s.casefold() == sub.strip().casefold()]
    if not match:
        known = ", ".join(subdivs) or "none"
        raise TimingError("holidays", code, f"unknown subdivision {sub!r} (known: {known})")
    return country.upper(), match[0]


@functools.cache
def _language(country: str) -> str | None:
    # English names where the calendar has them: the shift text is for operators.
    probe = holidays_lib.country_holidays(country, years=[], expand=False)
    return "en_US" if "en_US" in (probe.supported_languages or ()) else None


@functools.lru_cache(maxsize=1024)
def _calendar(country: str, subdiv: str | None, year: int) -> Mapping[dt.date, str]:
    # Some calendars warn outside the years they cover (India: 2001-2035) and then
    # hold what they know; a warning on every new year would only be noise. The
    # filter change is process-wide, so threads building calendars take turns.
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return holidays_lib.country_holidays(
            country, subdiv=subdiv, years=year, expand=False, language=_language(country)
        )


def _holiday_name(code: str, day: dt.date) -> str | None:
    country, subdiv = _holiday_code(code)
    return _calendar(country, subdiv, day.year).get(day)


def _weekday_set(value: object) -> frozenset[int]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise TimingError("weekdays", value, "expected a list of mon..sun")
    days: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 6:
            days.add(item)
            continue
        if not isinstance(item, str):
            raise TimingError("weekdays", value, f"{item!r} is not a weekday (mon..sun)")
        ends = [_weekday_index(value, p) for p in item.split("-")]
        if len(ends) > 2:
            raise TimingError("weekdays", value, f"{item!r} is not a weekday range")
        lo, hi = ends[0], ends[-1]
        days.update(range(lo, hi + 1) if lo <= hi else [*range(lo, 7), *range(hi + 1)])
    if not days:
        raise TimingError("weekdays", value, "at least one weekday must be allowed")
    return frozenset(days)


def _weekday_index(value: object, word: str) -> int:
    w = word.strip().lower()
    for i, name in enumerate(_WEEKDAY_NAMES):
        if w in (name.lower(), _WEEKDAY_CODES[i]):
            return i
    raise TimingError("weekdays", value, f"{word!r} is not a weekday (mon..sun)")


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
        if self.holidays is not None:
            country, subdiv = _holiday_code(self.holidays)
            object.__setattr__(self, "holidays", f"{country}-{subdiv}" if subdiv else country)
        if not isinstance(self.delay, dt.timedelta) or not (
            dt.timedelta(0) <= self.delay <= dt.timedelta(days=MAX_DAYS)
        ):
            raise TimingError("delay", self.delay, f"must be between 0 and {MAX_DAYS} days")

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
        for key in ("weekdays", "holidays"):  # validated by __post_init__
            if key in get:
                kw[key] = get[key]
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
        if self.holidays is not None:
            out["holidays"] = self.holidays
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
class Shift:
    """One move of the send time: a reason code, human text, and where it landed."""

    reason: str
    text: str
    local: dt.datetime


@dataclass(frozen=True)
class Resolution:
    """The resolved send instant, the target it started from, and the moves in between."""

    utc: dt.datetime
    local: dt.datetime
    target: dt.datetime
    shifts: tuple[Shift, ...]

    def to_mapping(self) -> dict[str, Any]:
        """JSON-ready form: ISO 8601 strings, UTC with a ``Z``."""
        return {
            "utc": self.utc.isoformat().replace("+00:00", "Z"),
            "local": self.local.isoformat(),
            "target": self.target.isoformat(),
            "shifts": [
                {"reason": s.reason, "text": s.text, "local": s.local.isoformat()} for s in self.shifts
            ],
        }


def _offset(t: dt.datetime, z: ZoneInfo) -> dt.timedelta:
    return t.astimezone(z).utcoffset()  # type: ignore[return-value]


def _from_wall(wall: dt.datetime, z: ZoneInfo) -> tuple[dt.datetime, str]:
    """UTC instant of a naive wall time; kind is "ok", "gap" or "fold".

    fold=0 reads a skipped wall time with the offset in force before the gap and
    an ambiguous one as its first occurrence, which is what RFC 5545 asks for.
    """
    first = wall.replace(tzinfo=z, fold=0).astimezone(UTC)
    if first == wall.replace(tzinfo=z, fold=1).astimezone(UTC):
        return first, "ok"
    return first, "gap" if first.astimezone(z).replace(tzinfo=None) != wall else "fold"


def _next_event(u: dt.datetime, z: ZoneInfo, mark: dt.time) -> dt.datetime:
    """The first instant after ``u`` where the wall clock reaches ``mark`` or jumps.

    Relies on tzdata never putting two offset changes within one day of each other
    (the closest pair is about four days apart), so one bisection finds the jump.
    """
    off = _offset(u, z)
    wall = (u + off).replace(tzinfo=None)
    n = dt.datetime.combine(wall.date(), mark)
    if n <= wall:
        n += _DAY
    c = (n - off).replace(tzinfo=UTC)
    if _offset(c, z) == off:
        return c
    # Transitions fall on whole seconds: bisect over seconds after u.
    base = u.replace(microsecond=0)
    lo, hi = 0, math.ceil((c - base).total_seconds())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(base + dt.timedelta(seconds=mid), z) == off:
            lo = mid
        else:
            hi = mid
    return base + dt.timedelta(seconds=hi)


def _into_window(t: dt.datetime, z: ZoneInfo, window: Window | None) -> dt.datetime:
    """The earliest instant at or after ``t`` whose wall time is inside ``window``."""
    # Each hop is the window opening (inside by definition) or a clock change, so a
    # few hops always suffice; the bound only guards against a malformed zone.
    for _ in range(8):
        if window is None or window.contains(t.astimezone(z).time()):
            return t
        t = _next_event(t, z, window.open)
    raise TimingError("window", str(window), f"could not be entered in zone {z.key}")


def _next_date(t: dt.datetime, z: ZoneInfo) -> dt.datetime:
    """The first instant after ``t`` whose local date differs from that of ``t``."""
    day = t.astimezone(z).date()
    for _ in range(8):
        t = _next_event(t, z, _MIDNIGHT)
        if t.astimezone(z).date() != day:
            return t
    raise TimingError("zone", z.key, "local date does not advance")


def _date_problem(rule: SendRule, day: dt.date) -> tuple[str, str] | None:
    name = _WEEKDAY_NAMES[day.weekday()]
    if day.weekday() not in rule.weekdays:
        allowed = ",".join(_WEEKDAY_CODES[i] for i in sorted(rule.weekdays))
        return "weekday", f"{name} {day} is not an allowed weekday ({allowed})"
    holiday = _holiday_name(rule.holidays, day) if rule.holidays else None
    if holiday:
        return "holiday", f"{name} {day} is a holiday in {rule.holidays}: {holiday}"
    return None


def resolve(rule: SendRule, start: dt.datetime, zone_name: str) -> Resolution:
    """Resolve ``rule`` for an event at ``start`` (aware) for a customer in ``zone_name``."""
    z = zone(zone_name)
    if not isinstance(rule, SendRule):
        raise TimingError("rule", rule, "expected a SendRule (see SendRule.from_mapping)")
    if not isinstance(start, dt.datetime) or start.utcoffset() is None:
        raise TimingError("from", start, "needs an aware datetime (with a UTC offset)")
    try:
        begin = start.astimezone(UTC) + rule.delay
        target, shifts = _target(rule, begin, z)
        return _search(rule, target, z, shifts)
    except OverflowError:
        raise TimingError("from", start.isoformat(), "too close to the ends of the calendar") from None


def _target(rule: SendRule, begin: dt.datetime, z: ZoneInfo) -> tuple[dt.datetime, list[Shift]]:
    """Steps 1 and 2: the wall time ``at`` on the start date plus ``days``."""
    if rule.at is None and rule.days == 0:
        return begin, []
    local_begin = begin.astimezone(z)
    day = local_begin.date() + dt.timedelta(days=rule.days)
    wall = rule.at if rule.at is not None else local_begin.time()
    target, kind = _from_wall(dt.datetime.combine(day, wall), z)
    skipped = 0
    while rule.at is not None and target < begin and skipped < 4:
        day, skipped = day + _DAY, skipped + 1
        target, kind = _from_wall(dt.datetime.combine(day, wall), z)
    target = max(target, begin)  # only a clock jump of over 24 h could undercut the start
    local, hhmm = target.astimezone(z), _fmt_time(wall)
    shifts = []
    if skipped:
        text = f"{hhmm} on {day - _DAY} is before the start {_fmt_local(local_begin)}"
        shifts.append(Shift("next_day", f"{text}; using {day}", local))
    if kind == "gap":
        text = f"{hhmm} does not exist on {day} in {z.key} (the clocks jumped forward)"
        shifts.append(Shift("dst_gap", f"{text}; read as {_fmt_local(local)}", local))
    elif kind == "fold":
        text = f"{hhmm} occurs twice on {day} in {z.key}"
        shifts.append(Shift("dst_fold", f"{text}; using the first, {_fmt_local(local)}", local))
    return target, shifts


def _search(rule: SendRule, target: dt.datetime, z: ZoneInfo, shifts: list[Shift]) -> Resolution:
    """Step 3: the earliest instant at or after ``target`` that passes every test."""
    window, t = rule.window, target
    limit = target + dt.timedelta(days=SEARCH_DAYS)
    run = ""  # first rejected day of a run of weekday moves, reported as one shift
    while t <= limit:
        local = t.astimezone(z)
        problem = _date_problem(rule, local.date())
        if problem is None and (window is None or window.contains(local.time())):
            return Resolution(t, local, target.astimezone(z), tuple(shifts))
        if problem is None:
            reason, text = "window", f"{_fmt_local(local)} is outside the window {window}"
            t = _into_window(t, z, window)
        else:
            reason, text = problem
            t = _into_window(_next_date(t, z), z, window)
        moved = t.astimezone(z)
        before = (t - dt.timedelta(microseconds=1)).astimezone(z).time()
        if window and moved.time() != window.open and not window.contains(before):
            text += f" (the clocks changed into the window at {moved:%H:%M})"
        if reason == "weekday" and shifts and shifts[-1].reason == "weekday":
            shifts.pop()
            text = f"{run} to {text}".replace(" is not an allowed weekday", " are not allowed weekdays")
        else:
            run = text.split(" is not")[0]
        shifts.append(Shift(reason, f"{text}; moved to {_fmt_local(moved)}", moved))
    since = _fmt_local(target.astimezone(z))
    raise TimingError("rule", rule.to_mapping(), f"nothing qualifies within {SEARCH_DAYS} days of {since}")
