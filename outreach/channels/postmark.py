"""Email through Postmark: the ``postmark`` provider kind.

Each delivery is one ``POST /email`` with the server token in ``X-Postmark-Server-Token``; the
reference is the answer's ``MessageID``. Errors are read by Postmark's ``ErrorCode``. Postmark does
not sign its webhooks: it sends the HTTP Basic credentials written into the webhook URL, which
``webhook`` compares (in constant time) with the configured ones.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from .base import Delivery, ProviderKind
from .client import HttpClient, Response
from .email_api import (
    COMMON_KEYS,
    Mailbox,
    email_parts,
    refused,
    sender_key,
)
from .parsing import Where, base_url_key, text_key, timeout_key
from .webhooks import BadSignature, Status, WebhookAnswer, WebhookRequest

SEND_PATH = "/email"
#: ErrorCodes about the recipient's address: an invalid request naming 'To' (300, see
#: ``refusal``), an inactive recipient (406: it bounced hard or complained before).
INACTIVE_RECIPIENT = 406
INVALID_REQUEST = 300
#: ErrorCodes worth retrying: maintenance, rate limit exceeded.
TRANSIENT_CODES = frozenset({100, 429})
#: Bounce types that say the address is bad (it becomes inactive at Postmark too).
HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
#: Bounce types that are a failed delivery not to blame on the address.
SOFT_BOUNCES = frozenset(
    {"Transient", "SoftBounce", "DnsError", "Blocked", "SpamNotification", "VirusNotification",
     "DMARCPolicy", "TemplateRenderingFailed", "SMTPApiError", "Unknown"}
)  # fmt: skip
#: Postmark's metadata key that names the send (shown with the message in Postmark's activity).
SEND_ID_KEY = "outreach_send_id"


@dataclass(frozen=True)
class PostmarkConfig:
    server_token: str = field(repr=False)
    sender: Mailbox
    message_stream: str = "outbound"
    base_url: str = "https://api.postmarkapp.com"
    timeout: float = 10.0
    #: The credentials written into the webhook URL (https://user:password@host/...).
    webhook_user: str | None = None
    webhook_password: str | None = field(default=None, repr=False)


class PostmarkTransport:
    """Sends each delivery with one ``POST /email``."""

    def __init__(self, name: str, config: PostmarkConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        headers = {"X-Postmark-Server-Token": config.server_token}
        self.client = HttpClient(name, config.base_url, config.timeout, headers, clock=clock)
        self._path = self.client.path(SEND_PATH)

    def close(self) -> None:
        self.client.close()

    def request_body(self, delivery: Delivery) -> dict[str, Any]:
        parts = email_parts(delivery, self.config.sender, "postmark")
        body: dict[str, Any] = {
            "From": parts.sender.formatted(),
            "To": parts.recipient.formatted(),
            "Subject": parts.subject,
            "TextBody": parts.text,
            "MessageStream": self.config.message_stream,
            "Metadata": {SEND_ID_KEY: delivery.send_id},
        }
        if parts.html is not None:
            body["HtmlBody"] = parts.html
        if parts.headers:
            body["Headers"] = [{"Name": k, "Value": v} for k, v in parts.headers.items()]
        return body

    def send(self, delivery: Delivery) -> str:
        """Send one delivery; returns Postmark's MessageID."""
        response = self.client.post_json(self._path, self.request_body(delivery))
        answer = response.json()
        answer = answer if isinstance(answer, dict) else {}
        if response.ok and not answer.get("ErrorCode"):
            reference = answer.get("MessageID")
            if isinstance(reference, str) and reference:
                return reference
            raise self.client.unreadable(f"an answer without a MessageID: {response.text[:200]}")
        raise refusal(self.client, response, answer)


