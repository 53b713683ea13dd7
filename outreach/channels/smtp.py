"""Email over SMTP: a MIME message built safely from a Delivery, one connection per worker thread.

``build_message`` is pure: every header is built through ``email.headerregistry`` with
the SMTP policy, so display names and subjects in any script become RFC 2047 encoded
words, and customer data can never start a header of its own (control characters are
replaced before anything reaches a header). ``SmtpTransport`` hands the message over
with ``smtplib`` and maps every failure to TransientChannelError or PermanentChannelError.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from email import policy as email_policy
from email.errors import HeaderParseError
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal
from urllib.parse import quote

from ..errors import PermanentChannelError, TransientChannelError
from .base import Delivery

Security = Literal["plain", "starttls", "tls"]

#: Control characters and Unicode line/paragraph separators: any of them in a header
#: value could end the header (or confuse a parser that splits on them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")
#: What survives of a send id in Message-ID's left part (dot-atom text, no surprises).
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Characters kept as they are in a List-Unsubscribe URI; the rest is percent-encoded,
#: so a URI can neither leave its angle brackets nor carry non-ASCII.
_URI_SAFE = "!#$%&'()*+/:;=?@[]~-._"


class _UriListHeader(UnstructuredHeader):
    """List-Unsubscribe: RFC 2369 URIs must stay verbatim, never become encoded words."""

    def fold(self, *, policy) -> str:
        # The default folder encodes a token longer than a line; a URI must not be
        # touched, so each one goes on its own (possibly long) line instead.
        uris = [part.strip() for part in str(self).split(",") if part.strip()]
        return f"{self.name}: " + f",{policy.linesep} ".join(uris) + policy.linesep


def _registry() -> HeaderRegistry:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _UriListHeader)
    return registry


#: SMTP line endings; bodies encoded as 7-bit (quoted-printable or base64, whichever is
#: shorter) so no server has to support 8BITMIME.
POLICY = email_policy.SMTP.clone(cte_type="7bit", header_factory=_registry())


def clean_header_text(value: str | None) -> str:
    """Customer text made safe for one header line: controls become spaces, runs collapse."""
    if not value:
        return ""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


def message_id(send_id: str, domain: str) -> str:
    """The Message-ID of every attempt of one send, so a resend is recognisable downstream."""
    left = _ID_UNSAFE.sub("-", send_id) or "send"
    right = _ID_UNSAFE.sub("-", domain) or "localhost"
    return f"<{left}@{right}>"


def _uri(value: str) -> str:
    return quote(_CONTROL.sub("", value).strip(), safe=_URI_SAFE)


def _address(display_name: str | None, addr_spec: str, what: str) -> Address:
    """An Address, or PermanentChannelError: a malformed address never becomes valid later.

    An internationalised domain becomes its ASCII (IDNA) form, so only a non-ASCII local
    part needs a server with SMTPUTF8.
    """
    local, _, domain = (addr_spec or "").rpartition("@")
    if not local or not domain or _CONTROL.search(addr_spec) or _SPACES.search(addr_spec):
        raise PermanentChannelError(f"smtp: invalid {what} address {addr_spec!r}")
    name = clean_header_text(display_name)
    try:
        if not domain.isascii():
            domain = domain.encode("idna").decode("ascii")
        if local.isascii():
            return Address(display_name=name, addr_spec=f"{local}@{domain}")
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError, HeaderParseError) as exc:
        # UnicodeError (a bad IDNA label) is a ValueError too.
        raise PermanentChannelError(f"smtp: invalid {what} address {addr_spec!r}: {exc}") from None


def build_message(delivery: Delivery, sender_address: str, sender_name: str, domain: str) -> EmailMessage:
    """The MIME message for one delivery: text (and HTML as an alternative), UTF-8, safe headers.

    Raises PermanentChannelError when the recipient address is unusable.
    """
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(sender_name, sender_address, "sender")
    msg["To"] = _address(delivery.name, delivery.address, "recipient")
    if delivery.subject is not None:
        msg["Subject"] = clean_header_text(delivery.subject)
    msg["Date"] = format_datetime(delivery.utc)
    msg["Message-ID"] = message_id(delivery.send_id, domain)
    msg["X-Outreach-Send-Id"] = clean_header_text(delivery.send_id)
    if delivery.unsubscribe_url or delivery.unsubscribe_mailto:
        uris = []
        if delivery.unsubscribe_mailto:
            mailto = delivery.unsubscribe_mailto
            uris.append(mailto if mailto.lower().startswith("mailto:") else f"mailto:{mailto}")
        if delivery.unsubscribe_url:
            uris.append(delivery.unsubscribe_url)
        msg["List-Unsubscribe"] = ", ".join(f"<{_uri(u)}>" for u in uris)
        if delivery.unsubscribe_url:
            # RFC 8058 one-click: only an https URI can receive the POST.
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(delivery.text, charset="utf-8")
    if delivery.html is not None:
        msg.add_alternative(delivery.html, subtype="html", charset="utf-8")
        for part in msg.iter_parts():
            # add_alternative gives sub-parts their own MIME-Version; only the top needs it.
            del part["MIME-Version"]
    return msg


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
        if c.security == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(timeout=c.timeout, context=self._tls_context())
        else:
            conn = smtplib.SMTP(timeout=c.timeout)
        # connect() apart from the constructor, so a failed greeting cannot leave the socket
        # open; the constructor would also have set the name TLS verifies the certificate for.
        conn._host = c.host
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
            # Disconnects, refused connections, timeouts, TLS failures.
            raise TransientChannelError(f"{where}: {type(exc).__name__}: {exc}") from None
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
