"""Email through Twilio SendGrid: the ``sendgrid`` provider kind.

Each delivery is one v3 Mail Send request (``POST /v3/mail/send``, Bearer API key) with one
personalization whose ``custom_args`` carry the send id; SendGrid answers 202 and names the request
in ``X-Message-Id``, the reference. Its Signed Event Webhook posts a JSON array of events signed
with ECDSA P-256 over the timestamp header and the raw body; each event's ``sg_message_id`` is that
X-Message-Id followed by ``.`` and SendGrid's own suffix, so the part before the first ``.`` is the
reference again.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..clock import Clock
from ..errors import TransientChannelError
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

SEND_PATH = "/v3/mail/send"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
#: The custom argument that names the send in SendGrid's activity feed and events.
SEND_ID_ARG = "outreach_send_id"
#: Reasons of a ``dropped`` event that are about the address (SendGrid's suppression lists).
ADDRESS_DROPS = ("bounced address", "unsubscribed address", "spam reporting address", "invalid")


@dataclass(frozen=True)
class SendGridConfig:
    api_key: str = field(repr=False)
    sender: Mailbox
    base_url: str = "https://api.sendgrid.com"
    timeout: float = 10.0
    #: The Signed Event Webhook's verification key (base64 of its DER form), as SendGrid shows it.
    webhook_public_key: str | None = None

    @cached_property
    def verification_key(self) -> ec.EllipticCurvePublicKey | None:
        return public_key(self.webhook_public_key) if self.webhook_public_key else None


class SendGridTransport:
    """Sends each delivery with one Mail Send request."""

    def __init__(self, name: str, config: SendGridConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"}
        self.client = HttpClient(name, config.base_url, config.timeout, headers, clock=clock)
        self._path = self.client.path(SEND_PATH)

    def close(self) -> None:
        self.client.close()

    def request_body(self, delivery: Delivery) -> dict[str, Any]:
        parts = email_parts(delivery, self.config.sender, "sendgrid")
        to = {"email": parts.recipient.address} | (
            {"name": parts.recipient.name} if parts.recipient.name else {}
        )
        sender = {"email": parts.sender.address} | ({"name": parts.sender.name} if parts.sender.name else {})
        # text/plain comes first, as SendGrid requires.
        content = [{"type": "text/plain", "value": parts.text}]
        if parts.html is not None:
            content.append({"type": "text/html", "value": parts.html})
        body: dict[str, Any] = {
            "personalizations": [{"to": [to], "custom_args": {SEND_ID_ARG: delivery.send_id}}],
            "from": sender,
            "subject": parts.subject,
            "content": content,
        }
        if parts.headers:
            body["headers"] = parts.headers
        return body

    def send(self, delivery: Delivery) -> str:
        """Send one delivery; returns SendGrid's X-Message-Id."""
        response = self.client.post_json(self._path, self.request_body(delivery))
        if response.ok:
            reference = (response.headers.get("X-Message-Id") or "").strip()
            if reference:
                return reference
            raise self.client.unreadable("an answer without X-Message-Id")
        raise refusal(self.client, response)


def _errors(response: Response) -> list[dict[str, Any]]:
    data = response.json()
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def refusal(client: HttpClient, response: Response) -> Exception:
    """The channel error for a SendGrid error answer.

    429 and 5xx are transient (a 429 waits until X-RateLimit-Reset); a 400 is about our request
    unless every error names the recipient's address field; 401, 403, 413 and the rest are ours
    to fix.
    """
    errors = _errors(response)
    said = "; ".join(f"{e.get('field') or '-'}: {e.get('message')}" for e in errors) or response.text
    text = f"HTTP {response.status}: {said[:400]}"
    if response.status == 429 or response.status >= 500:
        wait = client.retry_after(response)
        reset = response.headers.get("X-RateLimit-Reset", "")
        if wait is None and reset.strip().isdigit():
            wait = max(0.0, int(reset) - client.clock.now().timestamp())
        return TransientChannelError(f"{client.where}: {text}", wait)
    if response.status == 400:
        fields = [str(e.get("field") or "") for e in errors]
        recipient = bool(fields) and all(f.startswith("personalizations") and ".to" in f for f in fields)
        return client.permanent(text, address=recipient)
    return refused(client, response, text)