def refusal(client: HttpClient, response: Response, answer: Mapping[str, Any]) -> Exception:
    """The channel error for a Postmark error answer, by its ErrorCode (by the HTTP status without one).

    406 (inactive recipient) is the address; 300 (invalid email request) is the address only when
    Postmark names the 'To' field (otherwise it is our From, our fields or our content); 100
    (maintenance), 429 and 5xx are transient; any other code (10: bad token, 400/401: sender
    signature, 405/412/413: the account) is ours to fix.
    """
    code = answer.get("ErrorCode")
    message = str(answer.get("Message") or response.text)
    text = f"HTTP {response.status} ErrorCode {code}: {message[:300]}"
    if not isinstance(code, int) or isinstance(code, bool):
        return refused(client, response, f"HTTP {response.status}: {response.text[:300]}")
    if code in TRANSIENT_CODES or response.status == 429 or response.status >= 500:
        return client.transient(response, text)
    if code == INACTIVE_RECIPIENT:
        return client.permanent(text, address=True)
    if code == INVALID_REQUEST:
        return client.permanent(text, address="'to'" in message.lower())
    return client.permanent(text, address=False)


# -- webhook --------------------------------------------------------------------------------------


def authorized(config: PostmarkConfig, header: str | None) -> None:
    """BadSignature unless ``header`` is HTTP Basic with the configured user and password."""
    if not config.webhook_user or not config.webhook_password:
        raise BadSignature("postmark: webhook_user and webhook_password are not configured")
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        raise BadSignature("postmark: the request has no Basic credentials")
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise BadSignature("postmark: the Basic credentials are not base64") from None
    expected = f"{config.webhook_user}:{config.webhook_password}".encode()
    if not hmac.compare_digest(given, expected):
        raise BadSignature("postmark: wrong webhook credentials")


def record_status(record: Mapping[str, Any]) -> Status | None:
    """The status one webhook record says; None for subscription changes and for bounce types that
    are no failed delivery (auto-responders, address changes, (un)subscribe requests, challenges)."""
    reference = record.get("MessageID")
    if not isinstance(reference, str) or not reference:
        return None
    kind = str(record.get("RecordType", ""))
    if kind == "Delivery":
        return Status(reference, "delivered", str(record.get("Details") or ""))
    if kind in ("Open", "Click"):
        return Status(reference, "read", kind.lower())
    if kind == "SpamComplaint":
        return Status(reference, "complained")
    if kind != "Bounce":
        return None
    bounce = str(record.get("Type", ""))
    detail = f"{bounce}: {record.get('Description') or record.get('Details') or ''}".rstrip(": ")
    if bounce == "SpamComplaint":
        return Status(reference, "complained", detail)
    if bounce in HARD_BOUNCES:
        return Status(reference, "bounced", detail)
    if bounce in SOFT_BOUNCES:
        return Status(reference, "failed", detail, permanent=False)
    return None


def webhook(config: PostmarkConfig, request: WebhookRequest) -> WebhookAnswer:
    authorized(config, request.headers.get("authorization"))
    try:
        record = json.loads(request.body)
    except ValueError:
        return WebhookAnswer()
    status = record_status(record) if isinstance(record, dict) else None
    return WebhookAnswer(events=[status] if status else [])


# -- configuration ----------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> PostmarkConfig | None:
    """The settings of a ``postmark`` provider table (None when it names neither server_token nor from)."""
    if not table.get("server_token") and not table.get("from"):
        return None
    token = text_key(where, table, "server_token", required=True)
    assert token is not None
    user = text_key(where, table, "webhook_user")
    password = text_key(where, table, "webhook_password")
    if (user is None) != (password is None):
        missing = "webhook_password" if password is None else "webhook_user"
        raise where.fail(missing, None, "is needed with the other webhook credential")
    if user is not None and ":" in user:
        raise where.fail("webhook_user", user, "must not contain ':' (HTTP Basic cannot carry it)")
    return PostmarkConfig(
        server_token=token,
        sender=sender_key(where, table),
        message_stream=text_key(where, table, "message_stream") or "outbound",
        base_url=base_url_key(where, table, "https://api.postmarkapp.com"),
        timeout=timeout_key(where, table),
        webhook_user=user,
        webhook_password=password,
    )


def build(channel: str, config: PostmarkConfig) -> PostmarkTransport:
    return PostmarkTransport(channel, config)


KIND: ProviderKind[PostmarkConfig] = ProviderKind(
    name="postmark",
    description="email through Postmark (POST /email); webhooks with HTTP Basic credentials",
    keys=COMMON_KEYS | {"server_token", "message_stream", "webhook_user", "webhook_password"},
    parse=parse,
    build=build,
    webhook=webhook,
)
