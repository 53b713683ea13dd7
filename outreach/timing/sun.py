"""Sun times at a place: sunset, nightfall and dawn, and where a zone's reference point is.

Observances that begin at sundown (``observances``) need the sun's times where the customer
lives: the profile's coordinates when it gives them, else the reference point tzdata gives
each zone in ``zone1970.tab`` (or ``zone.tab`` for the zones only that file lists). The times
come from ``astral`` (NOAA's solar equations, about a minute from the almanac at the latitudes
people live in). docs/TIMING.md states the precision and what happens where the sun does not
set or does not go deep enough.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from astral import Observer
from astral import sun as astral_sun

from outreach.errors import TimingError

from .zones import zone

_DAY = dt.timedelta(days=1)

#: The sun's depression below the horizon at nightfall (three stars visible, ``tzeit``).
NIGHTFALL_DEPRESSION = 8.5
#: The sun's depression at dawn (``fajr``), where a fast begins; conventions vary from 15° to 19.5°.
DAWN_DEPRESSION = 18.0
#: Extra time on either side of a sundown observance when the place is only the zone's reference
#: point. Within a zone, sunset differs from its reference point by over an hour: Miami sets 64
#: minutes after New York in December, Mumbai 69 after Kolkata. docs/TIMING.md.
ZONE_MARGIN = dt.timedelta(minutes=90)


@dataclass(frozen=True)
class Place:
    """Where the sun is watched from: coordinates, and whether they are the customer's own."""

    latitude: float
    longitude: float
    #: True for the profile's own coordinates; False for the zone's reference point.
    own: bool = True

    def __post_init__(self) -> None:
        check_coordinates(self.latitude, self.longitude)

    @property
    def margin(self) -> dt.timedelta:
        return dt.timedelta(0) if self.own else ZONE_MARGIN

    def __str__(self) -> str:
        where = "the customer's coordinates" if self.own else "the zone's reference point"
        return f"{where} {self.latitude:.2f}, {self.longitude:.2f}"


