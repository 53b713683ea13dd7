"""Signed JSON over HTTP: one transport class for SMS, WhatsApp and webhook providers.

Each delivery is one POST of a JSON body, signed with HMAC-SHA256 over the exact body
bytes (``X-Outreach-Signature: sha256=<hex>``) and carrying the send id as
``Idempotency-Key``, so a provider can drop the duplicate a retry may produce. Status
codes map to TransientChannelError (429, 5xx, network trouble) or PermanentChannelError.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..clock import Clock
from ..errors import ConfigError, TransientChannelError
from .base import Delivery, ProviderKind
from .client import HttpClient, Response, parse_retry_after
from .parsing import DEFAULT_TIMEOUT, Where, check_url, pick, same_host, timeout_key
from .signed_json import SIGNATURE_HEADER, TIMESTAMP_HEADER, batch_key, batch_payload, payload, sign

__all__ = ["HttpBatchTransport", "HttpConfig", "HttpTransport", "parse_retry_after"]

DEFAULT_HTTP_TIMEOUT = DEFAULT_TIMEOUT

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _reference(name: str, delivery: Delivery, body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return f"{name}:{delivery.send_id}"
    ref = data.get("id") if isinstance(data, dict) else None
    if isinstance(ref, str | int) and not isinstance(ref, bool) and str(ref):
        return str(ref)
    return f"{name}:{delivery.send_id}"


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
        self.client = HttpClient(name, url, timeout, headers, clock=clock, ssl_context=ssl_context)
        if not secret:
            raise ConfigError(f"{name}: secret is empty: every request is signed")
        self.name = name
        #: The provider's name in channels.toml (its references are kept under it).
        self.provider_name = name
        self.timeout = timeout
        self._secret = secret
        self._path = self.client.path()

    def close(self) -> None:
        """Close every thread's connection; used at shutdown."""
        self.client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, path: str, body: bytes, key: str) -> Response:
        """POST a signed body; network trouble is a TransientChannelError."""
        now = self.client.clock.now()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            IDEMPOTENCY_HEADER: key,
            TIMESTAMP_HEADER: str(int(now.timestamp())),
            SIGNATURE_HEADER: sign(self._secret, body),
        }
        return self.client.request("POST", path, body, headers)

    def send(self, delivery: Delivery) -> str:
        """POST one delivery; returns the provider's ``id`` or ``<name>:<send_id>``."""
        response = self._request(self._path, payload(delivery), delivery.send_id)
        if response.ok:
            return _reference(self.name, delivery, response.body)
        raise self.client.refusal(response)


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
        self._where = self.client.where

    def send_many(self, deliveries: Sequence[Delivery]) -> list[str | Exception]:
        """POST the deliveries in one request; per delivery, its reference or its channel error."""
        try:
            response = self._request(self._batch_path, batch_payload(deliveries), batch_key(deliveries))
        except TransientChannelError as exc:
            return [exc] * len(deliveries)
        if not response.ok:
            return [self.client.refusal(response)] * len(deliveries)
        data = response.body
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
                refused = Response(item, response.headers, str(row.get("error", "")).encode())
                out.append(self.client.refusal(refused))
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
    parts = check_url(where, "url", url, url_env)
    secret, _ = pick(where, table, env, "secret", names["secret"])
    if not secret:
        raise where.fail("secret", None, f"is needed to sign requests: set it or {names['secret']}")
    timeout = timeout_key(where, table)
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
