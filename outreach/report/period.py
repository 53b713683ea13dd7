"""The period a report covers: ``--since`` / ``--until`` and ``/ops?since=…&until=…``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ..errors import InputError


def parse_bound(name: str, text: str, *, end: bool = False) -> datetime:
    """``--since`` / ``--until``: ISO 8601 with an offset, or a date (UTC; an end date includes its day)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) <= 10:
        start = datetime.combine(day, time(0), tzinfo=UTC)
        return start + timedelta(days=1) - timedelta(milliseconds=1) if end else start
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            name, text, "expected ISO 8601 (2026-03-01T00:00:00Z) or a date (2026-03-01)"
        ) from None
    if value.utcoffset() is None:
        raise InputError(name, text, "needs a UTC offset or 'Z' (or give a date)")
    return value
