"""Email over SMTP: the ``smtp`` provider kind.

``SmtpTransport`` hands a message (``email_message.build_message``) over with
``smtplib``, one connection per worker thread, and maps every failure to
TransientChannelError or PermanentChannelError. ``parse`` reads the ``[email]``
table of ``config/channels.toml``: an ``smtp://`` / ``smtps://`` URL and a sender.
"""

from __future__ import annotations

import math
import smtplib
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Literal, TypedDict
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigError, PermanentChannelError, TransientChannelError
from .base import Delivery, ProviderKind
from .email_message import build_message
from .parsing import FALSE, TRUE, Where, pick

Security = Literal["plain", "starttls", "tls"]
#: Options an SMTP URL's query may carry.
SMTP_QUERY = {"starttls", "timeout", "cafile"}
DEFAULT_SMTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand email over; ``security`` is plain, starttls or tls (implicit)."""

    host: str
    port: int
    sender_address: str
    sender_name: str = ""
    security: Security = "plain"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    #: Right part of Message-IDs; the sender's domain when empty.
    domain: str = ""
    #: CA bundle to trust instead of the system's (a private relay's certificate).
    ca_file: str | None = None
    #: A ready TLS context (tests); wins over ca_file.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    @property
    def message_domain(self) -> str:
        return self.domain or self.sender_address.rpartition("@")[2] or "localhost"


class _Smtp(smtplib.SMTP):
    """An SMTP client that knows its server's name before it connects.

    smtplib records the host (the name TLS verifies the certificate for, in starttls)
    only when its constructor connects; this one connects later, with ``connect()``.
    """

    def __init__(self, host: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._host = host


class _SmtpSsl(smtplib.SMTP_SSL):
    """Implicit TLS (smtps): like _Smtp, the host is known before connecting."""

    def __init__(self, host: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(timeout=timeout, context=context)
        self._host = host


#: Failures of the connection itself: worth another attempt on a fresh connection.
_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError)


class SmtpTransport:
    """Sends email through one SMTP server, reusing one connection per worker thread."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[smtplib.SMTP] = set()
        self._ssl: ssl.SSLContext | None = config.ssl_context

    # -- connections ----------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        # Made once: loading the CA bundle for every connection would be wasted work.
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.config.ca_file)
        return self._ssl

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        # connect() apart from the constructor, so a failed greeting cannot leave the socket
        # open; the constructor would also have set the name TLS verifies the certificate for,
        # so _Smtp and _SmtpSsl take it themselves.
        if c.security == "tls":
            conn: smtplib.SMTP = _SmtpSsl(c.host, c.timeout, self._tls_context())
        else:
            conn = _Smtp(c.host, c.timeout)
        try:
            code, text = conn.connect(c.host, c.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, text)
            conn.ehlo()
            if c.security == "starttls":
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if c.username:
                conn.login(c.username, c.password or "")
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._open.add(conn)
        return conn

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        """This thread's connection and whether it was used before (it may have gone stale)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            return conn, True
        if conn is not None:
            self._discard(conn)
        conn = self._connect()
        self._local.conn = conn
        return conn, False

    def _discard(self, conn: smtplib.SMTP) -> None:
        with self._lock:
            self._open.discard(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        conn.close()

    def close(self) -> None:
        """Say QUIT on every open connection (all threads); used at shutdown."""
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            finally:
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------

    def _hand_over(self, msg: EmailMessage, recipient: str) -> None:
        conn, reused = self._connection()
        try:
            # Recipients are given explicitly: headers never decide who receives the message.
            conn.send_message(msg, self.config.sender_address, [recipient])
        except _CONNECTION_ERRORS:
            self._discard(conn)
            if not reused:
                raise
            # Most likely the server dropped the idle connection. Should it have accepted
            # the message after all, the repeat carries the same Message-ID.
            conn, _ = self._connection()
            try:
                conn.send_message(msg, self.config.sender_address, [recipient])
            except BaseException as exc:
                self._after_error(conn, exc)
                raise
        except BaseException as exc:
            self._after_error(conn, exc)
            raise

    def _after_error(self, conn: smtplib.SMTP, exc: BaseException) -> None:
        # smtplib sent RSET after a refused sender/recipient/data, so the connection is
        # still good; anything else leaves it in an unknown state.
        refused = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)
        if not isinstance(exc, refused) or conn.sock is None:
            self._discard(conn)

    def send(self, delivery: Delivery) -> str:
        """Hand one delivery to the SMTP server; returns its Message-ID."""
        msg = build_message(
            delivery, self.config.sender_address, self.config.sender_name, self.config.message_domain
        )
        where = f"smtp {self.config.host}:{self.config.port}"
        recipient = msg["To"].addresses[0].addr_spec
        try:
            self._hand_over(msg, recipient)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (0, b""))
            raise _by_code(where, code, text, f"recipient {recipient}") from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(where, exc.smtp_code, exc.smtp_error, type(exc).__name__) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentChannelError(
                f"{where}: not supported by the server: {exc}", address=False
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnects, refused connections, timeouts, TLS failures. Only a connection that was
            # never made proves the server has not got the message; after a timeout or a hang-up
            # mid-conversation it may have, so no other provider is asked (``elsewhere``).
            never_sent = isinstance(exc, ConnectionRefusedError | socket.gaierror | smtplib.SMTPConnectError)
            lost = f"{where}: {type(exc).__name__}: {exc}"
            raise TransientChannelError(lost, elsewhere=never_sent) from None
        return str(msg["Message-ID"])


#: Permanent SMTP replies that mean the recipient's address is bad (RFC 5321).
ADDRESS_CODES = frozenset({550, 551, 553})


def _by_code(where: str, code: int, text: bytes | str, what: str) -> Exception:
    """4xx replies are worth retrying, 5xx are not (RFC 5321 section 4.2.1)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    message = f"{where}: {what}: {code} {text}"
    if 400 <= code < 500:
        return TransientChannelError(message)
    if code >= 500:
        # 550/551/553 (and a refused recipient) name the mailbox; others (530/535
        # authentication, 552/554 transaction) are about us or the server.
        return PermanentChannelError(message, address=code in ADDRESS_CODES or what.startswith("recipient"))
    # Anything else (a greeting that is not 220, odd servers): try again later.
    return TransientChannelError(message)


