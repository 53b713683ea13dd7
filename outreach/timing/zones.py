"""Time zones and instants: IANA zone lookup, ISO 8601 parsing, wall clock <-> UTC.

Instants are compared in UTC only: Python compares two aware datetimes that share a
tzinfo by wall time and ignores ``fold``, and ``aware + timedelta`` is wall-clock
arithmetic, so both would be wrong across DST changes. The helpers here step over
wall-clock events (a local time of day, a clock change, a new local date) in UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from zoneinfo import ZoneInfo, available_timezones

from outreach.errors import TimingError

UTC = dt.UTC
_DAY = dt.timedelta(days=1)
_MIDNIGHT = dt.time(0)


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


#: How far ahead two zones must keep the same clock to count as one (two years, twice a day).
_SAME_CLOCK_SAMPLES = [
    dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(hours=12 * i) for i in range(4 * 366)
]


@functools.cache
def country_zone(country: str) -> str | None:
    """The zone of a country whose clocks all agree (``FR``: Europe/Paris; ``DE``: Europe/Berlin,
    which Büsingen follows), or None where they differ (``US``, ``BR``) or the country is unknown.

    The country's zones are CLDR's; "agree" means the same UTC offset at every sample over two years.
    """
    from babel.core import get_global

    names = [n for n in get_global("territory_zones").get(country.upper(), []) if n in _zone_names()]
    if not names:
        return None
    first = _load_zone(names[0])
    for other in map(_load_zone, names[1:]):
        if any(_offset(t, first) != _offset(t, other) for t in _SAME_CLOCK_SAMPLES):
            return None
    return str(names[0])


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO 8601 instant; an explicit offset or ``Z`` is required."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise TimingError("from", text, "expected an ISO 8601 date-time") from None
    if value.utcoffset() is None:
        raise TimingError("from", text, "needs a UTC offset or 'Z' (e.g. 2024-03-31T08:00:00Z)")
    return value


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


def _next_date(t: dt.datetime, z: ZoneInfo) -> dt.datetime:
    """The first instant after ``t`` whose local date differs from that of ``t``."""
    day = t.astimezone(z).date()
    for _ in range(8):
        t = _next_event(t, z, _MIDNIGHT)
        if t.astimezone(z).date() != day:
            return t
    raise TimingError("zone", z.key, "local date does not advance")
