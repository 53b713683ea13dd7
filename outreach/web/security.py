"""What protects the web process: API tokens, the body-size limit, response headers, form nonces."""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import redis

from ..links import InvalidToken, make_token, read_token
from ..store.keys import Keys

#: Default largest request body, in bytes (OUTREACH_MAX_BODY_BYTES overrides it).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: How long a comment form's one-time nonce stays valid.
NONCE_LIFETIME = timedelta(days=2)
#: Purpose of the signed nonce carried by a survey comment form.
NONCE_PURPOSE = "comment"

#: Headers every response gets unless the route set its own.
BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    # Links carry tokens in their paths: never leak them to another site.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)
#: Content-Security-Policy of every HTML page: inline styles only, no scripts, nothing external.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def parse_tokens(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """API tokens from ``OUTREACH_API_TOKENS`` (comma-separated) or a list; blanks are dropped."""
    if raw is None:
        raw = os.environ.get("OUTREACH_API_TOKENS", "")
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(t.strip() for t in items if t and t.strip())


def max_body_bytes(value: int | None = None) -> int:
    """The body limit: the argument, else ``OUTREACH_MAX_BODY_BYTES``, else 1 MiB."""
    if value is not None:
        return int(value)
    raw = os.environ.get("OUTREACH_MAX_BODY_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_BODY_BYTES
    try:
        limit = int(raw)
    except ValueError:
        raise ValueError(f"environment OUTREACH_MAX_BODY_BYTES={raw!r}: not a whole number") from None
    if limit < 1:
        raise ValueError(f"environment OUTREACH_MAX_BODY_BYTES={raw!r}: must be >= 1")
    return limit


def token_matches(candidate: str | None, tokens: Iterable[str]) -> bool:
    """True when ``candidate`` is one of ``tokens``; compares against every token in constant time."""
    if not candidate:
        return False
    given = candidate.encode("utf-8", "replace")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(given, token.encode("utf-8", "replace"))
    return found


# -- one-time form nonces ------------------------------------------------------------------


class NonceError(Exception):
    """A comment form's nonce is forged, for another send, expired or already used."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        #: 'invalid', 'expired' or 'replayed'.
        self.problem = problem


def issue_nonce(secret: str, send_id: str, now: datetime) -> str:
    """A signed one-time value for one send's comment form."""
    return make_token(
        secret, NONCE_PURPOSE, {"s": send_id, "n": secrets.token_urlsafe(16)}, now + NONCE_LIFETIME
    )


def consume_nonce(
    client: redis.Redis, keys: Keys, secret: str | Sequence[str], nonce: str, send_id: str, now: datetime
) -> None:
    """Accept a nonce once: it must be signed for this send and not used before."""
    try:
        fields = read_token(secret, NONCE_PURPOSE, nonce, now)
    except InvalidToken as exc:
        raise NonceError("expired" if exc.problem == "expired" else "invalid") from None
    if fields.get("s") != send_id or not isinstance(fields.get("n"), str):
        raise NonceError("invalid")
    # The key outlives the nonce's own expiry, so a used nonce is refused for as long as it could work.
    ttl = int((NONCE_LIFETIME + timedelta(days=1)).total_seconds())
    if not client.set(keys.nonce(fields["n"]), send_id, nx=True, ex=ttl):
        raise NonceError("replayed")


# -- ASGI middleware -----------------------------------------------------------------------


async def _plain(send, status: int, message: str, as_json: bool) -> None:
    if as_json:
        body = json.dumps({"detail": message}).encode()
        kind = b"application/json"
    else:
        body = message.encode()
        kind = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Answers 413 when a request body is larger than the limit, before anything parses it.

    A declared Content-Length over the limit is refused at once. Otherwise the body is
    read here, counting the bytes actually received (chunked uploads and a lying
    Content-Length included), and handed to the application only when it fits.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        as_json = scope["path"].startswith("/v1/")
        too_large = f"the request body is larger than {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _plain(send, 400, "Content-Length is not a number", as_json)
                    return
                if declared > self.max_bytes:
                    await _plain(send, 413, too_large, as_json)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _plain(send, 413, too_large, as_json)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeadersMiddleware:
    """Adds nosniff, no-referrer, no-store, DENY framing and (for HTML) a strict CSP."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in BASE_HEADERS:
                    if name not in present:
                        headers.append((name, value))
                kind = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if kind.startswith(b"text/html") and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


#: The token in a customer page's path (``/u/<token>``, ``/s/<token>/comment``, ``/c/<token>``).
_PAGE_TOKEN = re.compile(r"^(/[uspco]/)[^/?\s]+")


class RedactPageTokens(logging.Filter):
    """Keeps signed link tokens out of the access log: ``GET /u/eyJj…`` is logged as ``GET /u/…``.

    A token in a log is a working unsubscribe or survey link for anyone who reads the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access logs (client, method, path, http version, status).
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], _PAGE_TOKEN.sub(r"\1…", args[2]), *args[3:])
        return True


def redact_access_log(logger: logging.Logger) -> None:
    """Add the token filter to an access logger once."""
    if not any(isinstance(f, RedactPageTokens) for f in logger.filters):
        logger.addFilter(RedactPageTokens())