# -- configuration (config/channels.toml [email]) ------------------------------------------


class _SmtpUrl(TypedDict):
    """What an SMTP URL says, as SmtpConfig's keyword arguments."""

    host: str
    port: int
    security: Security
    username: str | None
    password: str | None
    timeout: float
    ca_file: str | None


def _parse_smtp_url(url: str, where: Where, key: str = "url", env_var: str | None = None) -> _SmtpUrl:
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
    unknown = sorted(set(query) - SMTP_QUERY)
    if unknown:
        raise fail(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(SMTP_QUERY))})")
    starttls = query.get("starttls", "false").lower()
    if starttls not in TRUE | FALSE:
        raise fail(f"starttls={query['starttls']!r} must be true or false")
    if parts.scheme == "smtps" and starttls in TRUE:
        raise fail("smtps:// is already TLS; starttls=true applies to smtp:// only")
    timeout = DEFAULT_SMTP_TIMEOUT
    if "timeout" in query:
        try:
            timeout = float(query["timeout"])
        except ValueError:
            timeout = -1.0
        if not (math.isfinite(timeout) and timeout > 0):
            raise fail(f"timeout={query['timeout']!r} must be a number of seconds > 0")
    security: Security
    default_port: int
    if parts.scheme == "smtps":
        security, default_port = "tls", 465
    elif starttls in TRUE:
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


def _sender(value: object, where: Where, env_var: str | None) -> tuple[str, str]:
    if not isinstance(value, str):
        raise where.fail("from", value, "must be a string like 'Outreach <hello@example.com>'", env_var)
    name, address = parseaddr(value)
    if not address or "@" not in address or any(c.isspace() or ord(c) < 32 for c in address):
        raise where.fail("from", value, "must be an address like 'Outreach <hello@example.com>'", env_var)
    return name, address


def env_names(channel: str) -> dict[str, str]:
    """The environment variables that override the ``[email]`` table's keys (key -> variable)."""
    return {"url": "OUTREACH_SMTP_URL", "from": "OUTREACH_SMTP_FROM"}


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> SmtpConfig | None:
    """The SMTP settings of a channel's table, or None without a URL (the channel stays on the outbox)."""
    names = env_names(where.channel)
    url, url_env = pick(where, table, env, "url", names["url"])
    if url is None:
        return None
    sender, sender_env = pick(where, table, env, "from", names["from"])
    if sender is None:
        raise where.fail("from", None, f"is needed to send email: set it or {names['from']}")
    name, address = _sender(sender, where, sender_env)
    domain = table.get("domain", "")
    if not isinstance(domain, str):
        raise where.fail("domain", domain, "must be a string (the right part of Message-IDs)")
    return SmtpConfig(
        sender_address=address,
        sender_name=name,
        domain=domain,
        **_parse_smtp_url(url, where, "url", url_env),
    )


def build(channel: str, config: SmtpConfig) -> SmtpTransport:
    return SmtpTransport(config)


KIND: ProviderKind[SmtpConfig] = ProviderKind(
    name="smtp",
    description="email over SMTP (smtp://, smtps://, STARTTLS)",
    keys=frozenset({"url", "from", "domain"}),
    env=env_names,
    parse=parse,
    build=build,
)