def check_coordinates(latitude: object, longitude: object) -> None:
    """TimingError unless both are finite numbers in range (latitude -90..90, longitude -180..180)."""
    for name, value, bound in (("latitude", latitude, 90), ("longitude", longitude, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not -bound <= value <= bound:
            raise TimingError(name, value, f"must be a number from -{bound} to {bound}")


def _parse_coordinate(text: str, degree_digits: int) -> float:
    # ISO 6709 as zone1970.tab writes it: sign, degrees, minutes, optional seconds.
    sign = -1 if text[0] == "-" else 1
    digits = text[1:]
    degrees, rest = int(digits[:degree_digits]), digits[degree_digits:]
    minutes, seconds = int(rest[:2]), int(rest[2:4] or 0)
    return sign * (degrees + minutes / 60 + seconds / 3600)


def _table(name: str) -> str:
    """One of tzdata's text tables (``zone1970.tab``, ``tzdata.zi``) from the tzdata package, else
    the system's zoneinfo; empty when neither has it."""
    try:
        return importlib.resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        for root in zoneinfo.TZPATH:
            path = Path(root) / name
            if path.is_file():
                return path.read_text(encoding="utf-8")
    return ""


@functools.cache
def _reference_points() -> dict[str, tuple[float, float, tuple[str, ...]]]:
    """Zone -> (latitude, longitude, the countries it serves) from ``zone.tab`` and ``zone1970.tab``."""
    points: dict[str, tuple[float, float, tuple[str, ...]]] = {}
    for name in ("zone1970.tab", "zone.tab"):  # zone.tab's one country per row wins
        for line in _table(name).splitlines():
            if not line or line.startswith("#"):
                continue
            columns = line.split("\t")
            countries, coordinates, zone_name = tuple(columns[0].split(",")), columns[1], columns[2]
            split = max(coordinates.rfind("+"), coordinates.rfind("-"))
            lat_text, lon_text = coordinates[:split], coordinates[split:]
            points[zone_name] = (_parse_coordinate(lat_text, 2), _parse_coordinate(lon_text, 3), countries)
    return points


@functools.cache
def _links() -> dict[str, str]:
    """Link name -> zone, from tzdata's ``tzdata.zi`` (``L TARGET LINK`` lines)."""
    links = {}
    for line in _table("tzdata.zi").splitlines():
        if line.startswith("L "):
            _, target, name = line.split()[:3]
            links[name] = target
    return links


def _target(name: str) -> str:
    for _ in range(4):  # a link may name another link
        if name not in _links():
            break
        name = _links()[name]
    return name


@functools.lru_cache(maxsize=1024)
def zone_place(zone_name: str, country: str | None = None) -> Place | None:
    """The zone's reference point from tzdata, or None for a zone without one (UTC, Etc/GMT+5).

    A link (``US/Eastern``) takes the point of a zone of the customer's ``country`` that is the
    same zone (``Iceland`` and ``Atlantic/Reykjavik`` both link to ``Africa/Abidjan``: a customer
    in IS gets Reykjavik), else that of the zone it links to.
    """
    points = _reference_points()
    found = points.get(zone_name)
    if found is None:
        target = _target(zone_name)
        same = [p for name, p in points.items() if country in p[2] and _target(name) == target]
        found = same[0] if country and same else points.get(target)
    return Place(found[0], found[1], own=False) if found else None


def _events(find: Callable[[dt.date], dt.datetime], day: dt.date) -> list[dt.datetime]:
    """The events ``find`` gives for the dates around ``day`` (astral may answer for a neighbouring
    date: an evening event after midnight is dated the next day)."""
    found = set()
    for asked in (day - _DAY, day, day + _DAY):
        try:
            found.add(find(asked).astimezone(dt.UTC))
        except ValueError:  # the sun does not get there that day
            continue
    return sorted(found)


def _noon(observer: Observer, day: dt.date, local: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """Solar noon of the local date ``day`` (astral counts dates in UTC: east of the date line, at
    UTC+13 and +14, its noon of a date is the next local day's)."""
    for asked in (day, day - _DAY, day + _DAY):
        found = astral_sun.noon(observer, asked, tzinfo=local)
        if found.date() == day:
            return found.astimezone(dt.UTC)
    return None  # a date the zone skipped (Pacific/Apia, 2011-12-30)


@functools.lru_cache(maxsize=8192)
def sun_times(
    place: Place, day: dt.date, zone_name: str
) -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    """(dawn, sunset, nightfall) of the local date ``day`` in ``zone_name`` at ``place``, in UTC.

    The evening's events are the first after the day's solar noon and before the next one (in a
    northern summer they may come after midnight); dawn is the last before the day's noon. None
    where the sun does not get there (no sunset in polar day, no nightfall in a white night); a
    night without astronomical dawn takes its darkest moment.
    """
    observer = Observer(place.latitude, place.longitude)
    local = zone(zone_name)
    noon, next_noon, last_noon = (_noon(observer, d, local) for d in (day, day + _DAY, day - _DAY))
    if noon is None or next_noon is None or last_noon is None:
        return None, None, None

    def evening(find: Callable[[dt.date], dt.datetime]) -> dt.datetime | None:
        return next((t for t in _events(find, day) if noon < t < next_noon), None)

    def at(depression: float, direction: astral_sun.SunDirection) -> Callable[[dt.date], dt.datetime]:
        return lambda d: astral_sun.time_at_elevation(observer, -depression, d, direction, tzinfo=local)

    sunset = evening(lambda d: astral_sun.sunset(observer, d, tzinfo=local))
    nightfall = evening(at(NIGHTFALL_DEPRESSION, astral_sun.SunDirection.SETTING))
    dawns = [
        t for t in _events(at(DAWN_DEPRESSION, astral_sun.SunDirection.RISING), day) if last_noon < t < noon
    ]
    dawn = dawns[-1] if dawns else None
    if dawn is None and sunset is not None:
        # No astronomical dawn (a summer night at high latitude): the night's darkest moment.
        dawn = astral_sun.midnight(observer, day, tzinfo=local).astimezone(dt.UTC)
    return dawn, sunset, nightfall