# -- webhook: the Signed Event Webhook ------------------------------------------------------------


def public_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER form; ValueError when it is no P-256 public key."""
    try:
        key = load_der_public_key(base64.b64decode(value.strip(), validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a base64 DER public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(config: SendGridConfig, request: WebhookRequest) -> None:
    """BadSignature unless the request carries a valid signature of its timestamp and body."""
    key = config.verification_key
    if key is None:
        raise BadSignature("sendgrid: webhook_public_key is not configured: events cannot be verified")
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise BadSignature("sendgrid: the request is not signed")
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        key.verify(raw, timestamp.encode("utf-8") + request.body, ec.ECDSA(hashes.SHA256()))
    except (ValueError, binascii.Error, InvalidSignature):
        raise BadSignature("sendgrid: the signature does not verify") from None


def event_status(event: Mapping[str, Any]) -> Status | None:
    """The status one SendGrid event says (None: deferred, unsubscribes and events of no message)."""
    message_id = event.get("sg_message_id")
    if not isinstance(message_id, str) or not message_id:
        return None
    reference = message_id.split(".", 1)[0]
    kind = str(event.get("event", ""))
    reason = str(event.get("reason") or event.get("response") or "")
    if kind == "processed":
        return Status(reference, "accepted")
    if kind == "delivered":
        return Status(reference, "delivered")
    if kind in ("open", "click"):
        return Status(reference, "read", kind)
    if kind == "bounce":
        # A "blocked" bounce is the receiving server refusing us (reputation, content), not the address.
        if str(event.get("type", "bounce")) == "blocked":
            return Status(reference, "failed", f"blocked: {reason}", permanent=False)
        return Status(reference, "bounced", reason)
    if kind == "dropped":
        lower = reason.strip().lower()
        return Status(reference, "failed", f"dropped: {reason}", permanent=lower in ADDRESS_DROPS)
    if kind == "spamreport":
        return Status(reference, "complained")
    return None


def webhook(config: SendGridConfig, request: WebhookRequest) -> WebhookAnswer:
    verify(config, request)
    try:
        events = json.loads(request.body)
    except ValueError:
        return WebhookAnswer()
    if not isinstance(events, list):
        events = [events]
    statuses = [event_status(e) for e in events if isinstance(e, dict)]
    return WebhookAnswer(events=[s for s in statuses if s is not None])


# -- configuration ----------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> SendGridConfig | None:
    """The settings of a ``sendgrid`` provider table (None when it names neither api_key nor from)."""
    if not table.get("api_key") and not table.get("from"):
        return None
    api_key = text_key(where, table, "api_key", required=True)
    assert api_key is not None
    key = text_key(where, table, "webhook_public_key")
    if key is not None:
        try:
            public_key(key)
        except ValueError as exc:
            raise where.fail(
                "webhook_public_key", key, f"must be SendGrid's verification key: {exc}"
            ) from None
    return SendGridConfig(
        api_key=api_key,
        sender=sender_key(where, table),
        base_url=base_url_key(where, table, "https://api.sendgrid.com"),
        timeout=timeout_key(where, table),
        webhook_public_key=key,
    )


def build(channel: str, config: SendGridConfig) -> SendGridTransport:
    return SendGridTransport(channel, config)


KIND: ProviderKind[SendGridConfig] = ProviderKind(
    name="sendgrid",
    description="email through Twilio SendGrid (v3 Mail Send); signed event webhook",
    keys=COMMON_KEYS | {"api_key", "webhook_public_key"},
    parse=parse,
    build=build,
    webhook=webhook,
)
