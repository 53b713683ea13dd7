"""The scheduler process: APScheduler ticks for the pump and the sweeps.

APScheduler runs only a few periodic ticks here, never per-customer jobs; the
ticks themselves are safe in several scheduler processes at once because each
claim is one atomic Lua script.
"""

from __future__ import annotations

import logging
import time

import redis
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from .app import Outreach

logger = logging.getLogger(__name__)


def _safe(name: str, fn):
    """A tick that never stops the scheduler: a failure is logged and the next tick tries again.

    While Redis is unreachable (restarting, failing over) each tick would fail the
    same way: that is said once, and again when Redis answers, with how long it was gone.
    """
    down_since: float | None = None

    def tick() -> None:
        nonlocal down_since
        try:
            fn()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if down_since is None:
                down_since = time.monotonic()
                logger.warning("%s tick: Redis unreachable (%s); trying again each tick", name, exc)
            return
        except Exception:  # noqa: BLE001 - a failed tick is logged; the next one tries again
            logger.exception("%s tick failed", name)
            return
        if down_since is not None:
            logger.warning("%s tick: Redis answers again after %.1f s", name, time.monotonic() - down_since)
            down_since = None

    tick.__name__ = name
    return tick


def build_scheduler(app: Outreach, *, blocking: bool) -> BaseScheduler:
    """A scheduler with the pump and sweep ticks configured (not started)."""
    # coalesce: after a pause, run a missed tick once, not once per missed interval.
    # misfire_grace_time=None: a late tick still runs (the default of 1 s drops it).
    # max_instances=1: a slow tick is never overlapped by the next.
    options = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}
    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="UTC")
    for name, tick, seconds in (
        ("pump", app.pump, app.settings.pump_interval),
        ("sweep", app.sweep, app.settings.sweep_interval),
        ("broadcasts", app.broadcasts.resume, app.settings.sweep_interval),
    ):
        scheduler.add_job(_safe(name, tick), "interval", seconds=seconds, id=name, **options)
    return scheduler
