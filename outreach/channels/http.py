"""Signed JSON over HTTP: one transport class for SMS, WhatsApp and webhook providers.

Each delivery is one POST of a JSON body, signed with HMAC-SHA256 over the exact body
bytes (``X-Outreach-Signature: sha256=<hex>``) and carrying the send id as
``Idempotency-Key``, so a provider can drop the duplicate a retry may produce. Status
codes map to TransientChannelError (429, 5xx, network trouble) or PermanentChannelError.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

from ..clock import Clock, SystemClock
from ..errors import ConfigError, PermanentChannelError, TransientChannelError
from .base import Delivery, ProviderKind
from .parsing import Where, number, pick, same_host
from .signed_json import SIGNATURE_HEADER, TIMESTAMP_HEADER, batch_key, batch_payload, payload, sign

DEFAULT_HTTP_TIMEOUT = 10.0

IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "outreach/0.1"

#: 4xx statuses that say "not now" rather than "never": request timeout, too early, too many.
TRANSIENT_4XX = frozenset({408, 425, 429})
#: How much of an error body goes into the exception message.
BODY_EXCERPT = 500


#: Permanent answers that say nothing about the recipient's address.
NOT_ADDRESS = frozenset({401, 402, 403, 405, 407, 411, 413, 414, 415, 426, 431})


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


def _reference(name: str, delivery: Delivery, body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return f"{name}:{delivery.send_id}"
    ref = data.get("id") if isinstance(data, dict) else None
    if isinstance(ref, str | int) and not isinstance(ref, bool) and str(ref):
        return str(ref)
    return f"{name}:{delivery.send_id}"


#: Errors of a kept-alive connection the server already closed: nothing was answered.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class HttpTransport:
    """POSTs each delivery as signed JSON to one URL; one kept-alive connection per thread."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"{name}: url={url!r}: not a valid URL ({exc})") from None
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ConfigError(f"{name}: url={url!r}: must be an http:// or https:// URL with a host")
        if not secret:
            raise ConfigError(f"{name}: secret is empty: every request is signed")
        self.name = name
        self.timeout = timeout
        self._secret = secret
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._where = f"{name} {self._host}:{self._port}"
        self._ssl_context = ssl_context
        self._clock = clock or SystemClock()
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if parts.username is not None:
            # Credentials in the URL become HTTP Basic auth; they are never sent in the path.
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(user_pass.encode("utf-8")).decode("ascii")
            self._headers.setdefault("Authorization", f"Basic {token}")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()

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

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------

    def _post(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except _STALE:
                self._discard(conn)
                # A kept-alive connection closed by the server: once more on a fresh one
                # (the Idempotency-Key makes a repeat harmless).
                if reused and attempt == 1:
                    continue
                raise
            except BaseException:
                # A timeout or half-read response leaves the connection unusable.
                self._discard(conn)
                raise
            if response.will_close:
                self._discard(conn)
            return response.status, response.headers, data
        raise AssertionError("unreachable")

    def _request(self, path: str, body: bytes, key: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        """POST a signed body; network trouble is a TransientChannelError."""
        now = self._clock.now()
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "Accept": "application/json",
            IDEMPOTENCY_HEADER: key,
            TIMESTAMP_HEADER: str(int(now.timestamp())),
            SIGNATURE_HEADER: sign(self._secret, body),
        }
        try:
            return self._post(path, body, headers)
        except TimeoutError:
            raise TransientChannelError(f"{self._where}: no response within {self.timeout}s") from None
        except (OSError, http.client.HTTPException) as exc:
            # Refused, reset, unreachable, TLS trouble, malformed responses.
            raise TransientChannelError(f"{self._where}: {type(exc).__name__}: {exc}") from None

    def _refusal(self, status: int, retry_after: str | None, text: str) -> Exception:
        """The channel error for a status that is not 2xx."""
        message = f"{self._where}: HTTP {status}: {text[:BODY_EXCERPT]}"
        if status in TRANSIENT_4XX or status >= 500:
            return TransientChannelError(
                message, retry_after=parse_retry_after(retry_after, self._clock.now())
            )
        # Other 4xx, and 1xx/3xx (redirects are not followed: configure the final URL).
        # Credentials and redirects are our configuration, not the customer's address.
        return PermanentChannelError(message, address=status not in NOT_ADDRESS and status >= 400)

    def send(self, delivery: Delivery) -> str:
        """POST one delivery; returns the provider's ``id`` or ``<name>:<send_id>``."""
        status, response_headers, data = self._request(self._path, payload(delivery), delivery.send_id)
        if 200 <= status < 300:
            return _reference(self.name, delivery, data)
        excerpt = data[:2048].decode("utf-8", "replace")
        raise self._refusal(status, response_headers.get("Retry-After"), excerpt)


class HttpBatchTransport(HttpTransport):
    """An HTTP provider with a batch endpoint: one signed POST carries many messages.

    The body is ``{"messages": [...]}``, each message as ``send`` would post it
    (its ``send_id`` is its idempotency key); the request's ``Idempotency-Key``
    names the batch. A 2xx answer is ``{"results": [{"send_id": ..., "status":
    <HTTP status for that message>, "id": <reference>}, ...]}``; each message's
    status is read as a single request's would be. A message the answer leaves
    out is retried; a whole request refused (or lost) counts for every message.
    """

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        *,
        batch_url: str,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(name, url, secret, timeout, headers, clock=clock, ssl_context=ssl_context)
        parts = urlsplit(batch_url)
        self._batch_path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def send_many(self, deliveries: Sequence[Delivery]) -> list[str | Exception]:
        """POST the deliveries in one request; per delivery, its reference or its channel error."""
        try:
            status, response_headers, data = self._request(
                self._batch_path, batch_payload(deliveries), batch_key(deliveries)
            )
        except TransientChannelError as exc:
            return [exc] * len(deliveries)
        if not 200 <= status < 300:
            refusal = self._refusal(status, response_headers.get("Retry-After"),
                                    data[:2048].decode("utf-8", "replace"))  # fmt: skip
            return [refusal] * len(deliveries)
        try:
            rows = json.loads(data)["results"]
            answers = {str(row["send_id"]): row for row in rows if isinstance(row, dict)}
        except (ValueError, KeyError, TypeError):
            lost = TransientChannelError(f"{self._where}: a batch answer without results: {data[:200]!r}")
            return [lost] * len(deliveries)
        out: list[str | Exception] = []
        for delivery in deliveries:
            row = answers.get(delivery.send_id)
            if row is None:
                out.append(
                    TransientChannelError(f"{self._where}: the batch answer left {delivery.send_id} out")
                )
                continue
            item = row.get("status", 200)
            item = item if isinstance(item, int) and not isinstance(item, bool) else 500
            if 200 <= item < 300:
                ref = row.get("id")
                ok = isinstance(ref, str | int) and not isinstance(ref, bool) and str(ref)
                out.append(str(ref) if ok else f"{self.name}:{delivery.send_id}")
            else:
                out.append(self._refusal(item, None, str(row.get("error", ""))))
        return out


# -- configuration (config/channels.toml [sms], [whatsapp], [webhook]) ----------------------


@dataclass(frozen=True)
class HttpConfig:
    """Where and how to POST a channel's messages."""

    url: str
    secret: str = field(repr=False)
    timeout: float = DEFAULT_HTTP_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The provider's batch endpoint (same host as ``url``): many messages per request.
    batch_url: str | None = None


def env_names(channel: str) -> dict[str, str]:
    """The environment variables that override a channel's keys (key -> variable)."""
    upper = channel.upper()
    return {"url": f"OUTREACH_{upper}_URL", "secret": f"OUTREACH_{upper}_SECRET"}


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> HttpConfig | None:
    """The HTTP settings of a channel's table, or None without a URL (the channel stays on the outbox)."""
    channel = where.channel
    names = env_names(channel)
    url, url_env = pick(where, table, env, "url", names["url"])
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise where.fail("url", url, f"not a valid URL ({exc})", url_env) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise where.fail("url", url, "must be an http:// or https:// URL with a host", url_env)
    secret, _ = pick(where, table, env, "secret", names["secret"])
    if not secret:
        raise where.fail("secret", None, f"is needed to sign requests: set it or {names['secret']}")
    timeout = float(number(where, "timeout", table.get("timeout", DEFAULT_HTTP_TIMEOUT)))
    headers = table.get("headers", {})
    if not isinstance(headers, dict):
        raise where.fail("headers", headers, f"must be a table [{channel}.headers] of names to strings")
    for name, value in headers.items():
        if not isinstance(value, str):
            raise where.fail(f"headers.{name}", value, "must be a string")
        if any(ord(c) < 32 or ord(c) == 127 for c in value + name) or not name.strip():
            raise where.fail(f"headers.{name}", value, "must be one line without control characters")
    batch_url = table.get("batch_url")
    if batch_url is not None and not (isinstance(batch_url, str) and same_host(batch_url, parts)):
        raise where.fail("batch_url", batch_url, f"must be a URL on the same host as url ({url})")
    return HttpConfig(url, secret, timeout, headers, batch_url)


def build(channel: str, config: HttpConfig) -> HttpTransport:
    if config.batch_url:
        return HttpBatchTransport(
            channel, config.url, config.secret, config.timeout, config.headers, batch_url=config.batch_url
        )
    return HttpTransport(channel, config.url, config.secret, config.timeout, config.headers)


KIND: ProviderKind[HttpConfig] = ProviderKind(
    name="http",
    description="signed JSON over HTTP(S), one message or a batch per request",
    keys=frozenset({"url", "batch_url", "secret", "timeout", "headers"}),
    env=env_names,
    parse=parse,
    build=build,
)
