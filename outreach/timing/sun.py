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
from dataclasses import dataclass
from pathlib import Path

from astral import Observer
from astral import sun as astral_sun

from outreach.errors import TimingError

#: The sun's depression below the horizon at nightfall (three stars visible, ``tzeit``).
NIGHTFALL_DEPRESSION = 8.5
#: The sun's depression at dawn (``fajr``), where a fast begins; conventions vary from 15° to 19.5°.
DAWN_DEPRESSION = 18.0
#: Extra time on either side of a sundown observance when the place is only the zone's reference
#: point: the sun sets up to about half an hour apart across most zones people live in.
ZONE_MARGIN = dt.timedelta(minutes=30)


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


def _zoneinfo_file(name: str) -> bytes | None:
    """The TZif bytes of a zone (from the tzdata package, else the system's zoneinfo)."""
    try:
        return importlib.resources.files("tzdata").joinpath("zoneinfo", *name.split("/")).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, IsADirectoryError, NotADirectoryError):
        for root in zoneinfo.TZPATH:
            path = Path(root) / name
            if path.is_file():
                return path.read_bytes()
    return None


def _table(name: str) -> str:
    found = _zoneinfo_file(name)
    return found.decode("utf-8") if found else ""


@functools.cache
def _reference_points() -> dict[str, tuple[float, float]]:
    points: dict[str, tuple[float, float]] = {}
    for name in ("zone.tab", "zone1970.tab"):  # zone1970.tab wins where both list a zone
        for line in _table(name).splitlines():
            if not line or line.startswith("#"):
                continue
            columns = line.split("\t")
            coordinates, zone_name = columns[1], columns[2]
            split = max(coordinates.rfind("+"), coordinates.rfind("-"))
            lat_text, lon_text = coordinates[:split], coordinates[split:]
            points[zone_name] = (_parse_coordinate(lat_text, 2), _parse_coordinate(lon_text, 3))
    return points


@functools.cache
def _points_by_rules() -> dict[bytes, tuple[float, float]]:
    # A link (Asia/Calcutta, US/Eastern) is a copy of its zone's file: find the zone by its bytes.
    by_rules: dict[bytes, tuple[float, float]] = {}
    for zone_name, point in _reference_points().items():
        data = _zoneinfo_file(zone_name)
        if data is not None:
            by_rules.setdefault(data, point)
    return by_rules


@functools.lru_cache(maxsize=1024)
def zone_place(zone_name: str) -> Place | None:
    """The zone's reference point from tzdata (a link's zone's), or None for a zone without one
    (UTC, Etc/GMT+5)."""
    found = _reference_points().get(zone_name)
    if found is None:
        data = _zoneinfo_file(zone_name)
        found = _points_by_rules().get(data) if data is not None else None
    return Place(found[0], found[1], own=False) if found else None


@functools.lru_cache(maxsize=8192)
def sun_times(
    place: Place, day: dt.date, zone_name: str
) -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    """(dawn, sunset, nightfall) on the local date ``day`` in ``zone_name`` at ``place``, in UTC;
    None where the sun does not get there that day (no sunset in polar day, no nightfall in a white
    night)."""
    observer = Observer(place.latitude, place.longitude)
    local = zoneinfo.ZoneInfo(zone_name)

    def utc(moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(dt.UTC)

    def at(depression: float, direction: astral_sun.SunDirection) -> dt.datetime | None:
        # astral may answer for a neighbouring local date; ask again for the one wanted.
        asked = day
        for _ in range(3):
            try:
                found = astral_sun.time_at_elevation(observer, -depression, asked, direction, tzinfo=local)
            except ValueError:
                return None
            if found.date() == day:
                return utc(found)
            asked += day - found.date()
        return None

    try:
        sunset: dt.datetime | None = utc(astral_sun.sunset(observer, day, tzinfo=local))
    except ValueError:
        sunset = None
    dawn = at(DAWN_DEPRESSION, astral_sun.SunDirection.RISING)
    if dawn is None and sunset is not None:
        # No astronomical dawn (a summer night at high latitude): the night's darkest moment.
        dawn = utc(astral_sun.midnight(observer, day, tzinfo=local))
    nightfall = at(NIGHTFALL_DEPRESSION, astral_sun.SunDirection.SETTING)
    return dawn, sunset, nightfall
