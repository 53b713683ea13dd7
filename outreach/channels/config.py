"""Which transport serves each channel: ``config/channels.toml`` plus ``OUTREACH_*`` overrides.

A channel goes to the outbox until it is given a URL (in the file or the environment):
an ``smtp://`` / ``smtps://`` URL for email, an ``http(s)://`` endpoint and a signing
secret for sms, whatsapp and webhook. Each channel may also name a send ``rate``
(messages per second) and ``burst`` for the rate limiter. Every error names the file
(or environment variable), the key and the offending value, with passwords redacted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from ..configfile import read_toml
from ..customers.profile import CHANNELS
from ..errors import ConfigError
from .base import Transport
from .http import HttpBatchTransport, HttpTransport
from .outbox import Outbox
from .smtp import SmtpConfig, SmtpTransport

#: File read from the config folder; a missing file leaves every channel on the outbox.
CHANNELS_FILE = "channels.toml"
DEFAULT_HTTP_TIMEOUT = 10.0
DEFAULT_SMTP_TIMEOUT = 30.0

_EMAIL_KEYS = {"url", "from", "domain", "rate", "burst"}
_HTTP_KEYS = {"url", "batch_url", "secret", "timeout", "headers", "rate", "burst"}
_SMTP_QUERY = {"starttls", "timeout", "cafile"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_names(channel: str) -> dict[str, str]:
    """The environment variables that override one channel's keys (key -> variable)."""
    if channel == "email":
        return {"url": "OUTREACH_SMTP_URL", "from": "OUTREACH_SMTP_FROM"}
    upper = channel.upper()
    return {"url": f"OUTREACH_{upper}_URL", "secret": f"OUTREACH_{upper}_SECRET"}


@dataclass(frozen=True)
class ChannelConfig:
    """One channel: its transport kind ('outbox', 'smtp' or 'http') and its send rate."""

    name: str
    kind: str = "outbox"
    #: Messages per second across all workers; None means no limit.
    rate: float | None = None
    #: Messages that may go at once after a quiet spell (the bucket size).
    burst: int | None = None
    smtp: SmtpConfig | None = None
    url: str | None = None
    secret: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_HTTP_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict)
    #: An HTTP provider's batch endpoint (same host as ``url``): many messages per request.
    batch_url: str | None = None


@dataclass(frozen=True)
class ChannelsConfig:
    """Every channel's configuration; ``source`` is the file read (None when there was none)."""

    source: Path | None
    channels: Mapping[str, ChannelConfig]

    def __getitem__(self, name: str) -> ChannelConfig:
        return self.channels[name]


class _Where:
    """Names the place a value came from, for error messages."""

    def __init__(self, path: Path, channel: str) -> None:
        self.path = path
        self.channel = channel

    def fail(self, key: str, value: object, problem: str, env_var: str | None = None) -> ConfigError:
        shown = _redact(value) if isinstance(value, str) else value
        if (key == "secret" and value) or (key.startswith("headers.") and isinstance(value, str)):
            shown = "***"  # secrets and header values (tokens) never go into messages
        if env_var is not None:
            return ConfigError(f"environment {env_var}={shown!r}: {problem}")
        return ConfigError(f"{self.path}: [{self.channel}] {key}={shown!r}: {problem}")


