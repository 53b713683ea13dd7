"""One clock for everything: the real one in production, a simulated one in tests and the demo."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware, in UTC."""

    def script_now(self) -> str:
        """What Lua scripts receive as 'now': '' lets them read Redis TIME."""


def to_ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def ceil_ms(instant: datetime) -> int:
    """UTC ms of an instant, rounded up: a time to wait for is never read as earlier."""
    return -(-round(instant.timestamp() * 1_000_000) // 1000)


def from_ms(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class SystemClock:
    """Wall-clock time; Lua scripts use the Redis server's TIME."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def script_now(self) -> str:
        return ""


class SimulatedClock:
    """A clock that only moves when told to; shared safely by worker threads."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware start instant")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def script_now(self) -> str:
        return str(to_ms(self.now()))

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> datetime:
        with self._lock:
            if instant.astimezone(UTC) < self._now:
                raise ValueError("a simulated clock never goes back")
            self._now = instant.astimezone(UTC)
            return self._now
