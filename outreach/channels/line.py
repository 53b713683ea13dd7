"""The LINE Messaging API: each delivery is one push message (``POST /v2/bot/message/push``) to a LINE
user id, with the channel access token as a Bearer token and an ``X-Line-Retry-Key`` derived from the
send id, so that a repeat after a lost answer is refused by LINE (409) instead of sent twice.

LINE reports no delivery statuses: the reference (``sentMessages[0].id``, or the retry key) is only
for the record. A push to a user who blocked the account is accepted all the same and silently not
delivered; the ``unfollow`` webhook says so (naming the user, not a message): it suppresses the
user id for the channel.

The webhook checks ``X-Line-Signature`` (base64 of HMAC-SHA256 of the raw body with the channel
secret) and reads ``message`` events from users as inbound messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from .base import Delivery, ProviderKind
from .client import HttpClient, Response
from .parsing import DEFAULT_TIMEOUT, Where, base_url_key, text_key, timeout_key
from .webhooks import BadSignature, Blocked, Inbound, Status, Unblocked, WebhookAnswer, WebhookRequest, same

KIND_NAME = "line"
DEFAULT_BASE_URL = "https://api.line.me"
PUSH_PATH = "/v2/bot/message/push"
RETRY_HEADER = "X-Line-Retry-Key"
SIGNATURE_HEADER = "x-line-signature"
#: The namespace of the retry keys (uuid5 of the send id): the same send always has the same key.
RETRY_NAMESPACE = uuid.UUID("6f3c1e2a-5b7d-5e0f-9a4c-3d2b1a0f9e8d")

#: What LINE answers, with HTTP 429, when the month's message allowance is spent: no retry this
#: month can help, unlike the per-second rate limit.
MONTHLY_LIMIT = "monthly limit"
#: What LINE answers, with HTTP 400, for a user id it does not know.
UNKNOWN_USER = ("failed to send messages", "'to'")


def retry_key(send_id: str) -> str:
    """The ``X-Line-Retry-Key`` of a send: a UUID that every attempt of the send repeats."""
    return str(uuid.uuid5(RETRY_NAMESPACE, send_id))


def signature(secret: str, body: bytes) -> str:
    """The ``X-Line-Signature`` of a body: base64 of its HMAC-SHA256 with the channel secret."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class LineConfig:
    """One LINE Official Account's Messaging API channel."""

    channel_access_token: str = field(repr=False)
    #: Webhooks are signed with it (None: webhooks are refused).
    channel_secret: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT


class LineTransport:
    """Pushes each delivery as one text message to the user id it is addressed to."""

    def __init__(self, name: str, config: LineConfig, *, clock: Clock | None = None) -> None:
        headers = {"Authorization": f"Bearer {config.channel_access_token}"}
        self.name = name
        self.client = HttpClient(f"{name} {KIND_NAME}", config.base_url, config.timeout, headers, clock=clock)
        self._path = self.client.path(PUSH_PATH)

    def close(self) -> None:
        self.client.close()

    def send(self, delivery: Delivery) -> str:
        """Push the text; returns LINE's message id (the retry key when the answer names none)."""
        key = retry_key(delivery.send_id)
        body = {"to": delivery.address, "messages": [{"type": "text", "text": delivery.text}]}
        response = self.client.post_json(self._path, body, {RETRY_HEADER: key})
        data = response.json()
        # 409: an earlier attempt with this retry key was accepted, the message is on its way.
        if response.ok or response.status == 409:
            return _sent_id(data) or key
        raise self.refusal(response, data)

    def refusal(self, response: Response, data: object) -> Exception:
        """The channel error of an answer that is neither 2xx nor 409."""
        status = response.status
        message = data.get("message") if isinstance(data, dict) else None
        message = message if isinstance(message, str) else response.text[:500]
        details = data.get("details") if isinstance(data, dict) else None
        described = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
        text = f"HTTP {status}: {message}" + "".join(
            f"; {d.get('property', '')}: {d.get('message', '')}" for d in described
        )
        if status == 429 and MONTHLY_LIMIT in message.lower():
            return self.client.permanent(text, address=False)
        if status in {408, 425, 429} or status >= 500:
            return self.client.transient(response, text)
        unknown_user = any(phrase in message.lower() for phrase in UNKNOWN_USER) or any(
            d.get("property") == "to" for d in described
        )
        return self.client.permanent(text, address=status == 400 and unknown_user)


