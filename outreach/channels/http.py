"""Signed JSON over HTTP: one transport class for SMS, WhatsApp and webhook providers.

Each delivery is one POST of a JSON body, signed with HMAC-SHA256 over the exact body
bytes (``X-Outreach-Signature: sha256=<hex>``) and carrying the send id as
``Idempotency-Key``, so a provider can drop the duplicate a retry may produce. Status
codes map to TransientChannelError (429, 5xx, network trouble) or PermanentChannelError.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import math
import ssl
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

from ..clock import Clock, SystemClock
from ..errors import ConfigError, PermanentChannelError, TransientChannelError
from .base import Delivery

SIGNATURE_HEADER = "X-Outreach-Signature"
TIMESTAMP_HEADER = "X-Outreach-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "outreach/0.1"

#: 4xx statuses that say "not now" rather than "never": request timeout, too early, too many.
TRANSIENT_4XX = frozenset({408, 425, 429})
#: How much of an error body goes into the exception message.
BODY_EXCERPT = 500


#: Permanent answers that say nothing about the recipient's address.
NOT_ADDRESS = frozenset({401, 402, 403, 405, 407, 411, 413, 414, 415, 426, 431})


def sign(secret: str, body: bytes) -> str:
    """The signature header value for a body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: True when ``header`` is the signature of ``body`` (constant-time)."""
    if not header or not secret:
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), header.strip().encode("utf-8", "replace"))


def payload(delivery: Delivery) -> bytes:
    """The JSON body sent for a delivery (UTF-8, compact, keys in a fixed order)."""
    return json.dumps(_record(delivery), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batch_payload(deliveries: Sequence[Delivery]) -> bytes:
    """The JSON body of a batch request: ``{"messages": [<payload of each delivery>, ...]}``."""
    body = {"messages": [_record(d) for d in deliveries]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batch_key(deliveries: Sequence[Delivery]) -> str:
    """A batch's Idempotency-Key: the same deliveries (send ids and attempts) give the same key."""
    ids = "\n".join(f"{d.send_id}#{d.attempt}" for d in deliveries)
    return "batch-" + hashlib.sha256(ids.encode("utf-8")).hexdigest()[:32]


def _record(delivery: Delivery) -> dict:
    return {
        "send_id": delivery.send_id,
        "attempt": delivery.attempt,
        "channel": delivery.channel,
        "to": delivery.address,
        "locale": delivery.locale,
        "subject": delivery.subject,
        "text": delivery.text,
        "html": delivery.html,
        "customer_id": delivery.customer_id,
        "journey": delivery.journey,
        "step": delivery.step,
        "category": delivery.category,
    }


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

    def __init__(self, *args, batch_url: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
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
