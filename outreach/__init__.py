"""Outreach: proactive, localized customer messages delivered at the right local time.

The module-level ``emit`` and ``upsert_customer`` use one application built from
the environment (``OUTREACH_*``); build an ``Outreach`` yourself for more control.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .app import Outreach
from .clock import Clock, SimulatedClock, SystemClock
from .customers.profile import Customer
from .errors import (
    ChannelError,
    ConfigError,
    CustomerErased,
    InputError,
    OutreachError,
    PermanentChannelError,
    TemplateError,
    TimingError,
    TransientChannelError,
    UnknownCustomer,
    UnknownEventType,
)
from .journeys.events import Event
from .schedule import ConsentChange, Stop
from .settings import Settings

__all__ = [
    # the application
    "Outreach",
    "Settings",
    "default_app",
    "emit",
    "upsert_customer",
    "set_consent",
    "export_customer",
    "erase_customer",
    # data
    "Customer",
    "Event",
    "ConsentChange",
    "Stop",
    # clocks
    "Clock",
    "SimulatedClock",
    "SystemClock",
    # errors
    "OutreachError",
    "ConfigError",
    "InputError",
    "UnknownCustomer",
    "UnknownEventType",
    "CustomerErased",
    "TimingError",
    "TemplateError",
    "ChannelError",
    "TransientChannelError",
    "PermanentChannelError",
]

_default: Outreach | None = None
_lock = threading.Lock()


def default_app() -> Outreach:
    """The application built from the environment on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = Outreach(Settings.from_env())
        return _default


def emit(
    type: str,
    customer_id: str,
    data: Mapping[str, Any] | None = None,
    *,
    id: str | None = None,
    occurred_at: datetime | str | None = None,
) -> str:
    """Queue a lifecycle event; returns its id. An id seen before is ignored by ingestion."""
    return default_app().emit(type, customer_id, data, id=id, occurred_at=occurred_at)


def upsert_customer(data: Mapping[str, Any] | Customer) -> Customer:
    """Create or update a customer profile; raises InputError naming a bad field."""
    return default_app().upsert_customer(data)


def set_consent(
    customer_id: str,
    *,
    allowed: bool,
    category: str | None = None,
    channel: str | None = None,
    source: str = "api",
) -> ConsentChange:
    """Give or withdraw consent for a category or channel; withdrawing emits customer.unsubscribed.

    Effective at once for every send not yet handed to a provider; the result says, per
    open send of a withdrawn category, ``cancelled`` or ``too_late`` (``Stop``).
    """
    return default_app().set_consent(
        customer_id, allowed=allowed, category=category, channel=channel, source=source
    )


def export_customer(customer_id: str) -> dict[str, Any]:
    """Everything held about a customer (profile, consent history, sends, survey answers)."""
    return default_app().export_customer(customer_id)


def erase_customer(customer_id: str) -> dict[str, int]:
    """Erase a customer; only a hashed tombstone remains and later events are refused."""
    return default_app().erase_customer(customer_id)