def _sent_id(data: object) -> str | None:
    sent = data.get("sentMessages") if isinstance(data, dict) else None
    first = sent[0] if isinstance(sent, list) and sent else None
    ref = first.get("id") if isinstance(first, dict) else None
    return str(ref) if isinstance(ref, str | int) and not isinstance(ref, bool) and str(ref) else None


# -- webhooks ------------------------------------------------------------------------------


def webhook(config: LineConfig, request: WebhookRequest) -> WebhookAnswer:
    """A signed webhook: each text (or other) message a user sent is an inbound message."""
    if not config.channel_secret:
        raise BadSignature(f"{KIND_NAME}: channel_secret is not configured: webhooks cannot be verified")
    if not same(signature(config.channel_secret, request.body), request.headers.get(SIGNATURE_HEADER)):
        raise BadSignature(f"{KIND_NAME}: {SIGNATURE_HEADER} does not match the body")
    try:
        data = json.loads(request.body)
    except ValueError:
        return WebhookAnswer()
    items = data.get("events") if isinstance(data, dict) else None
    events: list[Status | Inbound | Blocked | Unblocked] = []
    for event in items if isinstance(items, list) else []:
        inbound = _inbound(event)
        if inbound is not None:
            events.append(inbound)
        elif isinstance(event, dict) and event.get("type") == "unfollow":
            # The user blocked the account: pushes would still answer 200 and reach no one.
            source = event.get("source")
            user = source.get("userId") if isinstance(source, dict) else None
            if isinstance(user, str) and user:
                events.append(Blocked(user))
        elif isinstance(event, dict) and event.get("type") == "follow":
            # Added as a friend, or unblocked: a block's suppression is lifted.
            source = event.get("source")
            user = source.get("userId") if isinstance(source, dict) else None
            if isinstance(user, str) and user and isinstance(source, dict) and source.get("type") == "user":
                events.append(Unblocked(user))
    return WebhookAnswer(events)


def _inbound(event: object) -> Inbound | None:
    """A user's message event as an inbound message (a sticker or a photo has no text)."""
    if not isinstance(event, dict) or event.get("type") != "message":
        return None
    source = event.get("source")
    if not isinstance(source, dict) or source.get("type") != "user":
        return None
    user = source.get("userId")
    if not isinstance(user, str) or not user:
        return None
    message: Any = event.get("message")
    text = message.get("text") if isinstance(message, dict) and message.get("type") == "text" else ""
    return Inbound(user, text if isinstance(text, str) else "")


# -- configuration ------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> LineConfig | None:
    """The settings of a ``[<channel>.<provider>]`` table of this kind (None without an access token)."""
    token = text_key(where, table, "channel_access_token")
    secret = text_key(where, table, "channel_secret")
    if token is None:
        if secret is None:
            return None
        variable = where.env("channel_access_token")
        raise where.fail("channel_access_token", None, f"is needed to push messages: set it or {variable}")
    return LineConfig(
        token,
        channel_secret=secret,
        base_url=base_url_key(where, table, DEFAULT_BASE_URL),
        timeout=timeout_key(where, table),
    )


def build(channel: str, config: LineConfig) -> LineTransport:
    return LineTransport(channel, config)


KIND: ProviderKind[LineConfig] = ProviderKind(
    name=KIND_NAME,
    description="the LINE Messaging API: a push message per delivery to a LINE user id",
    keys=frozenset({"channel_access_token", "channel_secret", "base_url", "timeout"}),
    parse=parse,
    build=build,
    webhook=webhook,
)
