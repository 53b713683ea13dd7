"""An email message built safely from a Delivery.

``build_message`` is pure: every header is built through ``email.headerregistry`` with
the SMTP policy, so display names and subjects in any script become RFC 2047 encoded
words, and customer data can never start a header of its own (control characters are
replaced before anything reaches a header).
"""

from __future__ import annotations

import re
from email import policy as email_policy
from email.errors import HeaderParseError
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime
from urllib.parse import quote

from ..errors import PermanentChannelError
from .base import Delivery

#: Control characters and Unicode line/paragraph separators: any of them in a header
#: value could end the header (or confuse a parser that splits on them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")
#: What survives of a send id in Message-ID's left part (dot-atom text, no surprises).
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Characters kept as they are in a List-Unsubscribe URI; the rest is percent-encoded,
#: so a URI can neither leave its angle brackets nor carry non-ASCII.
_URI_SAFE = "!#$%&'()*+/:;=?@[]~-._"


class _UriListHeader(UnstructuredHeader, BaseHeader):
    """List-Unsubscribe: RFC 2369 URIs must stay verbatim, never become encoded words.

    The registry combines a header class with BaseHeader itself (``type(name, (cls,
    BaseHeader), {})``); naming BaseHeader here gives the same MRO and lets the class be
    typed as the BaseHeader it always is when used.
    """

    def fold(self, *, policy: Policy) -> str:
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


def unsubscribe_headers(delivery: Delivery) -> dict[str, str]:
    """List-Unsubscribe (RFC 2369: the mailto, then the https link, percent-encoded so none leaves its
    brackets) and, for an https link, List-Unsubscribe-Post (RFC 8058); none for what cannot be
    unsubscribed from. Every email transport sends these (SMTP, and the providers' APIs)."""
    uris = []
    if delivery.unsubscribe_mailto:
        mailto = delivery.unsubscribe_mailto
        uris.append(mailto if mailto.lower().startswith("mailto:") else f"mailto:{mailto}")
    if delivery.unsubscribe_url:
        uris.append(delivery.unsubscribe_url)
    if not uris:
        return {}
    headers = {"List-Unsubscribe": ", ".join(f"<{_uri(uri)}>" for uri in uris)}
    if delivery.unsubscribe_url and delivery.unsubscribe_url.lower().startswith("https://"):
        # One-click: only an https URI may receive the POST (a mail client must not post to an
        # http one), so a development http link gets the header without it.
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


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
    for name, value in unsubscribe_headers(delivery).items():
        msg[name] = value
    msg.set_content(delivery.text, charset="utf-8")
    if delivery.html is not None:
        msg.add_alternative(delivery.html, subtype="html", charset="utf-8")
        for part in msg.iter_parts():
            # add_alternative gives sub-parts their own MIME-Version; only the top needs it.
            del part["MIME-Version"]
    return msg
