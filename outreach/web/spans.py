"""A server span per request when tracing is on (``outreach.tracing``), named by its route.

The span is named ``POST /v1/events`` or ``GET /u/{token}``: the path with each path
parameter put back as its name, never the path itself, which may hold a link token or
a customer id. A caller's W3C ``traceparent`` is continued. (FastAPI's own request
spans are switched off in ``create_app``: they record the whole path.)
"""

from __future__ import annotations

from urllib.parse import unquote

from ..tracing import Tracing


def template(scope) -> str:
    """The request's path with every path parameter's segment replaced by ``{name}``."""
    values = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    if not values and "route" not in scope:
        return "(no route)"  # a 404: the path could be anything a client typed
    segments = scope.get("path", "").split("/")
    return "/".join(f"{{{values[unquote(s)]}}}" if unquote(s) in values else s for s in segments)


class TracingMiddleware:
    """Pure ASGI middleware: one SERVER span around each HTTP request."""

    def __init__(self, app, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name in (b"traceparent", b"tracestate")
        }
        method = scope["method"]
        status = 0

        async def recording(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracing.span(method, carrier or None, "SERVER", **{"http.request.method": method}) as span:
            try:
                await self.app(scope, receive, recording)
            finally:
                route = template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
