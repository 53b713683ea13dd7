"""Operations: health, readiness, Prometheus metrics and the operator page ``/ops``."""

from __future__ import annotations

import hmac
import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import redis
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from ..errors import InputError
from ..report import parse_bound
from .metrics import exposition
from .security import token_matches

#: The user name of the operator page (the password is any API token).
OPS_USER = "ops"
#: The operator page's title, passed to ``render_html``.
OPS_TITLE = "Outreach — operations"
#: The operator page draws with inline CSS and SVG only: no scripts, nothing external.
OPS_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(tags=["Operations"])
basic = HTTPBasic(
    auto_error=False, realm="outreach operations", description="User `ops`, password: an API token."
)


@router.get("/healthz", summary="Liveness", description="The process is up; touches nothing else.")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    description="Pings Redis: 200 when it answers, 503 when it does not.",
    responses={503: {"description": "Redis is not reachable."}},
)
def readyz(request: Request) -> JSONResponse:
    try:
        request.app.state.outreach.client.ping()
    except (redis.RedisError, OSError) as exc:
        return JSONResponse({"status": "unavailable", "redis": f"{type(exc).__name__}: {exc}"}, 503)
    return JSONResponse({"status": "ok", "redis": "ok"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Prometheus text format, read from Redis at scrape time (sends by state and reason, "
        "schedule depth, pump lag and claims, delivery latency histogram, survey answers)."
    ),
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    body, content_type = await run_in_threadpool(exposition, request.app.state.metrics)
    return Response(body, media_type=content_type)


def _bound(name: str, text: str | None, *, end: bool = False) -> datetime | None:
    """The report's own reading of a bound; an empty query parameter means none."""
    if text is None or not text.strip():
        return None
    return parse_bound(name, text.strip(), end=end)


def _problem_page(status: int, title: str, text: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    page = (
        '<!DOCTYPE html><html lang="en" dir="ltr"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=headers)


def bad_query(errors: Sequence[Mapping[str, Any]]) -> HTMLResponse:
    """A query the operator page cannot take (``by=zone``): 400, naming the parameter and what it takes."""
    problems = []
    for error in errors:
        name = ".".join(str(part) for part in error.get("loc", ()) if part != "query")
        problems.append(f"{name}={error.get('input')!r}: {error.get('msg', 'is not valid')}")
    return _problem_page(400, "Bad request", "; ".join(problems))


@router.get(
    "/ops",
    response_class=HTMLResponse,
    summary="Operator page",
    description=(
        "Survey scores, response rates, delivery outcomes and schedule depth for a period, "
        "with inline SVG charts. HTTP Basic: user `ops`, password one of the API tokens."
    ),
    responses={401: {"description": "Missing or wrong credentials."}, 400: {"description": "Bad period."}},
)
def ops_page(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
    since: Annotated[str | None, Query(description="Start: ISO 8601 with offset, or a date.")] = None,
    until: Annotated[
        str | None, Query(description="End, included: ISO 8601 or a date. Default: now.")
    ] = None,
    by: Annotated[Literal["locale", "journey", "channel", "country"] | None, Query()] = None,
) -> HTMLResponse:
    if not (
        credentials is not None
        and hmac.compare_digest(credentials.username.encode(), OPS_USER.encode())
        and token_matches(credentials.password, request.app.state.api_tokens)
    ):
        return _problem_page(
            401, "Sign-in required", "Sign in as 'ops' with an API token as the password.",
            headers={"WWW-Authenticate": 'Basic realm="outreach operations", charset="UTF-8"'},
        )  # fmt: skip
    try:
        from ..report import build_report, render_html
    except ImportError as exc:
        return _problem_page(503, "Report not available", f"outreach.report cannot be imported: {exc}")
    outreach = request.app.state.outreach
    try:
        start, end = _bound("since", since), _bound("until", until, end=True)
        report = build_report(outreach, since=start, until=end, by=by)
    except InputError as exc:
        return _problem_page(400, "Bad period", str(exc))
    page = render_html(report, title=OPS_TITLE)
    return HTMLResponse(page, headers={"content-security-policy": OPS_CSP})
