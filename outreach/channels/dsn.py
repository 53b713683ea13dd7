"""Bounces and complaints that come back by email, read into statuses of the messages sent over SMTP.

A delivery status notification (RFC 3464: ``multipart/report; report-type=delivery-status``) holds a
``message/delivery-status`` part, one block of per-message fields and one block per recipient
(``Action``, ``Status``, ``Diagnostic-Code``), and the original message or its headers
(``message/rfc822``, ``text/rfc822-headers``). A feedback report (RFC 5965, ``feedback-report``) is a
recipient's complaint. Either is routed by the original's ``Message-ID``, the reference
``SmtpTransport.send`` returned. The internationalised forms (RFC 6533: ``message/global-*``) are read
the same way.

What a recipient block becomes:

- ``failed`` with a 5.1.x status (a bad mailbox, domain or address) or 5.2.1 (mailbox disabled):
  ``bounced`` (the address is suppressed);
- ``failed`` with any other 5.x.x status: about the message or the way to it (X.6.x content, X.7.x a
  spam block or authentication, X.2.2 a full mailbox, X.4.x routing or a domain down for days,
  X.2.3 and X.3.4 too large): ``failed`` with ``permanent=False``, the address kept;
- ``failed`` with a 4.x.x status (the server gave up retrying) or no readable status: ``failed`` with
  ``permanent=False``;
- ``delivered``, ``relayed`` or ``expanded``: ``delivered``;
- ``delayed``: nothing; the server is still trying and reports the outcome later.

A feedback report of type ``abuse`` or ``fraud`` becomes ``complained``; other types (``not-spam``,
``auth-failure``, ``virus``, ``other``) say nothing about the recipient's wishes and are ignored.
Anything else (ordinary mail, read receipts, a report without the original's Message-ID, a malformed
message) yields nothing and never raises.
"""

from __future__ import annotations

import base64
import binascii
import io
import quopri
import re
from collections.abc import Iterator
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.parser import BytesParser, HeaderParser
from typing import Any

from .webhooks import Status


class _VerbatimHeader(UnstructuredHeader, BaseHeader):
    """A header's value as written (unfolded), encoded words left alone: Message-IDs must match exactly.

    Naming BaseHeader gives the MRO the registry builds anyway and types the class as a header.
    """

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        super().parse(value, kwds)
        kwds["decoded"] = value


def _registry() -> HeaderRegistry:
    registry = HeaderRegistry()
    registry.map_to_type("message-id", _VerbatimHeader)
    return registry


POLICY = email_policy.default.clone(header_factory=_registry())

#: The longest detail kept in a send's history.
DETAIL_LIMIT = 400
#: Parts that hold the delivery status fields (RFC 3464, RFC 6533).
STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
FEEDBACK_TYPE = "message/feedback-report"
#: Parts that hold the original message or its headers (RFC 3464, RFC 6522, RFC 6533).
ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"}
)
#: Feedback types that are the recipient's complaint about the message.
COMPLAINTS = frozenset({"abuse", "fraud"})
#: Permanent statuses that condemn the address itself (RFC 3463): addressing (5.1.x: no such
#: mailbox or domain, a bad address syntax, moved) and a disabled mailbox (5.2.1) — but not
#: 5.1.5 (the address is valid), 5.1.7 and 5.1.8 (our *sender* address or system is bad: a broken
#: sender domain must not suppress every customer).
_ADDRESS_SUBJECTS = frozenset({"1"})
_ADDRESS_CODES = frozenset({("2", "1")})
_NOT_THE_RECIPIENT = frozenset({("1", "5"), ("1", "7"), ("1", "8")})

