"""Channels: where rendered messages go."""

from .base import Delivery, Handed, Transport
from .outbox import Outbox

__all__ = ["Delivery", "Handed", "Outbox", "Transport"]
