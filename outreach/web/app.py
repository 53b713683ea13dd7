"""The web process: customer pages, the JSON API, metrics and the operator page on one FastAPI app."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..app import Outreach
from ..errors import ConfigError
from . import api, ops, pages
from .api import webhooks
from .metrics import registry_for
from .security import (
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    max_body_bytes,
    parse_tokens,
    redact_access_log,
)
from .spans import TracingMiddleware

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait while Redis is unreachable.
RETRY_AFTER_SECONDS = 5

DESCRIPTION = """\
Proactive, localized customer messages. This process serves:

- **customer pages** (HTML, localized, no JavaScript) behind the links in messages:
  survey answers `/s/{token}`, unsubscribe `/u/{token}` (also RFC 8058 one-click),
  message preferences `/p/{token}`;
- **the API** under `/v1` (bearer token from `OUTREACH_API_TOKENS`): events, customer
  profiles, the explain view of a send, provider delivery receipts;
- **operations**: `/healthz`, `/readyz`, `/metrics` (Prometheus), `/ops` (HTTP Basic).

Request bodies larger than `OUTREACH_MAX_BODY_BYTES` (default 1 MiB) get 413.
"""

TAGS = [
    {"name": "Events", "description": "Lifecycle events in, queued for ingestion."},
    {"name": "Customers", "description": "Customer profiles."},
    {"name": "Data rights", "description": "A customer's profile, consent, export and erasure; audited."},
    {"name": "Sends", "description": "What happened to a send, and why."},
    {
        "name": "Receipts",
        "description": "Delivery receipts from providers, signed with the channel's secret.",
    },
    {"name": "Customer pages", "description": "The pages behind the links in messages (HTML)."},
    {"name": "Operations", "description": "Health, readiness, metrics and the operator page."},
]


def _version() -> str:
    try:
        return metadata.version("outreach")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/v1/") or request.url.path == "/v1"


def create_app(
    outreach: Outreach,
    *,
    api_tokens: str | Iterable[str] | None = None,
    max_body_bytes_limit: int | None = None,
    receipt_secrets: Mapping[str, str] | None = None,
) -> FastAPI:
    """The web application for one ``Outreach``.

    ``api_tokens`` defaults to ``OUTREACH_API_TOKENS`` (comma-separated; none means every
    ``/v1`` request and ``/ops`` is refused), ``max_body_bytes_limit`` to
    ``OUTREACH_MAX_BODY_BYTES`` (1 MiB), and ``receipt_secrets`` (channel → secret, for
    checking receipt signatures) to ``config/channels.toml`` and ``OUTREACH_<CHANNEL>_SECRET``.
    """
    app = FastAPI(
        title="Outreach",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        # The interactive docs load scripts from a CDN; the pages here load nothing external.
        docs_url=None,
        redoc_url=None,
        # FastAPI's own request spans record the whole path, link tokens included:
        # web/spans.py makes them instead, when OUTREACH_TRACING is on.
        telemetry={"tracing": False},
    )
    app.state.outreach = outreach
    app.state.api_tokens = parse_tokens(api_tokens)
    if outreach.settings.production and not app.state.api_tokens:
        raise ConfigError("OUTREACH_API_TOKENS: the web process needs at least one API token in production")
    redact_access_log(logging.getLogger("uvicorn.access"))
    app.state.receipt_secrets = dict(receipt_secrets or {})
    app.state.pages = pages.Pages(outreach)
    app.state.metrics = registry_for(outreach)

    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(webhooks.router)
    app.include_router(ops.router)

    @app.exception_handler(pages.PageError)
    async def page_error(request: Request, exc: pages.PageError) -> Response:
        return request.app.state.pages.error(request, exc.kind, exc.customer)

    @app.exception_handler(api.ApiError)
    async def api_error(request: Request, exc: api.ApiError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            errors = api.pydantic_errors(exc.errors())
            return api.ApiError(422, errors).response()
        if request.url.path == "/ops":
            return ops.bad_query(exc.errors())
        return request.app.state.pages.error(request, "invalid")

    @app.exception_handler(redis.ConnectionError)
    @app.exception_handler(redis.TimeoutError)
    async def redis_unreachable(request: Request, exc: redis.RedisError) -> Response:
        # Redis restarting or failing over: a moment's wait, never a 500 (docs/RUNNING.md).
        logger.warning("%s %s: Redis unreachable (%s); answered 503", request.method, request.url.path, exc)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if _is_api(request) or request.url.path in ("/metrics", "/ops"):
            detail = "the state store is not reachable; try again shortly"
            return api.ApiError(503, detail, headers).response()
        page = request.app.state.pages.error(request, "unavailable")
        page.headers.update(headers)
        return page

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path in ("/openapi.json", "/metrics", "/healthz", "/readyz"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        kind = "not_found" if exc.status_code == 404 else "invalid"
        page = request.app.state.pages.error(request, kind, status=exc.status_code)
        if exc.headers:
            page.headers.update(exc.headers)
        return page

    # Starlette runs the middleware added last first: security headers wrap everything, 413s included.
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes(max_body_bytes_limit))
    app.add_middleware(SecurityHeadersMiddleware)
    if outreach.tracing.enabled:
        app.add_middleware(TracingMiddleware, tracing=outreach.tracing)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=TAGS,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in api.EXTRA_SCHEMAS.items():
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(model_schema.pop("$defs", {}))
            components.setdefault(name, model_schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
