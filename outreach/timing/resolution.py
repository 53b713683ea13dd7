"""Resolution: ``resolve`` turns a send rule into one UTC instant, recording every move.

Steps 1 and 2 (``_target``) place the wall time ``at`` on the start date plus ``days``;
step 3 (``_search``) walks forward to the first instant that passes the window, weekday
and holiday tests. A rule counted back from a date (``before``, ``_before``) walks
backward instead, so no move ever reaches the date. docs/TIMING.md states the semantics.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from outreach.errors import TimingError

from .calendar import _WEEKDAY_CODES, _WEEKDAY_NAMES, _holiday_name, _is_weekend, _weekend_names
from .observances import Span, span_at
from .rules import SendRule, Window, _fmt_time
from .zones import _DAY, UTC, _from_wall, _next_date, _next_event, zone

#: How far past the target the search may look before giving up.
SEARCH_DAYS = 366 * 2


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


#: Reasons whose runs of days are one shift, and how the text of a run reads.
_RUNS = {
    "weekday": (" is not an allowed weekday", " are not allowed weekdays"),
    "weekend": (" is not a business day", " are not business days"),
}


def _fmt_local(t: dt.datetime) -> str:
    # English day names by hand: strftime("%a") follows the process locale.
    return f"{_WEEKDAY_NAMES[t.weekday()][:3]} {t:%Y-%m-%d %H:%M} {t.tzname()}"


def _into_window(t: dt.datetime, z: ZoneInfo, window: Window | None) -> dt.datetime:
    """The earliest instant at or after ``t`` whose wall time is inside ``window``."""
    # Each hop is the window opening (inside by definition) or a clock change, so a
    # few hops always suffice; the bound only guards against a malformed zone.
    for _ in range(8):
        if window is None or window.contains(t.astimezone(z).time()):
            return t
        t = _next_event(t, z, window.open)
    raise TimingError("window", str(window), f"could not be entered in zone {z.key}")


def _date_problem(rule: SendRule, day: dt.date) -> tuple[str, str] | None:
    name = _WEEKDAY_NAMES[day.weekday()]
    where = rule.region or rule.country
    if rule.business and where and _is_weekend(where, day):
        weekend = _weekend_names(where, day)
        return "weekend", f"{name} {day} is not a business day ({weekend} is the weekend in {where})"
    if day.weekday() not in rule.weekdays:
        allowed = ",".join(_WEEKDAY_CODES[i] for i in sorted(rule.weekdays))
        return "weekday", f"{name} {day} is not an allowed weekday ({allowed})"
    holiday = _holiday_name(rule.holidays, day) if rule.holidays else None
    if holiday:
        return "holiday", f"{name} {day} is a holiday in {rule.holidays}: {holiday}"
    return None


def _span(rule: SendRule, t: dt.datetime, z: ZoneInfo) -> Span | None:
    """The observance (or Ramadan's closed hours) of the customer that holds ``t``, if any."""
    if not rule.observances:
        return None
    return span_at(t, rule.observances, rule.ramadan, rule.place, z.key, rule.country)


def _shown(rule: SendRule) -> dict[str, Any]:
    """The rule for an error message: the customer's observances and coordinates left out."""
    return {k: v for k, v in rule.to_mapping().items() if k not in ("observances", "latitude", "longitude")}


def resolve(rule: SendRule, start: dt.datetime, zone_name: str) -> Resolution:
    """Resolve ``rule`` for an event at ``start`` (aware) for a customer in ``zone_name``."""
    z = zone(zone_name)
    if not isinstance(rule, SendRule):
        raise TimingError("rule", rule, "expected a SendRule (see SendRule.from_mapping)")
    if not isinstance(start, dt.datetime) or start.utcoffset() is None:
        raise TimingError("from", start, "needs an aware datetime (with a UTC offset)")
    try:
        if rule.backward:
            return _before(rule, start.astimezone(UTC), z)
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
        span = _span(rule, t, z) if problem is None else None
        if problem is None and span is None and (window is None or window.contains(local.time())):
            return Resolution(t, local, target.astimezone(z), tuple(shifts))
        if span is not None:
            reason, text = span.reason, span.text
            t = _into_window(span.end, z, window)
        elif problem is None:
            reason, text = "window", f"{_fmt_local(local)} is outside the window {window}"
            t = _into_window(t, z, window)
        else:
            reason, text = problem
            t = _into_window(_next_date(t, z), z, window)
        moved = t.astimezone(z)
        before = (t - dt.timedelta(microseconds=1)).astimezone(z).time()
        if window and moved.time() != window.open and not window.contains(before):
            text += f" (the clocks changed into the window at {moved:%H:%M})"
        if reason in _RUNS and shifts and shifts[-1].reason == reason:
            shifts.pop()
            text = f"{run} to {text}".replace(*_RUNS[reason])
        else:
            run = text.split(" is not")[0]
        shifts.append(Shift(reason, f"{text}; moved to {_fmt_local(moved)}", moved))
    since = _fmt_local(target.astimezone(z))
    raise TimingError("rule", _shown(rule), f"nothing qualifies within {SEARCH_DAYS} days of {since}")


def _wall_shift(kind: str, wall: dt.time, day: dt.date, z: ZoneInfo, local: dt.datetime) -> Shift | None:
    hhmm = _fmt_time(wall)
    if kind == "gap":
        text = f"{hhmm} does not exist on {day} in {z.key} (the clocks jumped forward)"
        return Shift("dst_gap", f"{text}; read as {_fmt_local(local)}", local)
    if kind == "fold":
        text = f"{hhmm} occurs twice on {day} in {z.key}"
        return Shift("dst_fold", f"{text}; using the first, {_fmt_local(local)}", local)
    return None


def _before(rule: SendRule, anchor: dt.datetime, z: ZoneInfo) -> Resolution:
    """A rule counted back from a date (``before``): the wall time ``at`` ``days`` before the
    anchor's local date, then the latest earlier instant that passes every test. Every move goes
    earlier, so the send never reaches the anchor."""
    local_anchor = anchor.astimezone(z)
    wall = rule.at if rule.at is not None else local_anchor.time()
    day = local_anchor.date() - dt.timedelta(days=rule.days)
    target, kind = _from_wall(dt.datetime.combine(day, wall), z)
    shifts = [s for s in [_wall_shift(kind, wall, day, z, target.astimezone(z))] if s]
    window, t = rule.window, target
    limit = anchor - dt.timedelta(days=SEARCH_DAYS)
    while t >= limit:
        local = t.astimezone(z)
        problem = _date_problem(rule, local.date())
        if t >= anchor:
            reason, text = "before_date", f"{_fmt_local(local)} is not before {_fmt_local(local_anchor)}"
            t = _from_wall(dt.datetime.combine(local.date() - _DAY, local.time()), z)[0]
        elif problem is not None:
            reason, text = problem
            t = _from_wall(dt.datetime.combine(local.date() - _DAY, local.time()), z)[0]
        elif (span := _span(rule, t, z)) is not None:
            reason, text = span.reason, span.text
            t = span.start - dt.timedelta(minutes=1)  # spans start on a whole minute
        elif window is not None and not window.contains(local.time()):
            reason, text = "window", f"{_fmt_local(local)} is outside the window {window}"
            opening = _from_wall(dt.datetime.combine(local.date(), window.open), z)[0]
            if opening >= t:
                opening = _from_wall(dt.datetime.combine(local.date() - _DAY, window.open), z)[0]
            t = opening
        else:
            return Resolution(t, local, target.astimezone(z), tuple(shifts))
        moved = t.astimezone(z)
        shifts.append(Shift(reason, f"{text}; moved earlier to {_fmt_local(moved)}", moved))
    since = _fmt_local(local_anchor)
    nothing = f"nothing qualifies within {SEARCH_DAYS} days before {since}"
    raise TimingError("rule", _shown(rule), nothing)
