"""Channels: where rendered messages go."""

from .base import Delivery, Transport
from .outbox import Outbox

__all__ = ["Delivery", "Outbox", "Transport"]
