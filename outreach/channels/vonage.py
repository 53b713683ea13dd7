"""SMS through Vonage's SMS API: the ``vonage`` provider kind.

A delivery is one form-encoded ``POST /sms/json`` carrying api_key, api_secret, from, to (the
number's digits, without ``+``), text (``type=unicode`` when it is not GSM-7) and ``client-ref`` (the
send id). Vonage answers 200 with ``messages[]``, one per SMS part, each with ``status`` ("0": taken)
and ``message-id``; the first taken part's id is the reference. A non-zero status is read from
Vonage's table: throttling, internal errors and an empty balance are transient, a barred or
de-activated number is a permanent address error, the rest is ours to fix.

Delivery receipts and inbound SMS arrive as GET query parameters or POST (form or JSON) and are
only believed when signed with the account's signature secret (``sig`` and ``timestamp``); with no
``signature_secret`` configured every webhook is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..clock import Clock, SystemClock
from .base import Delivery, ProviderKind
from .client import TRANSIENT_4XX, HttpClient, Response
from .parsing import DEFAULT_TIMEOUT, Where, base_url_key, text_key, timeout_key
from .webhooks import BadSignature, Inbound, Status, WebhookAnswer, WebhookRequest, same

DEFAULT_BASE_URL = "https://rest.nexmo.com"
#: How a signature is made: ``md5hash`` (MD5 of the string and the secret, Vonage's default) or
#: an HMAC keyed by the secret.
SIGNATURE_METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")
#: How old a signed webhook may be (Vonage repeats receipts it could not deliver) and how far ahead
#: of our clock its timestamp may run.
MAX_AGE_SECONDS = 24 * 3600
MAX_SKEW_SECONDS = 300
#: client-ref's maximum length.
CLIENT_REF_MAX = 100

#: SMS API statuses worth repeating: throttled, internal error, out of credit, too many binds.
TRANSIENT_STATUSES = frozenset({1, 5, 9, 10})
#: Statuses that condemn the number itself: barred, de-activated.
ADDRESS_STATUSES = frozenset({7, 33})

#: Receipt statuses in Outreach's words (None: nothing to record).
STATUS_MAP: dict[str, str | None] = {
    "accepted": "accepted",
    "buffered": "accepted",
    "delivered": "delivered",
    "expired": "failed",
    "failed": "failed",
    "rejected": "failed",
    "undelivered": "failed",
    "unknown": None,
}
#: Receipt error codes that condemn the number: absent subscriber (permanent), call barred by the
#: user, "illegal number" (the user asked not to get messages from the service), SMS blocked by
#: the carrier on the recipient's plan.
ADDRESS_ERRORS = frozenset({3, 4, 9, 14})

#: The GSM 03.38 alphabet (basic set and extension table): texts outside it go as unicode.
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "^{}\\[~]|€\f"
)

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_NUMBER = re.compile(r"^\+?[0-9]+$")


@dataclass(frozen=True)
class VonageConfig:
    """An account's API credentials, the sender and the secret its webhooks are signed with."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    sender: str
    signature_secret: str | None = field(default=None, repr=False)
    signature_method: str = "md5hash"
    base_url: str = DEFAULT_BASE_URL
    timeout: float = DEFAULT_TIMEOUT
    #: The clock webhook timestamps and Retry-After dates are read against (tests).
    clock: Clock | None = field(default=None, repr=False, compare=False)


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7 for ch in text)


# -- sending -------------------------------------------------------------------------------


class VonageTransport:
    """Submits one SMS per delivery; one kept-alive connection per thread."""

    def __init__(self, name: str, config: VonageConfig) -> None:
        self.client = HttpClient(name, config.base_url, config.timeout, clock=config.clock)
        self.config = config
        self._path = self.client.path("/sms/json")

    def close(self) -> None:
        self.client.close()

    def form(self, delivery: Delivery) -> dict[str, str]:
        """The request's form for a delivery."""
        config = self.config
        form = {
            "api_key": config.api_key,
            "api_secret": config.api_secret,
            "from": config.sender,
            "to": delivery.address.removeprefix("+"),
            "text": delivery.text,
            "client-ref": delivery.send_id[:CLIENT_REF_MAX],
        }
        if not is_gsm7(delivery.text):
            form["type"] = "unicode"
        return form

    def send(self, delivery: Delivery) -> str:
        """Hand one SMS over; returns Vonage's message-id (of its first part)."""
        if not _E164.match(delivery.address):
            raise self.client.permanent(f"{delivery.address!r} is not an E.164 phone number", address=True)
        response = self.client.post_form(self._path, self.form(delivery))
        if not response.ok:
            text = f"HTTP {response.status}: {response.text[:500]}"
            if response.status in TRANSIENT_4XX or response.status >= 500:
                raise self.client.transient(response, text)
            raise self.client.permanent(text, address=False)
        data = response.json()
        parts = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            # The message may have gone: sending it again could text the customer twice.
            raise self.client.permanent(f"an answer without messages: {response.text[:200]}", address=False)
        for part in parts:
            if str(part.get("status")) == "0":
                reference = part.get("message-id")
                if not isinstance(reference, str) or not reference:
                    raise self.client.unreadable(f"a part taken without a message-id: {part}")
                return reference
        raise self.refusal(response, parts[0])

    def refusal(self, response: Response, part: Mapping[str, object]) -> Exception:
        """The channel error of a refused message, by its SMS API status."""
        raw = str(part.get("status", ""))
        text = f"status {raw}: {part.get('error-text', '')}"
        status = int(raw) if raw.isdigit() else -1
        if status in TRANSIENT_STATUSES:
            return self.client.transient(response, text)
        return self.client.permanent(text, address=status in ADDRESS_STATUSES)


