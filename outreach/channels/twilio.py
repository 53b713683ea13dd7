"""SMS through Twilio's Messages API: the ``twilio`` provider kind.

A delivery is one form-encoded ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (To,
From and/or MessagingServiceSid, Body, StatusCallback) with HTTP Basic auth ``account_sid:
auth_token``; the reference is the answer's ``sid``. Refusals are read from the JSON error's
``code``: an address Twilio will never reach (invalid, unsubscribed, not a mobile) is a permanent
address error, 20429 and HTTP 429/5xx are transient, anything else is ours to fix (credentials,
sender, region permissions). Status callbacks and inbound messages are form POSTs signed with
``X-Twilio-Signature`` (base64 HMAC-SHA1 of the URL and the sorted parameters, keyed by the token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from ..clock import Clock
from .base import Delivery, ProviderKind
from .client import TRANSIENT_4XX, HttpClient, Response, basic_auth
from .parsing import DEFAULT_TIMEOUT, Where, base_url_key, text_key, timeout_key, url_key
from .webhooks import BadSignature, Inbound, Reply, Status, WebhookAnswer, WebhookRequest, same

DEFAULT_BASE_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "x-twilio-signature"

#: Refusals at send time that say the recipient's number itself will never work: invalid To,
#: a short code as To, the recipient texted STOP, not a mobile number, a landline.
ADDRESS_CODES = frozenset({21211, 21265, 21610, 21614, 21635})
#: Errors in status callbacks that say the same: the above, and the carrier's "unknown destination
#: handset" (30005) and "landline or unreachable carrier" (30006). 30003 (handset unreachable) is
#: usually a phone switched off or out of coverage and does not condemn the number.
DELIVERY_ADDRESS_CODES = ADDRESS_CODES | {30005, 30006}
#: Twilio's "too many requests": always safe to repeat.
THROTTLED = 20429

#: MessageStatus values of a callback, in Outreach's words (None: nothing to record).
STATUS_MAP: dict[str, str | None] = {
    "queued": "accepted",
    "scheduled": "accepted",
    "sending": "accepted",
    "sent": "accepted",
    "accepted": "accepted",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "partially_delivered": None,
    "canceled": None,
    "receiving": None,
    "received": None,
}
#: What Twilio expects in answer to an inbound message: TwiML that does nothing.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class TwilioConfig:
    """An account's credentials, the sender (a number, a sender ID or a Messaging Service) and where
    Twilio posts statuses."""

    account_sid: str
    auth_token: str = field(repr=False)
    sender: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT
    #: The clock Retry-After dates are read against (tests).
    clock: Clock | None = field(default=None, repr=False, compare=False)


# -- sending -------------------------------------------------------------------------------


class TwilioTransport:
    """Creates one Message resource per delivery; one kept-alive connection per thread."""

    def __init__(self, name: str, config: TwilioConfig) -> None:
        auth = {"Authorization": basic_auth(config.account_sid, config.auth_token)}
        self.client = HttpClient(name, config.base_url, config.timeout, auth, clock=config.clock)
        self.config = config
        self._path = self.client.path(f"/2010-04-01/Accounts/{config.account_sid}/Messages.json")

    def close(self) -> None:
        self.client.close()

    def form(self, delivery: Delivery) -> dict[str, str]:
        """The request's form for a delivery."""
        config = self.config
        form = {"To": delivery.address, "Body": delivery.text}
        if config.sender:
            form["From"] = config.sender
        if config.messaging_service_sid:
            form["MessagingServiceSid"] = config.messaging_service_sid
        if config.status_callback:
            form["StatusCallback"] = config.status_callback
        return form

    def send(self, delivery: Delivery) -> str:
        """Hand one SMS over; returns Twilio's message sid (``SM...``)."""
        if not _E164.match(delivery.address):
            raise self.client.permanent(f"{delivery.address!r} is not an E.164 phone number", address=True)
        response = self.client.post_form(self._path, self.form(delivery))
        if not response.ok:
            raise self.refusal(response)
        data = response.json()
        sid = data.get("sid") if isinstance(data, dict) else None
        if not isinstance(sid, str) or not sid:
            # The message may exist: sending it again could text the customer twice.
            raise self.client.unreadable(
                f"HTTP {response.status} without a message sid: {response.text[:200]}"
            )
        return sid

    def refusal(self, response: Response) -> Exception:
        """The channel error of a non-2xx answer, by Twilio's error code first, then the HTTP status."""
        data = response.json()
        code = data.get("code") if isinstance(data, dict) else None
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        message = data.get("message", "") if isinstance(data, dict) else ""
        text = f"HTTP {response.status}" + (f", error {code}: {message}" if code else f": {response.text}")
        if code == THROTTLED or response.status in TRANSIENT_4XX or response.status >= 500:
            return self.client.transient(response, text[:500])
        return self.client.permanent(text[:500], address=code in ADDRESS_CODES)