_STATUS_CODE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
_WORD = re.compile(r"[a-z][a-z-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
_ANGLED_ID = re.compile(r"<([^<>\s]+)>")
_BARE_ID = re.compile(r"[^<>\s]+")
_ENCODED = frozenset({"base64", "quoted-printable"})
_QUOTED_FROM = re.compile(rb">+From ")


def read_reports(data: bytes) -> list[Status]:
    """The statuses one email message reports about messages Outreach sent (empty for any other mail)."""
    try:
        message = BytesParser(policy=POLICY).parsebytes(data)
        if not isinstance(message, EmailMessage) or message.get_content_type() != "multipart/report":
            return []
        parts = [part for part in message.iter_parts() if isinstance(part, EmailMessage)]
        reference = _original_reference(parts)
        if reference is None:
            return []
        statuses: list[Status] = []
        for part in parts:
            kind = part.get_content_type()
            if kind in STATUS_TYPES:
                statuses.extend(_delivery_statuses(reference, _blocks(part)))
            elif kind == FEEDBACK_TYPE:
                statuses.extend(_complaints(reference, _blocks(part)))
        return list(dict.fromkeys(statuses))
    except Exception:
        # The stdlib parser and header classes raise a variety of errors on hostile input; such a
        # message is no report Outreach can act on.
        return []


def split_mailbox(data: bytes) -> Iterator[bytes]:
    """The messages of an mbox file (each starts at a ``From `` line after a blank line, or at the top).

    Data that does not start with a ``From `` line is one message. Quoted ``>From `` lines lose one
    ``>`` (mboxrd).
    """
    if not data.strip():
        return
    if not data.startswith(b"From "):
        yield data
        return
    current: list[bytes] = []
    previous_blank = True
    for line in io.BytesIO(data):
        if previous_blank and line.startswith(b"From "):
            if current:
                yield b"".join(current)
            current = []
        elif _QUOTED_FROM.match(line):
            current.append(line[1:])
        else:
            current.append(line)
        previous_blank = not line.strip(b"\r\n")
    if current:
        yield b"".join(current)


# -- the original message ----------------------------------------------------------------------


def _original_reference(parts: list[EmailMessage]) -> str | None:
    """The original's Message-ID, from the report's part that returns its message or headers."""
    for part in parts:
        if part.get_content_type() not in ORIGINAL_TYPES:
            continue
        headers = _original_headers(part)
        value = headers.get("message-id") if headers is not None else None
        reference = normalize_message_id(str(value)) if value is not None else None
        if reference is not None:
            return reference
    return None


def _original_headers(part: EmailMessage) -> EmailMessage | None:
    payload = part.get_payload()
    if isinstance(payload, list) and _encoding(part) not in _ENCODED:
        first = payload[0] if payload else None
        return first if isinstance(first, EmailMessage) else None
    parsed = HeaderParser(policy=POLICY).parsestr(_text(part).lstrip("\r\n"))
    return parsed if isinstance(parsed, EmailMessage) else None


def normalize_message_id(value: str) -> str | None:
    """A Message-ID header's value as ``<id>`` (as written; brackets added when missing), or None."""
    value = value.strip()
    if len(value) > 998:
        return None
    angled = _ANGLED_ID.search(value)
    if angled is not None:
        return angled.group(0) if not _CONTROL.search(angled.group(1)) else None
    if _BARE_ID.fullmatch(value) and not _CONTROL.search(value):
        return f"<{value}>"
    return None


# -- the report's fields -----------------------------------------------------------------------


def _encoding(part: EmailMessage) -> str:
    return str(part.get("content-transfer-encoding", "")).strip().lower()


def _text(part: EmailMessage) -> str:
    """A part's body as text, transfer encoding undone, however the parser split it."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # A message/* part: the parser made header blocks of it; put the text back together.
        raw = "".join(sub.as_string() for sub in payload if isinstance(sub, EmailMessage))
        encoding = _encoding(part)
        if encoding == "base64":
            try:
                data = base64.b64decode(raw.encode("ascii", "ignore"))
            except (binascii.Error, ValueError):
                return ""
        elif encoding == "quoted-printable":
            data = quopri.decodestring(raw.encode("utf-8", "replace"))
        else:
            return raw
        return data.decode("utf-8", "replace")
    body = part.get_payload(decode=True)
    if not isinstance(body, bytes):
        return str(payload or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return body.decode(charset, "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def _fields(headers: EmailMessage) -> dict[str, str]:
    """A block's fields, names lowercase, values unfolded; the first of a repeated field counts."""
    fields: dict[str, str] = {}
    for name, value in headers.items():
        fields.setdefault(name.strip().lower(), _clean(str(value)))
    return fields


def _blocks(part: EmailMessage) -> list[dict[str, str]]:
    """The blocks of fields of a status or feedback part, in order."""
    payload = part.get_payload()
    if isinstance(payload, list) and _encoding(part) not in _ENCODED:
        blocks: list[dict[str, str]] = []
        for sub in payload:
            if not isinstance(sub, EmailMessage):
                continue
            blocks.append(_fields(sub))
            # message/global-delivery-status is parsed as one message: the rest of its blocks are its body.
            rest = sub.get_payload()
            if isinstance(rest, str) and rest.strip():
                blocks.extend(_parse_blocks(rest))
        return [block for block in blocks if block]
    return _parse_blocks(_text(part))


def _parse_blocks(text: str) -> list[dict[str, str]]:
    blocks = []
    for chunk in _BLANK_LINE.split(text.strip("\r\n")):
        parsed = HeaderParser(policy=POLICY).parsestr(chunk.lstrip("\r\n"))
        if isinstance(parsed, EmailMessage):
            fields = _fields(parsed)
            if fields:
                blocks.append(fields)
    return blocks


def _clean(text: str) -> str:
    """One line of text: control characters and runs of white space become one space."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def _detail(*pieces: str) -> str:
    text = _clean(" ".join(piece for piece in pieces if piece))
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1].rstrip() + "…"


# -- what the report says ----------------------------------------------------------------------


def _delivery_statuses(reference: str, blocks: list[dict[str, str]]) -> Iterator[Status]:
    """One status per recipient block with a final action (the per-message block has no Action)."""
    for block in blocks:
        action_word = _WORD.match(block.get("action", "").lower())
        if action_word is None:
            continue
        action = action_word.group(0)
        status = block.get("status", "")
        detail = _detail(status, block.get("diagnostic-code", ""))
        if action in ("delivered", "relayed", "expanded"):
            yield Status(reference, "delivered", detail)
        elif action == "failed":
            code = _STATUS_CODE.match(status)
            # The address the message was sent to (Original-Recipient), else where it ended up.
            recipient = _recipient(block.get("original-recipient", "")) or _recipient(
                block.get("final-recipient", "")
            )
            if code is not None and code.group(1) == "5" and _about_address(code):
                yield Status(reference, "bounced", detail, permanent=True, recipient=recipient)
            else:
                yield Status(reference, "failed", detail, permanent=False, recipient=recipient)
        # "delayed" (still trying) and unknown actions are no outcome.


def _about_address(code: re.Match[str]) -> bool:
    """Whether a permanent status condemns the address (rather than the message or the way to it)."""
    subject, detail = code.group(2), code.group(3)
    if (subject, detail) in _NOT_THE_RECIPIENT:
        return False
    return subject in _ADDRESS_SUBJECTS or (subject, detail) in _ADDRESS_CODES


def _recipient(field: str) -> str:
    """The address of a ``Final-Recipient: rfc822; someone@example.org`` field ('' when unreadable)."""
    kind, _, address = field.partition(";")
    return address.strip().strip("<>") if kind.strip().lower() == "rfc822" else ""


def _complaints(reference: str, blocks: list[dict[str, str]]) -> Iterator[Status]:
    fields: dict[str, str] = {}
    for block in blocks:
        for name, value in block.items():
            fields.setdefault(name, value)
    kind = _WORD.match(fields.get("feedback-type", "").lower())
    if kind is not None and kind.group(0) in COMPLAINTS:
        agent = fields.get("user-agent", "")
        yield Status(
            reference, "complained", _detail(f"{kind.group(0)} report", f"by {agent}" if agent else "")
        )
