"""Broadcasts: a one-off message to an audience, each customer at a local moment (docs/JOURNEYS.md)."""

from .broadcasts import Broadcasts, Cancelled, Status, definition
from .model import CANCEL_REASON, JOURNEY, Broadcast, Moment

__all__ = [
    "CANCEL_REASON",
    "JOURNEY",
    "Broadcast",
    "Broadcasts",
    "Cancelled",
    "Moment",
    "Status",
    "definition",
]
