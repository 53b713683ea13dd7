"""Reading a channel's table of ``config/channels.toml`` (and its environment overrides): helpers
every provider kind shares; every error names the file or variable, the key and the value,
with secrets and passwords redacted."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from ..errors import ConfigError

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


class Where:
    """Names the place a value came from, for error messages."""

    def __init__(self, path: Path, channel: str, provider: str | None = None) -> None:
        self.path = path
        self.channel = channel
        #: The provider's own table ``[channel.provider]``, when the value is one of its keys.
        self.provider = provider

    @property
    def table(self) -> str:
        return f"{self.channel}.{self.provider}" if self.provider else self.channel

    def env(self, key: str) -> str:
        """The variable that overrides a provider table's key (``OUTREACH_SMS_TWILIO_AUTH_TOKEN``)."""
        return f"OUTREACH_{self.table.replace('.', '_')}_{key}".upper()

    def fail(self, key: str, value: object, problem: str, env_var: str | None = None) -> ConfigError:
        shown = redact(value) if isinstance(value, str) else value
        if (is_secret(key) and value) or (key.startswith("headers.") and isinstance(value, str)):
            shown = "***"  # secrets and header values (tokens) never go into messages
        if env_var is not None:
            return ConfigError(f"environment {env_var}={shown!r}: {problem}")
        return ConfigError(f"{self.path}: [{self.table}] {key}={shown!r}: {problem}")


#: Parts of a key's name that say its value is a credential (never shown in an error).
SECRET_WORDS = ("secret", "token", "password", "api_key", "private")


def is_secret(key: str) -> bool:
    return any(word in key for word in SECRET_WORDS)


def redact(value: str) -> str:
    """A URL with its password replaced, so error messages and logs never show it."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password:
        return value
    return value.replace(f":{password}@", ":***@", 1)


def number(where: Where, key: str, value: object, *, integer: bool = False) -> float:
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (isinstance(value, int) or not integer)
        and value > 0
    ):
        return value
    kind = "an integer >= 1" if integer else "a number > 0"
    raise where.fail(key, value, f"must be {kind}")


def rate_of(where: Where, table: Mapping[str, object]) -> tuple[float | None, int | None]:
    rate = table.get("rate")
    burst = table.get("burst")
    if rate is None:
        if burst is not None:
            raise where.fail("burst", burst, "needs a rate (messages per second) as well")
        return None, None
    rate = float(number(where, "rate", rate))
    if burst is None:
        # One second's worth of messages may go at once by default.
        return rate, max(1, math.ceil(rate))
    return rate, int(number(where, "burst", burst, integer=True))


def same_host(url: str, parts: SplitResult) -> bool:
    """Whether ``url`` has the scheme, host and port of ``parts`` (False when it is no URL)."""
    try:
        other = urlsplit(url)
        return (other.scheme, other.hostname, other.port) == (parts.scheme, parts.hostname, parts.port)
    except ValueError:
        return False


def pick(
    where: Where, table: Mapping[str, object], env: Mapping[str, str], key: str, env_var: str
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


# -- the keys every provider table shares -----------------------------------------------------

#: Seconds an HTTP provider waits for an answer unless its table says ``timeout``.
DEFAULT_TIMEOUT = 10.0
#: Controls and Unicode line separators: never in a setting's value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text_key(where: Where, table: Mapping[str, object], key: str, *, required: bool = False) -> str | None:
    """A non-empty one-line string setting, surrounding spaces dropped (None when absent and not
    required; a required one names its environment variable)."""
    value = table.get(key)
    if value is None:
        if required:
            raise where.fail(key, None, f"is needed: set it or {where.env(key)}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise where.fail(key, value, "must be a non-empty string")
    if _CONTROL.search(value.strip()):
        raise where.fail(key, value, "must be one line without control characters")
    return value.strip()


def url_key(where: Where, table: Mapping[str, object], key: str, default: str | None = None) -> str | None:
    """An http(s) URL with a host (``default`` when absent)."""
    url = text_key(where, table, key) or default
    if url is None:
        return None
    check_url(where, key, url)
    return url


def check_url(where: Where, key: str, url: str, env_var: str | None = None) -> SplitResult:
    """The parts of an http(s) URL with a host; the ConfigError names the key (or variable) otherwise."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise where.fail(key, url, f"not a valid URL ({exc})", env_var) from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise where.fail(key, url, "must be an http:// or https:// URL with a host", env_var)
    return parts


def base_url_key(where: Where, table: Mapping[str, object], default: str) -> str:
    """The ``base_url`` key: the provider's API root (its real one by default; a loopback server in
    tests), without credentials (they have keys of their own) or a query; no trailing slash."""
    url = url_key(where, table, "base_url", default)
    assert url is not None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise where.fail("base_url", url, "must not carry credentials (they have keys of their own)")
    if parts.query or parts.fragment:
        raise where.fail("base_url", url, "must have no query")
    return url.rstrip("/")


def timeout_key(where: Where, table: Mapping[str, object]) -> float:
    """Seconds to wait for an answer (a number, or its text from the environment)."""
    value = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: refused below, naming the key
            value = float(value)
    return float(number(where, "timeout", value))
