"""What the email API providers (``ses``, ``sendgrid``, ``postmark``) share: one delivery as the
parts their JSON requests name (sender, recipient, subject, text, HTML, List-Unsubscribe headers),
and the reading of the keys every one of them has (``from``, ``base_url``, ``timeout``).

Header values pass through ``email_message.clean_header_text`` like the SMTP transport's, so
customer data never carries a line break into a header the provider writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.utils import parseaddr

from ..errors import PermanentChannelError
from .base import Delivery
from .client import TRANSIENT_4XX, HttpClient, Response
from .email_message import clean_header_text, unsubscribe_headers
from .parsing import Where, text_key

#: Characters that make a display name need quotes (RFC 5322 specials).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
#: What an address never holds: controls and spaces.
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Mailbox:
    """An address with its display name; the domain is in its ASCII (IDNA) form."""

    name: str
    address: str

    @property
    def local_ascii(self) -> bool:
        return self.address.rpartition("@")[0].isascii()

    def formatted(self, *, encode: bool = False) -> str:
        """``Name <address>``, the name quoted when needed; ``encode``: a name beyond ASCII as an
        RFC 2047 encoded word (for providers that write the header as given)."""
        if not self.name:
            return self.address
        if encode and not self.name.isascii():
            # Encoded words of at most 75 characters each, on one line (the provider folds it).
            words = Header(self.name, "utf-8").encode().split()
            return f"{' '.join(words)} <{self.address}>"
        name = self.name
        if _SPECIALS.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.address}>"


def mailbox(name: str | None, address: str) -> Mailbox | None:
    """The mailbox of an address (None when it is no address: no ``@``, spaces, controls, bad IDNA)."""
    local, _, domain = (address or "").strip().rpartition("@")
    if not local or not domain or _UNSAFE.search(local + domain):
        return None
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        return None
    return Mailbox(clean_header_text(name), f"{local}@{domain.lower()}")


@dataclass(frozen=True)
class EmailParts:
    """One delivery as an email API request names it."""

    sender: Mailbox
    recipient: Mailbox
    subject: str
    text: str
    html: str | None
    #: X-Outreach-Send-Id (the same on every attempt, so a repeat is recognisable), then
    #: List-Unsubscribe (and List-Unsubscribe-Post for an https link), in order.
    headers: dict[str, str]


def email_parts(delivery: Delivery, sender: Mailbox, provider: str) -> EmailParts:
    """The parts of one delivery; PermanentChannelError (the address) when the recipient is no address."""
    recipient = mailbox(delivery.name, delivery.address)
    if recipient is None:
        raise PermanentChannelError(f"{provider}: invalid recipient address {delivery.address!r}")
    return EmailParts(
        sender=sender,
        recipient=recipient,
        subject=clean_header_text(delivery.subject),
        text=delivery.text,
        html=delivery.html,
        headers={"X-Outreach-Send-Id": delivery.send_id, **unsubscribe_headers(delivery)},
    )


def refused(client: HttpClient, response: Response, text: str) -> Exception:
    """An error answer whose body said nothing more specific: 408, 425, 429 and 5xx are transient,
    anything else permanent and not about the address (these APIs name a bad recipient in the body;
    a bare 404 or 422 is a wrong URL or request of ours)."""
    if response.status in TRANSIENT_4XX or response.status >= 500:
        return client.transient(response, text)
    return client.permanent(text, address=False)


# -- configuration keys every email API kind has ---------------------------------------------


def sender_key(where: Where, table: Mapping[str, object]) -> Mailbox:
    """The ``from`` key: ``Name <address>`` or a bare address."""
    value = text_key(where, table, "from", required=True)
    assert value is not None
    name, address = parseaddr(value)
    sender = mailbox(name, address) if address else None
    if sender is None:
        raise where.fail("from", value, "must be an address like 'Outreach <hello@example.com>'")
    return sender


#: Keys every email API kind has.
COMMON_KEYS = frozenset({"from", "base_url", "timeout"})
