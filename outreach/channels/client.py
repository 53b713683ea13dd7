"""The HTTP client every HTTP provider shares: one kept-alive connection per thread to one base
URL, network trouble as TransientChannelError, and the reading of ``Retry-After``.

The standard library's ``http.client`` is enough: each provider's API is a handful of JSON or
form requests, and no SDK is needed to speak them (docs/CHANNELS.md).
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from ..clock import Clock, SystemClock
from ..errors import ConfigError, PermanentChannelError, TransientChannelError

USER_AGENT = "outreach/0.1"
#: 4xx statuses that say "not now" rather than "never": request timeout, too early, too many.
TRANSIENT_4XX = frozenset({408, 425, 429})
#: Permanent answers that say nothing about the recipient's address (our credentials, our request).
NOT_ADDRESS = frozenset({401, 402, 403, 405, 407, 411, 413, 414, 415, 426, 431})
#: How much of an error body goes into the exception message.
BODY_EXCERPT = 500

#: Errors of a kept-alive connection the server already closed: nothing was answered.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class _NotSent(Exception):
    """The request never reached the provider (refused, unreachable, TLS): any provider may take it."""


class _Sent(Exception):
    """The request went out and its answer was lost: the provider may have taken the message."""


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date); None if absent or bad."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body[:2048].decode("utf-8", "replace")


class HttpClient:
    """Requests to one base URL; one kept-alive connection per thread."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        try:
            parts = urlsplit(base_url)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"{name}: url={base_url!r}: not a valid URL ({exc})") from None
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"{name}: url={base_url!r}: must be an http:// or https:// URL with a host")
        self.name = name
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port or (443 if self._https else 80)
        #: The base URL's path, exactly as given, and its query, for ``path()``.
        self._base_path = parts.path
        self._query = parts.query
        self.where = f"{name} {self._host}:{self._port}"
        self._ssl_context = ssl_context
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if parts.username is not None:
            # Credentials in the URL become HTTP Basic auth; they are never sent in the path.
            self._headers.setdefault("Authorization", basic_auth(unquote(parts.username),
                                                                 unquote(parts.password or "")))  # fmt: skip
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()

    def path(self, suffix: str = "") -> str:
        """The request path of ``suffix`` under the base URL (with the base URL's query)."""
        base = self._base_path.rstrip("/") if suffix.startswith("/") else self._base_path
        path = (base + suffix) or "/"
        return path + (f"?{self._query}" if self._query else "")

    # -- connections ----------------------------------------------------------------------

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection and whether its socket was used before (it may be stale)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=self._ssl_context
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._open.add(conn)
        return conn, conn.sock is not None

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._open.discard(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        conn.close()

    def close(self) -> None:
        """Close every thread's connection; used at shutdown."""
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # -- requests -------------------------------------------------------------------------

    def _exchange(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Response:
        for attempt in (1, 2):
            conn, reused = self._connection()
            sent = False
            try:
                conn.request(method, path, body=body, headers=headers)
                sent = True
                response = conn.getresponse()
                data = response.read()
            except _STALE as exc:
                self._discard(conn)
                # A kept-alive connection the server had closed before it read anything (it answers
                # nothing and closes at once): once more on a fresh one.
                if reused and attempt == 1:
                    continue
                raise (_Sent if sent else _NotSent)(exc) from None
            except BaseException as exc:
                # A timeout or half-read response leaves the connection unusable.
                self._discard(conn)
                if isinstance(exc, OSError | http.client.HTTPException):
                    raise (_Sent if sent else _NotSent)(exc) from None
                raise
            if response.will_close:
                self._discard(conn)
            return Response(response.status, response.headers, data)
        raise AssertionError("unreachable")

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """One request; network trouble (refused, reset, timeout, TLS) is a TransientChannelError."""
        try:
            return self._exchange(method, path, body, {**self._headers, **(headers or {})})
        except (_Sent, _NotSent) as failure:
            cause = failure.args[0] if failure.args else None
            if isinstance(cause, TimeoutError):
                text = f"{self.where}: no response within {self.timeout}s"
            else:
                text = (
                    f"{self.where}: {type(cause).__name__ if cause else 'connection closed'}: {cause or ''}"
                )
            # Sent and then lost: the provider may have taken it, so no other provider is asked now.
            raise TransientChannelError(text, elsewhere=isinstance(failure, _NotSent)) from None

    def post_json(self, path: str, data: object, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        sent = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        return self.request("POST", path, body, sent)

    def post_form(
        self, path: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> Response:
        body = urlencode(form).encode("ascii")
        sent = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        return self.request("POST", path, body, {**sent, **(headers or {})})

    # -- errors ---------------------------------------------------------------------------

    def retry_after(self, response: Response) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"), self.clock.now())

    def refusal(self, response: Response, text: str | None = None) -> Exception:
        """The channel error for an answer that is not 2xx, read from its HTTP status alone: 408,
        425, 429 and 5xx are transient (with Retry-After), the rest permanent; a permanent answer
        names the address unless it is about our credentials or request (``NOT_ADDRESS``)."""
        status = response.status
        message = f"{self.where}: HTTP {status}: {(text or response.text)[:BODY_EXCERPT]}"
        if status in TRANSIENT_4XX or status >= 500:
            return TransientChannelError(message, retry_after=self.retry_after(response))
        # Other 4xx, and 1xx/3xx (redirects are not followed: configure the final URL).
        return PermanentChannelError(message, address=status not in NOT_ADDRESS and status >= 400)

    def transient(self, response: Response, text: str) -> TransientChannelError:
        return TransientChannelError(f"{self.where}: {text}", retry_after=self.retry_after(response))

    def permanent(self, text: str, *, address: bool) -> PermanentChannelError:
        return PermanentChannelError(f"{self.where}: {text}", address=address)

    def unreadable(self, text: str) -> PermanentChannelError:
        """A 2xx answer that does not name the message: it may well exist, so it goes neither to
        another provider nor back to this one (either could deliver it twice)."""
        return PermanentChannelError(f"{self.where}: accepted, but {text}", address=False, elsewhere=False)