def _redact(value: str) -> str:
    """A URL with its password replaced, so error messages and logs never show it."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password:
        return value
    return value.replace(f":{password}@", ":***@", 1)


def _number(where: _Where, key: str, value: object, *, integer: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if integer:
        ok = ok and isinstance(value, int)
    if not ok or value <= 0:  # type: ignore[operator]
        kind = "an integer >= 1" if integer else "a number > 0"
        raise where.fail(key, value, f"must be {kind}")
    return value  # type: ignore[return-value]


def _rate(where: _Where, table: Mapping[str, object]) -> tuple[float | None, int | None]:
    rate = table.get("rate")
    burst = table.get("burst")
    if rate is None:
        if burst is not None:
            raise where.fail("burst", burst, "needs a rate (messages per second) as well")
        return None, None
    rate = float(_number(where, "rate", rate))
    if burst is None:
        # One second's worth of messages may go at once by default.
        return rate, max(1, math.ceil(rate))
    return rate, int(_number(where, "burst", burst, integer=True))


def _parse_smtp_url(url: str, where: _Where, key: str = "url", env_var: str | None = None) -> dict:
    """Host, port, security, credentials and options from ``smtp(s)://user:pass@host:port?...``."""

    def fail(problem: str) -> ConfigError:
        return where.fail(key, url, problem, env_var)

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise fail(f"not a valid URL ({exc})") from None
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise fail("must be smtp://host[:port] or smtps://host[:port]")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - _SMTP_QUERY)
    if unknown:
        raise fail(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(_SMTP_QUERY))})")
    starttls = query.get("starttls", "false").lower()
    if starttls not in _TRUE | _FALSE:
        raise fail(f"starttls={query['starttls']!r} must be true or false")
    if parts.scheme == "smtps" and starttls in _TRUE:
        raise fail("smtps:// is already TLS; starttls=true applies to smtp:// only")
    timeout = DEFAULT_SMTP_TIMEOUT
    if "timeout" in query:
        try:
            timeout = float(query["timeout"])
        except ValueError:
            timeout = -1.0
        if not (math.isfinite(timeout) and timeout > 0):
            raise fail(f"timeout={query['timeout']!r} must be a number of seconds > 0")
    if parts.scheme == "smtps":
        security, default_port = "tls", 465
    elif starttls in _TRUE:
        security, default_port = "starttls", 587
    else:
        security, default_port = "plain", 25
    return {
        "host": parts.hostname,
        "port": port or default_port,
        "security": security,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "timeout": timeout,
        "ca_file": query.get("cafile") or None,
    }


def _sender(value: object, where: _Where, env_var: str | None) -> tuple[str, str]:
    if not isinstance(value, str):
        raise where.fail("from", value, "must be a string like 'Outreach <hello@example.com>'", env_var)
    name, address = parseaddr(value)
    if not address or "@" not in address or any(c.isspace() or ord(c) < 32 for c in address):
        raise where.fail("from", value, "must be an address like 'Outreach <hello@example.com>'", env_var)
    return name, address


def _email(where: _Where, table: Mapping[str, object], env: Mapping[str, str]) -> ChannelConfig:
    rate, burst = _rate(where, table)
    names = env_names("email")
    url, url_env = _pick(where, table, env, "url", names["url"])
    if url is None:
        return ChannelConfig("email", "outbox", rate, burst)
    sender, sender_env = _pick(where, table, env, "from", names["from"])
    if sender is None:
        raise where.fail("from", None, f"is needed to send email: set it or {names['from']}")
    name, address = _sender(sender, where, sender_env)
    domain = table.get("domain", "")
    if not isinstance(domain, str):
        raise where.fail("domain", domain, "must be a string (the right part of Message-IDs)")
    smtp = SmtpConfig(
        sender_address=address,
        sender_name=name,
        domain=domain,
        **_parse_smtp_url(url, where, "url", url_env),
    )
    return ChannelConfig("email", "smtp", rate, burst, smtp=smtp)


