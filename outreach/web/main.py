"""The application uvicorn serves: ``uvicorn outreach.web.main:app`` (settings from ``OUTREACH_*``)."""

from __future__ import annotations

from ..app import Outreach
from ..settings import Settings
from .app import create_app

app = create_app(Outreach(Settings.from_env()))
