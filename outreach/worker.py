"""Entry point for ``dramatiq outreach.worker``: the application's broker with its actors."""

from __future__ import annotations

import logging

import dramatiq

from .app import Outreach
from .logs import configure as configure_logs
from .reloading import watch
from .settings import Settings

settings = Settings.from_env()
if not settings.redis_url:
    raise SystemExit("dramatiq workers need a shared Redis: set OUTREACH_REDIS_URL (or use `outreach run`)")
app = Outreach(settings)
if settings.log_format == "json":
    # Dramatiq set up its handlers already: they write JSON lines from here on.
    configure_logs("json", logging.INFO)
broker = app.broker
dramatiq.set_broker(broker)
# A change to the project's files is checked, then loaded, by each worker process.
watch(app)
