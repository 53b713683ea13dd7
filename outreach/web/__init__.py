"""The web process: customer pages, the HTTP API, metrics and the operator page (docs/WEB.md).

``create_app(outreach)`` builds the FastAPI application; ``outreach.web.main:app`` is
the one uvicorn serves (``uvicorn outreach.web.main:app``).
"""

from .app import create_app

__all__ = ["create_app"]
