"""Observances a customer keeps: the spans of time a send must not land in.

A customer's profile may list the calendars they observe (``OBSERVANCES``); nothing here is
inferred from names, languages or countries. A journey chooses whether its sends respect them
(``observances = "customer"``). Each calendar gives local dates; a calendar whose days begin at
sundown (Jewish festivals, Shabbat, Islamic days) turns a run of dates into the span from
candle-lighting on the eve to nightfall on the last day, with the sun's times where the customer
lives (``sun``). Others cover whole local days. During Ramadan a journey may choose
``ramadan = "after_iftar"``: the fasting hours and the hour of iftar are closed, not the days.

Sources: ``pyluach`` (Hebrew calendar, festivals in Israel and abroad), ``hijridate`` (Umm
al-Qura, 1343-1500 AH), ``dateutil`` (Western and Orthodox Easter), and the lunisolar tables of
the ``holidays`` package (Chinese, Korean and Vietnamese new year; Hindu festivals).
docs/TIMING.md states the days, the sundown rule and their precision.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass

from dateutil.easter import EASTER_ORTHODOX, EASTER_WESTERN, easter
from hijridate import Gregorian, Hijri
from holidays.calendars import _ChineseLunisolar, _HinduLunisolar
from holidays.calendars.chinese import CHINESE_CALENDAR, KOREAN_CALENDAR, VIETNAMESE_CALENDAR
from pyluach import dates as hebrew_dates
from pyluach import hebrewcal

from .sun import Place, sun_times, zone_place
from .zones import _DAY, _from_wall, zone

#: The calendars a profile may list, and what each covers (docs/TIMING.md).
OBSERVANCES = {
    "christian": "Good Friday, Easter Sunday and Monday, Christmas Day",
    "christian_orthodox": (
        "Orthodox Good Friday, Easter Sunday and Monday, Christmas (25 December and 7 January)"
    ),
    "hindu": "Holi, Dussehra, Diwali",
    "islamic": "Eid al-Fitr (1-3 Shawwal) and Eid al-Adha (10-12 Dhu al-Hijjah), from sundown",
    "jewish": "the festival days on which work is not done (Yom Tov), from sundown",
    "lunar_new_year": "Lunar New Year's Eve and the first three days of the year",
    "shabbat": "Shabbat, from sundown on Friday to nightfall on Saturday",
}
#: Calendars whose days begin at sundown on the eve.
SUNDOWN = frozenset({"jewish", "shabbat", "islamic"})
#: What a journey may choose for Ramadan (``ramadan`` in a send rule).
RAMADAN_CHOICES = {"after_iftar": "no send from dawn until an hour after sunset (the fast and iftar)"}
#: Candle-lighting: a sundown observance begins this long before sunset.
CANDLE_LIGHTING = dt.timedelta(minutes=18)
#: The hour of iftar after sunset that ``after_iftar`` keeps clear.
IFTAR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Span:
    """A span of time no send may land in: ``[start, end)`` in UTC, and why."""

    start: dt.datetime
    end: dt.datetime
    #: ``observance`` or ``ramadan`` (a reason code of a shift).
    reason: str
    text: str


# -- the days of each calendar ------------------------------------------------------------


def _jewish(year: int, israel: bool) -> Iterator[tuple[dt.date, str]]:
    day = dt.date(year, 1, 1)
    while day.year == year:
        name = hebrewcal.festival(
            hebrew_dates.GregorianDate.from_pydate(day), israel=israel, include_working_days=False
        )
        if name:
            yield day, name
        day += _DAY


def _shabbat(year: int) -> Iterator[tuple[dt.date, str]]:
    day = dt.date(year, 1, 1)
    day += dt.timedelta(days=(5 - day.weekday()) % 7)
    while day.year == year:
        yield day, "Shabbat"
        day += dt.timedelta(days=7)


def _hijri_days(year: int, month: int, first: int, last: int | None) -> Iterator[dt.date]:
    """The Gregorian dates of days ``first..last`` of a Hijri month, for the Hijri years that touch
    the Gregorian ``year`` (Umm al-Qura; none outside the years it covers)."""
    years = []
    for when in (dt.date(year, 1, 1), dt.date(year, 7, 1), dt.date(year, 12, 31)):
        try:
            years.append(Gregorian(when.year, when.month, when.day).to_hijri().year)
        except (OverflowError, ValueError):  # outside the years Umm al-Qura covers (1924-2077)
            continue
    if not years:
        return
    first_year, last_year = min(years) - 1, max(years) + 1
    for hijri_year in range(first_year, last_year + 1):
        try:
            length = Hijri(hijri_year, month, 1).month_length()
            for day in range(first, min(last or length, length) + 1):
                found = Hijri(hijri_year, month, day).to_gregorian()
                if found.year == year:
                    yield dt.date(found.year, found.month, found.day)
        except (OverflowError, ValueError):
            continue


def _islamic(year: int) -> Iterator[tuple[dt.date, str]]:
    for day in _hijri_days(year, 10, 1, 3):
        yield day, "Eid al-Fitr"
    for day in _hijri_days(year, 12, 10, 12):
        yield day, "Eid al-Adha"


def _christian(year: int, method: int) -> Iterator[tuple[dt.date, str]]:
    sunday = easter(year, method)
    prefix = "Orthodox " if method == EASTER_ORTHODOX else ""
    yield sunday - 2 * _DAY, f"{prefix}Good Friday"
    yield sunday, f"{prefix}Easter Sunday"
    yield sunday + _DAY, f"{prefix}Easter Monday"
    yield dt.date(year, 12, 25), "Christmas Day"
    if method == EASTER_ORTHODOX:
        yield dt.date(year, 1, 7), "Christmas (Julian calendar)"


def _lunar_new_year(year: int, country: str | None) -> Iterator[tuple[dt.date, str]]:
    kind = {"VN": VIETNAMESE_CALENDAR, "KR": KOREAN_CALENDAR}.get(country or "", CHINESE_CALENDAR)
    for y in (year, year + 1):  # the eve of next year's may fall in this one
        first = _ChineseLunisolar(kind).lunar_new_year_date(y)[0]
        if first is None:
            continue
        names = ("Lunar New Year's Eve", "Lunar New Year", "Lunar New Year (day 2)", "Lunar New Year (day 3)")
        for offset, name in enumerate(names, start=-1):
            day = first + offset * _DAY
            if day.year == year:
                yield day, name


def _hindu(year: int) -> Iterator[tuple[dt.date, str]]:
    calendar = _HinduLunisolar()
    for name, found in (
        ("Holi", calendar.holi_date(year)),
        ("Dussehra", calendar.dussehra_date(year)),
        ("Diwali", calendar.diwali_date(year)),
        ("Diwali", calendar.diwali_india_date(year)),
    ):
        if found[0] is not None:
            yield found[0], name


@functools.lru_cache(maxsize=512)
def observed_days(calendar: str, year: int, country: str | None) -> tuple[tuple[dt.date, str], ...]:
    """The local dates of ``calendar`` in ``year`` with their names (``country`` picks the Israeli
    festival schedule or a lunar calendar where they differ)."""
    days = {
        "jewish": lambda: _jewish(year, israel=country == "IL"),
        "shabbat": lambda: _shabbat(year),
        "islamic": lambda: _islamic(year),
        "christian": lambda: _christian(year, EASTER_WESTERN),
        "christian_orthodox": lambda: _christian(year, EASTER_ORTHODOX),
        "lunar_new_year": lambda: _lunar_new_year(year, country),
        "hindu": lambda: _hindu(year),
    }[calendar]()
    return tuple(sorted(set(days)))


# -- days into spans of time --------------------------------------------------------------


def _midnight(day: dt.date, zone_name: str) -> dt.datetime:
    return _from_wall(dt.datetime.combine(day, dt.time(0)), zone(zone_name))[0]


def _fmt(t: dt.datetime, zone_name: str) -> str:
    local = t.astimezone(zone(zone_name))
    return f"{local:%H:%M} on {local:%Y-%m-%d}"


def _runs(days: list[tuple[dt.date, str]]) -> Iterator[tuple[dt.date, dt.date, list[str]]]:
    """Consecutive dates as (first, last, names)."""
    run: list[tuple[dt.date, str]] = []
    for day, name in sorted(days):
        if run and day > run[-1][0] + _DAY:
            yield run[0][0], run[-1][0], _names(run)
            run = []
        run.append((day, name))
    if run:
        yield run[0][0], run[-1][0], _names(run)


def _names(run: list[tuple[dt.date, str]]) -> list[str]:
    names = list(dict.fromkeys(name for _, name in run))
    return [f"{names[0]} to {names[-1]}"] if len(names) > 2 else names


def _observance_spans(
    calendar: str, year: int, where: Place | None, zone_name: str, country: str | None
) -> Iterator[tuple[dt.datetime, dt.datetime, list[str]]]:
    days = [d for y in (year - 1, year, year + 1) for d in observed_days(calendar, y, country)]
    for first, last, names in _runs(days):
        start, end = _midnight(first, zone_name), _midnight(last + _DAY, zone_name)
        if calendar in SUNDOWN:
            # From candle-lighting on the eve to nightfall on the last day; the whole eve and the
            # whole last day where the sun does not set or get deep enough (docs/TIMING.md).
            start = _midnight(first - _DAY, zone_name)
            if where is not None:
                sunset = sun_times(where, first - _DAY, zone_name)[1]
                nightfall = sun_times(where, last, zone_name)[2]
                if sunset is not None:
                    start = sunset - CANDLE_LIGHTING - where.margin
                if nightfall is not None:
                    end = nightfall + where.margin
        yield start, end, names


def _ramadan_spans(
    year: int, where: Place | None, zone_name: str
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    for day in (d for y in (year - 1, year, year + 1) for d in _hijri_days(y, 9, 1, None)):
        dawn, sunset, _ = sun_times(where, day, zone_name) if where else (None, None, None)
        if dawn is None or sunset is None:
            yield _midnight(day, zone_name), _midnight(day + _DAY, zone_name)
        else:
            yield dawn - where.margin, sunset + IFTAR + where.margin  # type: ignore[union-attr]


@functools.lru_cache(maxsize=4096)
def _spans(
    observances: frozenset[str], ramadan: str | None, where: Place | None, zone_name: str,
    country: str | None, year: int,
) -> tuple[tuple[Span, ...], tuple[dt.datetime, ...]]:  # fmt: skip
    """Every span of the customer's observances around ``year``, merged where they touch, sorted,
    with their starts (for bisection)."""
    found: list[tuple[dt.datetime, dt.datetime, str, str, bool]] = []
    for calendar in sorted(observances):
        for start, end, names in _observance_spans(calendar, year, where, zone_name, country):
            found.append((start, end, "observance", " and ".join(names), calendar in SUNDOWN))
    if ramadan and "islamic" in observances:
        for start, end in _ramadan_spans(year, where, zone_name):
            found.append((start, end, "ramadan", "Ramadan", True))
    found.sort()
    merged: list[_Merged] = []
    for start, end, reason, name, sundown in found:
        start, end = _minute(start), _minute(end, up=True)
        if merged and start <= merged[-1].end:
            last = merged[-1]
            last.end = max(last.end, end)
            last.names += [name] if name not in last.names else []
            last.reason = "observance" if reason == "observance" else last.reason
            last.sundown = last.sundown or sundown
            continue
        merged.append(_Merged(start, end, reason, [name], sundown))
    spans = tuple(m.span(where, zone_name) for m in merged)
    return spans, tuple(s.start for s in spans)


def _minute(t: dt.datetime, up: bool = False) -> dt.datetime:
    """``t`` on a whole minute: down for a start, up for an end, so the span only grows."""
    down = t.replace(second=0, microsecond=0)
    return down + dt.timedelta(minutes=1) if up and down != t else down


@dataclass
class _Merged:
    """Spans that touch, while they are merged."""

    start: dt.datetime
    end: dt.datetime
    reason: str
    names: list[str]
    sundown: bool

    def span(self, where: Place | None, zone_name: str) -> Span:
        what = " and ".join(self.names)
        if self.reason == "ramadan":
            text = f"{what}: no sends from dawn until an hour after sunset (after_iftar)"
        else:
            text = f"{what} (observed by this customer)"
        text += f" from {_fmt(self.start, zone_name)} to {_fmt(self.end, zone_name)} {zone_name}"
        if self.sundown:
            text += (
                f"; sun times at {where}" if where is not None else "; no sun times for this zone: whole days"
            )
        return Span(self.start, self.end, self.reason, text)


def span_at(
    t: dt.datetime, observances: frozenset[str], ramadan: str | None, where: Place | None, zone_name: str,
    country: str | None,
) -> Span | None:  # fmt: skip
    """The span of the customer's observances that holds the UTC instant ``t``, if any. The sun is
    watched from the customer's own coordinates, else their zone's reference point (none for UTC)."""
    place = where if where is not None else zone_place(zone_name, country)
    spans, starts = _spans(observances, ramadan, place, zone_name, country, t.year)
    index = bisect.bisect_right(starts, t) - 1
    if index >= 0 and t < spans[index].end:
        return spans[index]
    return None
