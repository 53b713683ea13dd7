"""The application uvicorn serves: ``uvicorn outreach.web.main:app`` (settings from ``OUTREACH_*``)."""

from __future__ import annotations

from ..app import Outreach
from ..reloading import watch
from ..settings import Settings
from .app import create_app

outreach = Outreach(Settings.from_env())
app = create_app(outreach)
# A change to the project's files (pages, catalogs, channels) is checked, then loaded.
watch(outreach)