def _http(where: _Where, table: Mapping[str, object], env: Mapping[str, str]) -> ChannelConfig:
    channel = where.channel
    rate, burst = _rate(where, table)
    names = env_names(channel)
    url, url_env = _pick(where, table, env, "url", names["url"])
    if url is None:
        return ChannelConfig(channel, "outbox", rate, burst)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise where.fail("url", url, f"not a valid URL ({exc})", url_env) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise where.fail("url", url, "must be an http:// or https:// URL with a host", url_env)
    secret, _ = _pick(where, table, env, "secret", names["secret"])
    if not secret:
        raise where.fail("secret", None, f"is needed to sign requests: set it or {names['secret']}")
    timeout = float(_number(where, "timeout", table.get("timeout", DEFAULT_HTTP_TIMEOUT)))
    headers = table.get("headers", {})
    if not isinstance(headers, dict):
        raise where.fail("headers", headers, f"must be a table [{channel}.headers] of names to strings")
    for name, value in headers.items():
        if not isinstance(value, str):
            raise where.fail(f"headers.{name}", value, "must be a string")
        if any(ord(c) < 32 or ord(c) == 127 for c in value + name) or not name.strip():
            raise where.fail(f"headers.{name}", value, "must be one line without control characters")
    batch_url = table.get("batch_url")
    if batch_url is not None:
        try:
            batch = urlsplit(batch_url) if isinstance(batch_url, str) else None
            same = batch is not None and (batch.scheme, batch.hostname, batch.port) == (
                parts.scheme,
                parts.hostname,
                parts.port,
            )
        except ValueError:
            same = False
        if not same:
            raise where.fail("batch_url", batch_url, f"must be a URL on the same host as url ({url})")
    return ChannelConfig(
        channel, "http", rate, burst, url=url, secret=secret, timeout=timeout, headers=headers,
        batch_url=batch_url,
    )  # fmt: skip


def _pick(
    where: _Where, table: Mapping[str, object], env: Mapping[str, str], key: str, env_var: str
) -> tuple[str | None, str | None]:
    """A string setting from the environment (when set and not empty) or the file."""
    if env.get(env_var):
        return env[env_var], env_var
    value = table.get(key)
    if value is None:
        return None, None
    if not isinstance(value, str) or not value.strip():
        raise where.fail(key, value, "must be a non-empty string")
    return value, None


def load_channels(config_dir: Path, environ: Mapping[str, str] | None = None) -> ChannelsConfig:
    """Parse and validate ``<config_dir>/channels.toml`` with the environment's overrides."""
    env = os.environ if environ is None else environ
    path = Path(config_dir) / CHANNELS_FILE
    data: dict[str, object] = {}
    source: Path | None = None
    if path.exists():
        source = path
        data = read_toml(path)
    unknown = sorted(set(data) - set(CHANNELS))
    if unknown:
        raise ConfigError(f"{path}: [{unknown[0]}]: unknown channel (known: {', '.join(CHANNELS)})")
    channels: dict[str, ChannelConfig] = {}
    for channel in CHANNELS:
        where = _Where(path, channel)
        table = data.get(channel, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {channel}={table!r}: must be a table [{channel}]")
        allowed = _EMAIL_KEYS if channel == "email" else _HTTP_KEYS
        extra = sorted(set(table) - allowed)
        if extra:
            raise where.fail(extra[0], table[extra[0]], f"unknown key (known: {', '.join(sorted(allowed))})")
        channels[channel] = _email(where, table, env) if channel == "email" else _http(where, table, env)
    return ChannelsConfig(source, channels)


def make_transport(channel: ChannelConfig, outbox: Outbox) -> Transport:
    """The transport a channel's configuration asks for (the shared outbox when unconfigured)."""
    if channel.kind == "smtp" and channel.smtp is not None:
        return SmtpTransport(channel.smtp)
    if channel.kind == "http" and channel.url and channel.secret:
        if channel.batch_url:
            return HttpBatchTransport(
                channel.name, channel.url, channel.secret, channel.timeout, channel.headers,
                batch_url=channel.batch_url,
            )  # fmt: skip
        return HttpTransport(channel.name, channel.url, channel.secret, channel.timeout, channel.headers)
    return outbox


def build_transports(
    config_dir: Path, outbox_dir: Path, environ: Mapping[str, str] | None = None
) -> dict[str, Transport]:
    """A transport for each channel: the configured one, or the outbox for the rest."""
    config = load_channels(config_dir, environ)
    outbox = Outbox(outbox_dir)
    return {name: make_transport(channel, outbox) for name, channel in config.channels.items()}
