"""The local-time engine: when, in a customer's own zone, a send rule fires.

A rule says "N calendar days after the event, at HH:MM, inside a daily window, on
allowed weekdays (or the country's business days), not on public holidays, outside the
observances the customer keeps". ``resolve`` turns it into one UTC instant and records
every move it made on the way. docs/TIMING.md states the semantics.

The modules, each importing only those before it:

* ``zones``: IANA zones, ISO 8601 instants, wall clock <-> UTC steps;
* ``calendar``: holiday calendars (country, subdivision), weekends, weekday sets and names;
* ``sun``: sunset, nightfall and dawn at a place, and each zone's reference point;
* ``observances``: the religious calendars a customer may keep, as spans of time;
* ``rules``: ``Window`` (the quiet hours), ``SendRule`` and ``rule_for``;
* ``resolution``: ``resolve``, ``Shift`` and ``Resolution``.

Everything other modules use is importable from ``outreach.timing`` itself. Module
constants are read where they are defined: patch ``resolution.SEARCH_DAYS``, not
``outreach.timing.SEARCH_DAYS``.
"""

from __future__ import annotations

from .observances import OBSERVANCES, RAMADAN_CHOICES
from .resolution import SEARCH_DAYS, Resolution, Shift, resolve
from .rules import (
    BUSINESS_DAYS,
    CUSTOMER,
    CUSTOMER_KEYS,
    MAX_DAYS,
    CustomerCalendar,
    SendRule,
    Window,
    rule_for,
)
from .zones import UTC, country_zone, parse_instant, zone

__all__ = [
    "BUSINESS_DAYS",
    "CUSTOMER",
    "CUSTOMER_KEYS",
    "CustomerCalendar",
    "OBSERVANCES",
    "RAMADAN_CHOICES",
    "MAX_DAYS",
    "SEARCH_DAYS",
    "UTC",
    "country_zone",
    "Resolution",
    "SendRule",
    "Shift",
    "Window",
    "parse_instant",
    "resolve",
    "rule_for",
    "zone",
]
