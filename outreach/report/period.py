"""The period a report covers: ``--since`` / ``--until`` and ``/ops?since=…&until=…``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ..errors import InputError

#: The period a report may cover: nothing is older than the oldest event time accepted
#: (``journeys.events.EARLIEST``), and an end this far ahead already covers every planned send.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def parse_bound(name: str, text: str, *, end: bool = False) -> datetime:
    """``--since`` / ``--until``: ISO 8601 with an offset, or a date (UTC; an end date includes its day),
    between 2000 and 3000."""
    value = _parse(name, text, end)
    try:
        inside = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise InputError(name, text, f"must be between {EARLIEST.date()} and {LATEST.date()}")
    return value


def _parse(name: str, text: str, end: bool) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) <= 10:
        start = datetime.combine(day, time(0), tzinfo=UTC)
        if not end:
            return start
        try:
            return start + timedelta(days=1) - timedelta(milliseconds=1)
        except OverflowError:
            return datetime.max.replace(tzinfo=UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            name, text, "expected ISO 8601 (2026-03-01T00:00:00Z) or a date (2026-03-01)"
        ) from None
    if value.utcoffset() is None:
        raise InputError(name, text, "needs a UTC offset or 'Z' (or give a date)")
    return value
