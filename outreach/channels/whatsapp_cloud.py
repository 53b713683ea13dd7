"""Meta's WhatsApp Cloud API: each delivery is one ``POST /{version}/{phone_number_id}/messages`` with
the access token as a Bearer token, sent as free text inside the customer-service window or as an
approved template (``Delivery.template``) outside it; the answer's ``messages[0].id`` (a wamid) is the
reference that the status webhooks name.

Errors are read from the Graph error object's ``code``, not from the HTTP status: 131026 (the number
cannot receive WhatsApp messages) is the only one that condemns the address; 131047 (more than 24 hours
since the customer last wrote) is ``WindowClosed``, for the caller to send a template instead; the
throughput, pair and spam limits are transient; the rest (templates, parameters, token, account) are
our configuration's problems and never suppress the customer.

The webhook checks ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with the app secret) and reads
``statuses`` (sent, delivered, read, failed) and ``messages`` (a customer wrote); the GET subscription
check answers ``hub.challenge`` when ``hub.verify_token`` is ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from ..errors import PermanentChannelError
from .base import Delivery, ProviderKind
from .client import TRANSIENT_4XX, HttpClient, Response
from .parsing import DEFAULT_TIMEOUT, Where, base_url_key, text_key, timeout_key
from .webhooks import BadSignature, Inbound, Reply, Status, WebhookAnswer, WebhookRequest, hmac_hex, same

KIND_NAME = "whatsapp_cloud"
DEFAULT_BASE_URL = "https://graph.facebook.com"
#: The newest Graph API version when this module was written (v21.0 is retired in January 2027).
DEFAULT_API_VERSION = "v26.0"
SIGNATURE_HEADER = "x-hub-signature-256"

#: The number is not on WhatsApp (or cannot receive business messages): suppress it.
ADDRESS_CODES = frozenset({131026})
#: More than 24 hours since the customer last replied: only a template may go.
WINDOW_CLOSED = 131047
#: Worth retrying later: API service trouble, app/account/throughput/pair/spam rate limits,
#: Meta's per-user marketing limit, generic server trouble and maintenance.
TRANSIENT_CODES = frozenset({2, 4, 80007, 130429, 131000, 131016, 131048, 131049, 131056, 131057, 133004})

#: Our token's, app's, account's or request's problems, whatever the HTTP status (Meta answers code 3
#: with a 500): authentication, capability, permission, deleted number, invalid parameter, expired
#: token, policy block, locked account, payment, unregistered number (and 200-299, permissions).
CONFIGURATION_CODES = frozenset({0, 3, 10, 33, 100, 190, 368, 131031, 131042, 133010, *range(200, 300)})

#: Webhook statuses in Outreach's words (``deleted``, ``warning`` and others are not about delivery).
STATUS_WORDS = {"sent": "accepted", "delivered": "delivered", "read": "read", "failed": "failed"}

_E164 = re.compile(r"^\+?[1-9][0-9]{6,14}$")
_PHONE_NUMBER_ID = re.compile(r"^[0-9]{1,32}$")
_API_VERSION = re.compile(r"^v[0-9]{1,3}\.[0-9]{1,2}$")


class WindowClosed(PermanentChannelError):
    """Meta refused free text (code 131047): the customer last wrote more than 24 hours ago, so only
    an approved template can reach them now. Never the address's fault (``address`` is False)."""

    window_closed = True

    def __init__(self, message: str) -> None:
        super().__init__(message, address=False, elsewhere=False)


@dataclass(frozen=True)
class WhatsAppCloudConfig:
    """One WhatsApp Business phone number on the Cloud API."""

    phone_number_id: str
    access_token: str = field(repr=False)
    #: The Meta app's secret: webhooks are signed with it (None: webhooks are refused).
    app_secret: str | None = field(default=None, repr=False)
    #: What Meta's subscription check must present (None: the check is refused).
    verify_token: str | None = field(default=None, repr=False)
    api_version: str = DEFAULT_API_VERSION
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT


def recipient(address: str) -> str:
    """The ``to`` of a request: the E.164 number's digits (as Meta's webhooks write them)."""
    if not _E164.match(address):
        raise ValueError(f"to={address!r}: not a phone number in E.164")
    return address.lstrip("+")


