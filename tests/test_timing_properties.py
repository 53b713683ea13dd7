"""Property tests for outreach.timing against slow, independent reference checks.

The references never call the engine's helpers: they find wall-time occurrences by
trying every UTC offset the zone uses nearby, look holidays up in the `holidays`
package directly, and scan minute by minute for an earlier qualifying instant.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.timing import SendRule, Window, resolve

UTC = dt.UTC
ZONES = sorted(zoneinfo.available_timezones() - {"localtime"})
CALENDARS = [None, "DE", "DE-BY", "US", "US-CA", "GB", "FR", "JP", "CL", "CU", "AU-NSW"]
MINUTE = dt.timedelta(minutes=1)
TINY = dt.timedelta(microseconds=1)
#: Longest stretch the minute-by-minute scan covers (it checks both ends of longer ones).
SCAN = dt.timedelta(days=9)

times = st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 1, 15, 30, 45, 59]))
windows = st.none() | st.builds(
    lambda open_, minutes: Window(
        open_, (dt.datetime.combine(dt.date(2000, 1, 1), open_) + minutes * MINUTE).time()
    ),
    times,
    st.integers(1, 24 * 60 - 1),
)
rules = st.builds(
    SendRule,
    days=st.integers(0, 10),
    at=st.none() | times,
    window=windows,
    weekdays=st.just(frozenset(range(7))) | st.frozensets(st.integers(0, 6), min_size=1),
    holidays=st.sampled_from(CALENDARS),
    delay=st.just(dt.timedelta(0)) | st.timedeltas(dt.timedelta(0), dt.timedelta(days=2)),
)
instants = st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2037, 12, 31), timezones=st.just(UTC))

FAST = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=4096)
def holiday_dates(code: str, year: int) -> frozenset[dt.date]:
    country, _, subdiv = code.partition("-")
    return frozenset(holidays.country_holidays(country, subdiv=subdiv or None, years=year))


def qualifies(rule: SendRule, zone: zoneinfo.ZoneInfo, instant: dt.datetime) -> bool:
    local = instant.astimezone(zone)
    day, wall = local.date(), local.time()
    if day.weekday() not in rule.weekdays:
        return False
    if rule.holidays and day in holiday_dates(rule.holidays, day.year):
        return False
    if rule.window is None:
        return True
    lo, hi = rule.window.open, rule.window.close
    return lo <= wall < hi if lo < hi else (wall >= lo or wall < hi)


def reference_reading(naive: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """RFC 5545 reading of a wall time: first occurrence, or the pre-gap offset in a gap."""
    probe = naive.replace(tzinfo=UTC)
    offsets = {
        (probe + dt.timedelta(minutes=m)).astimezone(zone).utcoffset()
        for m in range(-3 * 1440, 3 * 1440 + 1, 20)
    }
    candidates = [(naive - off).replace(tzinfo=UTC) for off in offsets]
    shown = {c: c.astimezone(zone).replace(tzinfo=None) for c in candidates}
    real = [c for c in candidates if shown[c] == naive]
    if real:
        return min(real)
    # In a gap only the offset from before the jump lands past the wall time.
    past = [c for c in candidates if shown[c] > naive]
    assert len(past) == 1, (naive, zone, offsets)
    return past[0]


def reference_target(rule: SendRule, start: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    begin = start.astimezone(UTC) + rule.delay
    if rule.at is None and rule.days == 0:
        return begin
    local = begin.astimezone(zone)
    day = local.date() + dt.timedelta(days=rule.days)
    wall = rule.at or local.time()
    target = reference_reading(dt.datetime.combine(day, wall), zone)
    while rule.at is not None and target < begin:
        day += dt.timedelta(days=1)
        target = reference_reading(dt.datetime.combine(day, wall), zone)
    return max(target, begin)


def first_minute_at_or_after(t: dt.datetime) -> dt.datetime:
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + MINUTE


def assert_earliest(rule: SendRule, zone: zoneinfo.ZoneInfo, target: dt.datetime, result):
    """No whole-minute instant in [target, result) qualifies, nor result - 1 µs."""
    if result - TINY >= target:
        assert not qualifies(rule, zone, result - TINY)
    spans = [(target, result)]
    if result - target > SCAN:
        spans = [(target, target + SCAN / 2), (result - SCAN / 2, result)]
    for lo, hi in spans:
        if qualifies(rule, zone, lo) and lo < result:
            raise AssertionError(f"{lo} qualifies before {result}")
        t = first_minute_at_or_after(lo)
        while t < hi:
            assert not qualifies(rule, zone, t), f"{t} qualifies before {result}"
            t += MINUTE


def check_resolution(rule: SendRule, start: dt.datetime, name: str) -> None:
    zone = zoneinfo.ZoneInfo(name)
    res = resolve(rule, start, name)
    begin = start.astimezone(UTC) + rule.delay
    # result >= target >= start, compared in UTC.
    assert res.utc.tzinfo is UTC and res.utc >= res.target.astimezone(UTC) >= begin
    assert res.target.astimezone(UTC) == reference_target(rule, start, zone)
    assert res.target.tzinfo is zone
    # Not `res.local == res.utc`: an aware time in a fold never equals another zone's (PEP 495).
    assert res.local.astimezone(UTC) == res.utc and res.local.tzinfo.key == name
    assert res.local.utcoffset() == res.utc.astimezone(zone).utcoffset()
    assert qualifies(rule, zone, res.utc)
    assert_earliest(rule, zone, res.target.astimezone(UTC), res.utc)
    # Shifts only move forward and the last search move lands on the result.
    target = res.target.astimezone(UTC)
    moves = [s.local.astimezone(UTC) for s in res.shifts]
    assert moves == sorted(moves) and all(target <= m <= res.utc for m in moves)
    if res.utc != target:
        assert moves and moves[-1] == res.utc
    # Resolving again from the result, with only the filters, changes nothing.
    again = resolve(
        SendRule(window=rule.window, weekdays=rule.weekdays, holidays=rule.holidays), res.utc, name
    )
    assert again.utc == res.utc and again.shifts == ()


@FAST
@given(rule=rules, start=instants, name=st.sampled_from(ZONES))
def test_resolution_invariants(rule, start, name):
    check_resolution(rule, start, name)


@pytest.mark.slow
@SLOW
@given(rule=rules, start=instants, name=st.sampled_from(ZONES))
def test_resolution_invariants_many(rule, start, name):
    check_resolution(rule, start, name)


def transitions(zone: zoneinfo.ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """Offset changes in [lo, hi), found by daily probes and bisection to the second."""

    def offset(t: dt.datetime) -> dt.timedelta | None:
        return t.astimezone(zone).utcoffset()

    found, t = [], lo
    while t < hi:
        nxt = t + dt.timedelta(days=1)
        if offset(t) != offset(nxt):
            a, b = 0, 86400  # seconds after t: offset(a) == offset(t) != offset(b)
            while b - a > 1:
                mid = (a + b) // 2
                a, b = (mid, b) if offset(t + dt.timedelta(seconds=mid)) == offset(t) else (a, mid)
            found.append(t + dt.timedelta(seconds=b))
        t = nxt
    return found


def test_every_zone_around_its_clock_changes():
    """Every zone, every 2024-2025 clock change: `at` and window opens in the gap or fold."""
    lo, hi = dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2026, 1, 1, tzinfo=UTC)
    checked = 0
    for name in ZONES:
        zone = zoneinfo.ZoneInfo(name)
        for change in transitions(zone, lo, hi):
            before = (change - dt.timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
            after = change.astimezone(zone).replace(tzinfo=None)
            # Halfway through the skipped (or repeated) stretch of wall time.
            mid = min(before, after) + abs(after - before) / 2
            wall = mid.time().replace(second=0, microsecond=0)
            close = (mid + dt.timedelta(hours=3)).time().replace(second=0, microsecond=0)
            rules = (
                SendRule(at=wall),
                SendRule(days=1, at=wall),
                SendRule(window=Window(wall, close)),
                SendRule(window=Window(dt.time(0, 5), dt.time(0)), weekdays={after.weekday()}),
            )
            # Well before the change, and just after it (inside the repeat of a fold).
            for start in (change - dt.timedelta(hours=6), change + abs(after - before) / 4):
                for rule in rules:
                    check_resolution(rule, start, name)
                    checked += 1
    assert checked > 1000


@settings(max_examples=200, deadline=None)
@given(rule=rules)
def test_mapping_round_trip(rule):
    assert SendRule.from_mapping(rule.to_mapping()) == rule


@settings(max_examples=100, deadline=None)
@given(window=windows.filter(lambda w: w is not None))
def test_window_text_round_trip(window):
    assert Window.parse(str(window)) == window