# -- webhooks ------------------------------------------------------------------------------


def _clean(value: str) -> str:
    return value.replace("&", "_").replace("=", "_")


def signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    """The ``sig`` of a webhook's (or a request's) parameters: ``&key=value`` for each parameter but
    ``sig``, sorted by key, with ``&`` and ``=`` in values replaced by ``_``; then MD5 of that string
    followed by the secret (``md5hash``) or its HMAC keyed by the secret; lowercase hex."""
    data = "".join(f"&{key}={_clean(params[key])}" for key in sorted(params) if key != "sig").encode()
    if method == "md5hash":
        return hashlib.md5(data + secret.encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), data, method).hexdigest()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def params_of(request: WebhookRequest) -> dict[str, str]:
    """A webhook's parameters: the query of a GET, the JSON or form body of a POST."""
    if request.method.upper() == "GET" or not request.body.strip():
        return dict(request.query)
    if "json" in request.headers.get("content-type", ""):
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("the JSON body is not an object")
        return {str(key): _text(value) for key, value in data.items()}
    return request.form()


def verify(config: VonageConfig, request: WebhookRequest) -> dict[str, str]:
    """The webhook's parameters once its signature and timestamp are checked; raises BadSignature."""
    if not config.signature_secret:
        raise BadSignature("no signature_secret is configured: Vonage webhooks cannot be verified")
    params = params_of(request)
    given = params.pop("sig", "")
    if not given:
        raise BadSignature("unsigned (no sig parameter)")
    expected = signature(config.signature_secret, config.signature_method, params)
    if not same(expected, given.lower()):
        raise BadSignature(f"sig does not match ({config.signature_method})")
    stamp = params.get("timestamp", "")
    if not stamp.isdigit():
        raise BadSignature(f"timestamp={stamp!r} is not a Unix time")
    age = (config.clock or SystemClock()).now().timestamp() - int(stamp)
    if not -MAX_SKEW_SECONDS <= age <= MAX_AGE_SECONDS:
        raise BadSignature(f"timestamp={stamp} is {int(age)}s from now")
    return params


def webhook(config: VonageConfig, request: WebhookRequest) -> WebhookAnswer:
    """A delivery receipt (messageId, status, err-code) or an inbound SMS (msisdn, text)."""
    params = verify(config, request)
    if "status" in params:
        ours = STATUS_MAP.get(params["status"].lower())
        reference = params.get("messageId") or params.get("message-id") or ""
        if ours is None or not reference:
            return WebhookAnswer([])
        code = params.get("err-code", "").strip()
        detail = params["status"] + (f" (err-code {code})" if code and code != "0" else "")
        permanent = params["status"] != "expired" and code.isdigit() and int(code) in ADDRESS_ERRORS
        return WebhookAnswer([Status(reference, ours, detail, permanent)])
    if "msisdn" in params and "text" in params:
        return WebhookAnswer([Inbound(address="+" + params["msisdn"].lstrip("+"), text=params["text"])])
    return WebhookAnswer([])


# -- configuration -------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> VonageConfig:
    """A ``[<channel>.<name>]`` table of kind vonage (environment overrides already merged in)."""
    api_key = text_key(where, table, "api_key", required=True)
    api_secret = text_key(where, table, "api_secret", required=True)
    sender = text_key(where, table, "from", required=True)
    assert api_key is not None and api_secret is not None and sender is not None
    if _NUMBER.match(sender):
        sender = sender.removeprefix("+")  # a number goes without its +
    elif len(sender) > 11:
        raise where.fail(
            "from", sender, "must be a number or an alphanumeric sender ID of at most 11 characters"
        )
    secret = text_key(where, table, "signature_secret")
    method = (text_key(where, table, "signature_method") or "md5hash").lower()
    if method not in SIGNATURE_METHODS:
        raise where.fail("signature_method", method, f"must be one of {', '.join(SIGNATURE_METHODS)}")
    if "signature_method" in table and secret is None:
        raise where.fail("signature_method", method, "needs signature_secret (the secret it signs with)")
    return VonageConfig(
        api_key=api_key,
        api_secret=api_secret,
        sender=sender,
        signature_secret=secret,
        signature_method=method,
        base_url=base_url_key(where, table, DEFAULT_BASE_URL),
        timeout=timeout_key(where, table),
    )


def build(channel: str, config: VonageConfig) -> VonageTransport:
    return VonageTransport(f"{channel} (vonage)", config)


KIND: ProviderKind[VonageConfig] = ProviderKind(
    name="vonage",
    description="SMS through Vonage's SMS API; signed delivery receipts and inbound messages",
    keys=frozenset(
        {"api_key", "api_secret", "from", "signature_secret", "signature_method", "base_url", "timeout"}
    ),
    parse=parse,
    build=build,
    webhook=webhook,
)

__all__ = ["KIND", "VonageConfig", "VonageTransport", "is_gsm7", "signature", "verify", "webhook"]