def message_body(delivery: Delivery) -> dict[str, Any]:
    """The JSON of one message: the approved template when the delivery carries one, else the text."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient(delivery.address),
    }
    template = delivery.template
    if template is None:
        body["type"] = "text"
        body["text"] = {"body": delivery.text}
        return body
    spec: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.parameters:
        parameters = [{"type": "text", "text": p} for p in template.parameters]
        spec["components"] = [{"type": "body", "parameters": parameters}]
    body["type"] = "template"
    body["template"] = spec
    return body


class WhatsAppCloudTransport:
    """Sends each delivery to the Cloud API's messages endpoint of one phone number."""

    def __init__(self, name: str, config: WhatsAppCloudConfig, *, clock: Clock | None = None) -> None:
        headers = {"Authorization": f"Bearer {config.access_token}"}
        self.name = name
        self.client = HttpClient(f"{name} {KIND_NAME}", config.base_url, config.timeout, headers, clock=clock)
        self._path = self.client.path(f"/{config.api_version}/{config.phone_number_id}/messages")

    def close(self) -> None:
        self.client.close()

    def send(self, delivery: Delivery) -> str:
        """POST the message; returns its wamid (``<kind>:<send_id>`` if Meta named none)."""
        try:
            body = message_body(delivery)
        except ValueError as exc:
            raise self.client.permanent(str(exc), address=True) from None
        response = self.client.post_json(self._path, body)
        data = response.json()
        if response.ok:
            messages = data.get("messages") if isinstance(data, dict) else None
            first = messages[0] if isinstance(messages, list) and messages else None
            wamid = first.get("id") if isinstance(first, dict) else None
            return wamid if isinstance(wamid, str) and wamid else f"{KIND_NAME}:{delivery.send_id}"
        raise self.refusal(response, data)

    def refusal(self, response: Response, data: object) -> Exception:
        """The channel error for a Graph error answer, by its ``error.code`` (then its HTTP status)."""
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            if response.status in TRANSIENT_4XX or response.status >= 500:
                return self.client.refusal(response)
            return self.client.permanent(f"HTTP {response.status}: {response.text[:500]}", address=False)
        code = error.get("code")
        text = f"HTTP {response.status}: {_error_text(error)}"
        if code == WINDOW_CLOSED:
            return WindowClosed(f"{self.client.where}: {text}")
        if code in ADDRESS_CODES:
            return self.client.permanent(text, address=True)
        if code in CONFIGURATION_CODES:
            return self.client.permanent(text, address=False)
        if code in TRANSIENT_CODES or response.status in TRANSIENT_4XX or response.status >= 500:
            return self.client.transient(response, text)
        return self.client.permanent(text, address=False)


# -- webhooks ------------------------------------------------------------------------------


def webhook(config: WhatsAppCloudConfig, request: WebhookRequest) -> WebhookAnswer:
    """Meta's subscription check (GET) or a signed notification (POST) of statuses and messages."""
    if request.method.upper() == "GET":
        return _subscription(config, request)
    if not config.app_secret:
        raise BadSignature(f"{KIND_NAME}: app_secret is not configured: notifications cannot be verified")
    expected = "sha256=" + hmac_hex(config.app_secret, request.body)
    if not same(expected, request.headers.get(SIGNATURE_HEADER)):
        raise BadSignature(f"{KIND_NAME}: {SIGNATURE_HEADER} does not match the body")
    try:
        data = json.loads(request.body)
    except ValueError:
        return WebhookAnswer()
    events: list[Status | Inbound] = []
    for value in _values(data):
        metadata = value.get("metadata")
        ours = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
        if ours is not None and str(ours) != config.phone_number_id:
            continue  # another phone number of the same Meta app
        events.extend(_statuses(value.get("statuses")))
        events.extend(_messages(value.get("messages")))
    return WebhookAnswer(events)


def _subscription(config: WhatsAppCloudConfig, request: WebhookRequest) -> WebhookAnswer:
    query = request.query
    if not config.verify_token:
        raise BadSignature(f"{KIND_NAME}: verify_token is not configured: the subscription is refused")
    if query.get("hub.mode") != "subscribe" or not same(config.verify_token, query.get("hub.verify_token")):
        raise BadSignature(f"{KIND_NAME}: not a subscription check with our verify_token")
    return WebhookAnswer(reply=Reply(200, query.get("hub.challenge", "")))


