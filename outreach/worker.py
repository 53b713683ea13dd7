"""Entry point for ``dramatiq outreach.worker``: the application's broker with its actors."""

from __future__ import annotations

import dramatiq

from .app import Outreach
from .settings import Settings

settings = Settings.from_env()
if not settings.redis_url:
    raise SystemExit("dramatiq workers need a shared Redis: set OUTREACH_REDIS_URL (or use `outreach run`)")
app = Outreach(settings)
broker = app.broker
dramatiq.set_broker(broker)
