"""Calendars: public-holiday calendars by country and subdivision, weekday sets and names."""

from __future__ import annotations

import datetime as dt
import functools
import threading
import warnings
from collections.abc import Iterable, Mapping

import holidays as holidays_lib

from outreach.errors import TimingError

_WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WARNINGS_LOCK = threading.Lock()


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


def _is_weekend(code: str, day: dt.date) -> bool:
    """Whether ``day`` is in the country's weekend that year (the ``holidays`` package's
    definition, which follows changes such as the UAE's move to Saturday-Sunday in 2022, and
    the weekend days some countries make working days in exchange for a bridge holiday). ``code``
    is a country or a subdivision with a weekend of its own (``MY-03``: Kelantan rests on Friday
    and Saturday)."""
    calendar = _calendar(*_holiday_code(code), day.year)
    return bool(calendar.is_weekend(day)) and day not in calendar.weekend_workdays  # type: ignore[attr-defined]


def _weekend_names(code: str, day: dt.date) -> str:
    """The weekend of a country or subdivision in the week of ``day``, in words: "Friday-Saturday"."""
    calendar = _calendar(*_holiday_code(code), day.year)
    monday = day - dt.timedelta(days=day.weekday())
    days = [i for i in range(7) if calendar.is_weekend(monday + dt.timedelta(days=i))]  # type: ignore[attr-defined]
    if not days:
        return "no day"
    # Written from the day after a working day, so a weekend that wraps (Sunday-Monday) reads in order.
    first = next((d for d in days if (d - 1) % 7 not in days), days[0])
    ordered = sorted(days, key=lambda d: (d - first) % 7)
    if all((b - a) % 7 == 1 for a, b in zip(ordered, ordered[1:], strict=False)) and len(ordered) > 1:
        return f"{_WEEKDAY_NAMES[ordered[0]]}\u2013{_WEEKDAY_NAMES[ordered[-1]]}"
    return " and ".join(_WEEKDAY_NAMES[d] for d in ordered)