def _values(data: object) -> list[Mapping[str, Any]]:
    """Every ``entry[].changes[].value`` of a notification."""
    out: list[Mapping[str, Any]] = []
    entries = data.get("entry") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict):
                out.append(value)
    return out


def _statuses(items: object) -> list[Status | Inbound]:
    out: list[Status | Inbound] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        status = STATUS_WORDS.get(str(item.get("status")))
        if status is None:
            continue
        errors = [e for e in item.get("errors") or [] if isinstance(e, dict)]
        detail = "; ".join(_error_text(e) for e in errors)
        permanent = any(e.get("code") in ADDRESS_CODES for e in errors)
        out.append(Status(item["id"], status, detail, permanent if status == "failed" else True))
    return out


def _error_text(error: Mapping[str, Any]) -> str:
    """A Graph error as one line: ``(#code) title: details``."""
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    code = f"(#{error.get('code')})"
    title = str(error.get("message") or error.get("title") or "")
    text = title if title.startswith(code) else f"{code} {title}".rstrip()
    return text + (f": {details}" if details else "")


def _messages(items: object) -> list[Status | Inbound]:
    out: list[Status | Inbound] = []
    for item in items if isinstance(items, list) else []:
        sender = item.get("from") if isinstance(item, dict) else None
        if not isinstance(sender, str) or not sender.isdigit():
            continue
        stamp = item.get("timestamp")
        # When the customer wrote (Unix seconds): the window counts from then, not from a late delivery.
        at_ms = int(stamp) * 1000 if isinstance(stamp, str) and stamp.isdigit() else None
        out.append(Inbound(f"+{sender}", _message_text(item), at_ms))
    return out


def _message_text(item: Mapping[str, Any]) -> str:
    """The words of an inbound message: its text, a quick-reply button's text, a chosen option's title."""
    kind = item.get("type")
    part = item.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return ""
    if kind == "text":
        text = part.get("body")
    elif kind == "button":
        text = part.get("text")
    elif kind == "interactive":
        chosen = part.get("button_reply") or part.get("list_reply")
        text = chosen.get("title") if isinstance(chosen, dict) else None
    else:
        text = part.get("caption")
    return text if isinstance(text, str) else ""


# -- configuration ------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> WhatsAppCloudConfig | None:
    """The settings of a ``[<channel>.<provider>]`` table of this kind (None when it names no number)."""
    phone_number_id = text_key(where, table, "phone_number_id")
    access_token = text_key(where, table, "access_token")
    if phone_number_id is None and access_token is None:
        return None
    if phone_number_id is None or not _PHONE_NUMBER_ID.match(phone_number_id):
        raise where.fail(
            "phone_number_id", phone_number_id, "must be the phone number's id (digits) from Meta"
        )
    if access_token is None:
        raise where.fail("access_token", None, f"is needed: set it or {where.env('access_token')}")
    version = text_key(where, table, "api_version") or DEFAULT_API_VERSION
    if not _API_VERSION.match(version):
        raise where.fail("api_version", version, "must be a Graph API version such as v26.0")
    return WhatsAppCloudConfig(
        phone_number_id,
        access_token,
        app_secret=text_key(where, table, "app_secret"),
        verify_token=text_key(where, table, "verify_token"),
        api_version=version,
        base_url=base_url_key(where, table, DEFAULT_BASE_URL),
        timeout=timeout_key(where, table),
    )


def build(channel: str, config: WhatsAppCloudConfig) -> WhatsAppCloudTransport:
    return WhatsAppCloudTransport(channel, config)


KIND: ProviderKind[WhatsAppCloudConfig] = ProviderKind(
    name=KIND_NAME,
    description="Meta's WhatsApp Cloud API: free text in the 24-hour window, approved templates outside it",
    keys=frozenset(
        {
            "phone_number_id",
            "access_token",
            "app_secret",
            "verify_token",
            "api_version",
            "base_url",
            "timeout",
        }
    ),
    parse=parse,
    build=build,
    webhook=webhook,
    templates=True,
)