# -- webhooks ------------------------------------------------------------------------------


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` of a request: base64 HMAC-SHA1 over the URL followed by each POST
    parameter's name and value, sorted by name (repeated names: each value, sorted)."""
    data = url
    for name in sorted({name for name, _ in params}):
        for value in sorted({v for n, v in params if n == name}):
            data += name + value
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, with its default port and without it: Twilio may sign either form."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    default = 443 if parts.scheme == "https" else 80
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{parts.port or default}"))
    without = urlunsplit(parts._replace(netloc=f"{prefix}{host}")) if parts.port in (None, default) else url
    return list(dict.fromkeys([url, with_port, without]))


def verify(auth_token: str, request: WebhookRequest) -> list[tuple[str, str]]:
    """The request's signed parameters, once its signature is checked; raises BadSignature."""
    given = request.headers.get(SIGNATURE_HEADER)
    if not given:
        raise BadSignature(f"no {SIGNATURE_HEADER} header")
    query = parse_qs(urlsplit(request.url).query)
    params: list[tuple[str, str]] = []
    if "bodySHA256" in query:
        # A JSON body: the URL carries the body's hash and the signature covers the URL alone.
        if not same(hashlib.sha256(request.body).hexdigest(), query["bodySHA256"][0]):
            raise BadSignature("the body does not match its bodySHA256")
    elif request.method.upper() == "POST":
        params = parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    urls = [variant for url in request.urls for variant in _url_variants(url)]
    if not any(same(signature(auth_token, url, params), given) for url in urls):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match (is the public URL {request.url}?)")
    return params


def webhook(config: TwilioConfig, request: WebhookRequest) -> WebhookAnswer:
    """A status callback (MessageSid, MessageStatus, ErrorCode) or an inbound message (From, Body)."""
    params = verify(config.auth_token, request)
    fields: Mapping[str, str] = dict(params) if params else request.query
    status = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
    if "Body" in fields and status in ("", "received"):
        inbound = Inbound(address=fields.get("From", ""), text=fields["Body"])
        return WebhookAnswer([inbound], Reply(200, EMPTY_TWIML, "text/xml"))
    ours = STATUS_MAP.get(status.lower())
    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    if ours is None or not sid:
        return WebhookAnswer([])
    code = fields.get("ErrorCode", "").strip()
    detail = status + (f" (error {code})" if code else "")
    permanent = ours == "failed" and code.isdigit() and int(code) in DELIVERY_ADDRESS_CODES
    return WebhookAnswer([Status(sid, ours, detail, permanent)])


# -- configuration -------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> TwilioConfig:
    """A ``[<channel>.<name>]`` table of kind twilio (environment overrides already merged in)."""
    account_sid = text_key(where, table, "account_sid", required=True)
    assert account_sid is not None
    if not _ACCOUNT_SID.match(account_sid):
        raise where.fail("account_sid", account_sid, "must be an account SID: AC followed by 32 hex digits")
    auth_token = text_key(where, table, "auth_token", required=True)
    assert auth_token is not None
    sender = text_key(where, table, "from")
    service = text_key(where, table, "messaging_service_sid")
    if service is not None and not _SERVICE_SID.match(service):
        raise where.fail(
            "messaging_service_sid", service, "must be a Messaging Service SID: MG + 32 hex digits"
        )
    if sender is None and service is None:
        raise where.fail("from", None, "is needed (a number, sender ID or messaging_service_sid) to send")
    return TwilioConfig(
        account_sid=account_sid,
        auth_token=auth_token,
        sender=sender,
        messaging_service_sid=service,
        status_callback=url_key(where, table, "status_callback"),
        base_url=base_url_key(where, table, DEFAULT_BASE_URL),
        timeout=timeout_key(where, table),
    )


def build(channel: str, config: TwilioConfig) -> TwilioTransport:
    return TwilioTransport(f"{channel} (twilio)", config)


KIND: ProviderKind[TwilioConfig] = ProviderKind(
    name="twilio",
    description="SMS through Twilio's Messages API; signed status callbacks and inbound messages",
    keys=frozenset(
        {
            "account_sid",
            "auth_token",
            "from",
            "messaging_service_sid",
            "status_callback",
            "base_url",
            "timeout",
        }
    ),
    parse=parse,
    build=build,
    webhook=webhook,
)

__all__ = ["KIND", "TwilioConfig", "TwilioTransport", "signature", "verify", "webhook"]
