"""The twilio and vonage provider kinds against a loopback server that answers as each API does:
request shape and auth, references, error classification, configuration, signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from outreach.channels import twilio, vonage
from outreach.channels.base import Delivery
from outreach.channels.config import build_transports, load_channels
from outreach.channels.parsing import Where
from outreach.channels.registry import PROVIDERS
from outreach.channels.webhooks import BadSignature, Inbound, Reply, Status, WebhookRequest
from outreach.clock import SimulatedClock
from outreach.errors import ConfigError, PermanentChannelError, TransientChannelError

from .helpers import declared
from .loopback import Loopback, serving

T0 = datetime(2026, 3, 20, 6, 0, tzinfo=UTC)
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-0123"
SERVICE = "MG" + "fedcba9876543210" * 2
HOOK = "https://outreach.example.com/v1/webhooks/sms/twilio"
VONAGE_HOOK = "https://outreach.example.com/v1/webhooks/sms/vonage"
SIG_SECRET = "vonage-signature-secret"

DELIVERY = Delivery(
    send_id="s_0123456789abcdef0123",
    attempt=1,
    customer_id="c-jonas",
    journey="order_delay",
    step="notice",
    channel="sms",
    address="+4915205550102",
    locale="de_DE",
    subject=None,
    text="Hallo Jonas, Ihre Bestellung kommt am Donnerstag. Grüße!",
    html=None,
    utc=T0,
    local=T0,
)


@pytest.fixture
def api() -> Iterator[Loopback]:
    with serving(Loopback()) as server:
        yield server


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


def where() -> Where:
    return Where(Path("config/channels.toml"), "sms", "provider")


# -- twilio: sending ---------------------------------------------------------------------------


def twilio_config(api: Loopback, clock: SimulatedClock, **extra: object) -> twilio.TwilioConfig:
    table = {"account_sid": SID, "auth_token": TOKEN, "from": "+15005550006", "base_url": api.url, **extra}
    return replace(twilio.parse(where(), table, {}), clock=clock)


@pytest.fixture
def tw(api: Loopback, clock: SimulatedClock) -> Iterator[twilio.TwilioTransport]:
    transport = twilio.build("sms", twilio_config(api, clock, status_callback=HOOK))
    yield transport
    transport.close()


def test_twilio_posts_the_documented_form_with_basic_auth(api, tw):
    api.answer(201, {"sid": "SM" + "1" * 32, "status": "queued"})
    assert tw.send(DELIVERY) == "SM" + "1" * 32
    [request] = api.requests
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request["headers"]["Authorization"] == f"Basic {expected}"
    assert api.form() == {
        "To": "+4915205550102",
        "From": "+15005550006",
        "Body": DELIVERY.text,
        "StatusCallback": HOOK,
    }


def test_twilio_can_send_through_a_messaging_service(api, clock):
    config = twilio_config(api, clock, messaging_service_sid=SERVICE)
    config = replace(config, sender=None)
    with_service = twilio.build("sms", config)
    api.answer(201, {"sid": "SMabc"})
    assert with_service.send(DELIVERY) == "SMabc"
    assert api.form() == {"To": "+4915205550102", "MessagingServiceSid": SERVICE, "Body": DELIVERY.text}
    with_service.close()


@pytest.mark.parametrize(
    ("status", "code", "kind", "address"),
    [
        (400, 21211, PermanentChannelError, True),  # invalid To
        (400, 21610, PermanentChannelError, True),  # the recipient texted STOP
        (400, 21614, PermanentChannelError, True),  # not a mobile number
        (400, 21635, PermanentChannelError, True),  # a landline
        (400, 21408, PermanentChannelError, False),  # region not enabled on our account
        (400, 21612, PermanentChannelError, False),  # To/From combination not routable
        (400, 21606, PermanentChannelError, False),  # our From cannot send
        (401, 20003, PermanentChannelError, False),  # bad credentials
        (404, 20404, PermanentChannelError, False),  # wrong account sid
        (400, 20429, TransientChannelError, None),
        (503, 20500, TransientChannelError, None),
    ],
)
def test_twilio_errors_are_classified_by_code(status, code, kind, address, api, tw):
    api.answer(
        status, {"code": code, "message": "m", "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    )
    with pytest.raises(kind, match=f"error {code}") as caught:
        tw.send(DELIVERY)
    if address is not None:
        assert caught.value.address is address


@pytest.mark.parametrize(("status", "headers", "wait"), [(429, {"Retry-After": "7"}, 7.0), (500, {}, None)])
def test_twilio_throttling_and_outages_are_transient(status, headers, wait, api, tw):
    api.answer(status, {"code": 20429, "message": "Too Many Requests", "status": status}, **headers)
    with pytest.raises(TransientChannelError) as caught:
        tw.send(DELIVERY)
    assert caught.value.retry_after == wait
    api.answer(502, b"<html>bad gateway</html>", **{"Retry-After": "3"})
    with pytest.raises(TransientChannelError, match="HTTP 502") as caught:
        tw.send(DELIVERY)
    assert caught.value.retry_after == 3.0


def test_twilio_unreadable_answers_are_not_the_addresses_fault(api, tw):
    api.answer(400, b"<html>nope</html>")
    with pytest.raises(PermanentChannelError, match="HTTP 400: <html>") as caught:
        tw.send(DELIVERY)
    assert caught.value.address is False
    api.answer(201, {"status": "queued"})  # taken, but no sid to follow it by
    with pytest.raises(PermanentChannelError, match="without a message sid") as caught:
        tw.send(DELIVERY)
    assert caught.value.address is False


@pytest.mark.parametrize("address", ["015205550102", "+49 152 0555", "jonas@example.com", ""])
def test_twilio_refuses_a_number_that_is_not_e164_without_asking(address, api, tw):
    with pytest.raises(PermanentChannelError, match="not an E.164") as caught:
        tw.send(replace(DELIVERY, address=address))
    assert caught.value.address is True
    assert api.requests == []


# -- twilio: configuration ------------------------------------------------------------------


def test_twilio_reads_its_table():
    config = twilio.parse(
        where(),
        {"account_sid": SID, "auth_token": TOKEN, "messaging_service_sid": SERVICE, "timeout": "5"},
        {},
    )
    assert (config.sender, config.messaging_service_sid, config.timeout) == (None, SERVICE, 5.0)
    assert config.base_url == "https://api.twilio.com" and config.status_callback is None
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account_sid": None}, "account_sid=None: is needed: set it or OUTREACH_SMS_PROVIDER_ACCOUNT_SID"),
        ({"account_sid": "SK123"}, "account_sid='SK123': must be an account SID"),
        ({"auth_token": None}, "auth_token=None: is needed"),
        ({"auth_token": ""}, "auth_token='': must be a non-empty string"),
        ({"from": None}, "from=None: is needed"),
        ({"messaging_service_sid": "MG1"}, "messaging_service_sid='MG1': must be a Messaging Service SID"),
        ({"status_callback": "ftp://x/y"}, "status_callback='ftp://x/y': must be an http"),
        ({"base_url": "https://h:99999"}, "base_url='https://h:99999': not a valid URL"),
        ({"timeout": -1}, "timeout=-1: must be a number > 0"),
        ({"timeout": "soon"}, "timeout='soon': must be a number > 0"),
    ],
)
def test_twilio_configuration_errors_name_the_key(change, message):
    table = {"account_sid": SID, "auth_token": TOKEN, "from": "+15005550006", **change}
    table = {k: v for k, v in table.items() if v is not None}
    with pytest.raises(ConfigError, match=re.escape(f"[sms.provider] {message}")):
        twilio.parse(where(), table, {})


def test_twilio_errors_never_show_the_token():
    with pytest.raises(ConfigError) as caught:
        twilio.parse(where(), {"account_sid": SID, "auth_token": 12345, "from": "x"}, {})
    assert "12345" not in str(caught.value) and "***" in str(caught.value)


def test_both_kinds_are_registered_and_configured_from_channels_toml(tmp_path):
    assert {"twilio", "vonage"} <= set(PROVIDERS)
    text = (
        '[sms]\nproviders = ["twilio", "backup"]\n'
        f'[sms.twilio]\naccount_sid = "{SID}"\nfrom = "+15005550006"\n'
        '[sms.backup]\nkind = "vonage"\napi_key = "k1"\nfrom = "Outreach"\n'
    )
    (tmp_path / "channels.toml").write_text(declared(text), encoding="utf-8")
    env = {"OUTREACH_SMS_TWILIO_AUTH_TOKEN": TOKEN, "OUTREACH_SMS_BACKUP_API_SECRET": "s3cr3t"}
    sms = load_channels(tmp_path, environ=env)["sms"]
    assert [(p.name, p.kind) for p in sms.providers] == [("twilio", "twilio"), ("backup", "vonage")]
    assert sms.providers[0].settings.auth_token == TOKEN
    assert sms.providers[1].settings.api_secret == "s3cr3t"
    transports = build_transports(tmp_path, tmp_path / "outbox", environ=env)
    transports["sms"].close()  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="OUTREACH_SMS_BACKUP_API_SECRET"):
        load_channels(tmp_path, environ={"OUTREACH_SMS_TWILIO_AUTH_TOKEN": TOKEN})


# -- twilio: webhooks -----------------------------------------------------------------------


def twilio_request(
    params: dict[str, str], url: str = HOOK, token: str = TOKEN, **headers: str
) -> WebhookRequest:
    signed = {"x-twilio-signature": twilio.signature(token, url, sorted(params.items())), **headers}
    body = urlencode(params).encode()
    return WebhookRequest("POST", url, signed, {}, body)


def callback(status: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "2" * 32,
        "SmsSid": "SM" + "2" * 32,
        "AccountSid": SID,
        "From": "+15005550006",
        "To": "+4915205550102",
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def test_twilios_published_signature_example():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio.signature("12345", url, list(params.items())) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("queued", "accepted"),
        ("sending", "accepted"),
        ("sent", "accepted"),
        ("accepted", "accepted"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("undelivered", "failed"),
        ("failed", "failed"),
        ("canceled", None),
    ],
)
def test_twilio_statuses_in_outreachs_words(status, ours, api, clock):
    config = twilio_config(api, clock)
    answer = twilio.webhook(config, twilio_request(callback(status)))
    if ours is None:
        assert answer.events == []
    else:
        assert answer.events == [Status("SM" + "2" * 32, ours, status, False)]
    assert answer.reply is None


@pytest.mark.parametrize(
    ("code", "permanent"),
    [("30005", True), ("30006", True), ("21610", True), ("21211", True), ("30003", False), ("30007", False),
     ("30008", False), ("", False)],
)  # fmt: skip
def test_twilio_failures_condemn_the_number_only_for_address_errors(code, permanent, api, clock):
    config = twilio_config(api, clock)
    extra = {"ErrorCode": code} if code else {}
    [event] = twilio.webhook(config, twilio_request(callback("undelivered", **extra))).events
    assert isinstance(event, Status) and event.status == "failed"
    assert event.permanent is permanent
    assert event.detail == "undelivered" + (f" (error {code})" if code else "")


def test_twilio_inbound_messages_answer_empty_twiml(api, clock):
    config = twilio_config(api, clock)
    params = {"MessageSid": "SM9", "AccountSid": SID, "From": "+4915205550102", "To": "+15005550006",
              "Body": "STOPP? Nein, danke & tschüss", "NumMedia": "0", "SmsStatus": "received"}  # fmt: skip
    answer = twilio.webhook(config, twilio_request(params))
    assert answer.events == [Inbound("+4915205550102", "STOPP? Nein, danke & tschüss")]
    assert isinstance(answer.reply, Reply) and answer.reply.content_type == "text/xml"
    assert "<Response>" in answer.reply.body


def test_twilio_webhooks_must_be_signed_with_the_token_for_the_url(api, clock):
    config = twilio_config(api, clock)
    params = callback("delivered")
    good = twilio_request(params)
    assert twilio.webhook(config, good).events
    forged = [
        replace(good, headers={}),  # unsigned
        twilio_request(params, token="another-token"),
        replace(twilio_request(params, url=HOOK.replace("sms", "whatsapp")), url=HOOK),  # another URL
        replace(good, body=good.body.replace(b"delivered", b"undelivered")),  # tampered
        replace(good, headers={"x-twilio-signature": "not base64 at all"}),
    ]
    for request in forged:
        with pytest.raises(BadSignature):
            twilio.webhook(config, request)


def test_twilio_signatures_with_or_without_the_default_port_verify(api, clock):
    config = twilio_config(api, clock)
    params = callback("sent")
    signed_with_port = twilio_request(params, url=HOOK.replace(".com/", ".com:443/"))
    assert twilio.webhook(config, replace(signed_with_port, url=HOOK)).events
    assert twilio.webhook(
        config, replace(twilio_request(params), url=HOOK.replace(".com/", ".com:443/"))
    ).events


def test_twilio_get_callbacks_are_signed_over_the_url(api, clock):
    config = twilio_config(api, clock)
    params = callback("delivered")
    url = HOOK + "?" + urlencode(params)
    request = WebhookRequest(
        "GET", url, {"x-twilio-signature": twilio.signature(TOKEN, url, [])}, params, b""
    )
    assert [e.status for e in twilio.webhook(config, request).events] == ["delivered"]


def test_twilio_json_bodies_are_covered_by_their_hash(api, clock):
    config = twilio_config(api, clock)
    body = b'{"MessageSid": "SM1"}'
    url = f"{HOOK}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    headers = {"x-twilio-signature": twilio.signature(TOKEN, url, [])}
    assert twilio.webhook(config, WebhookRequest("POST", url, headers, {}, body)).events == []
    with pytest.raises(BadSignature, match="bodySHA256"):
        twilio.webhook(config, WebhookRequest("POST", url, headers, {}, body + b" "))


# -- vonage: sending ---------------------------------------------------------------------------


def vonage_config(api: Loopback, clock: SimulatedClock, **extra: object) -> vonage.VonageConfig:
    table = {"api_key": "abc123", "api_secret": "s3cr3t", "from": "Outreach", "base_url": api.url, **extra}
    return replace(vonage.parse(where(), table, {}), clock=clock)


@pytest.fixture
def vg(api: Loopback, clock: SimulatedClock) -> Iterator[vonage.VonageTransport]:
    transport = vonage.build("sms", vonage_config(api, clock))
    yield transport
    transport.close()


def sent(*parts: dict[str, str]) -> dict[str, object]:
    return {"message-count": str(len(parts)), "messages": list(parts)}


OK = {"to": "4915205550102", "message-id": "0C000000217B7F02", "status": "0", "remaining-balance": "15.5",
      "message-price": "0.0333", "network": "26201"}  # fmt: skip


def test_vonage_posts_the_documented_form(api, vg):
    api.answer(200, sent(OK))
    assert vg.send(DELIVERY) == "0C000000217B7F02"
    [request] = api.requests
    assert request["path"] == "/sms/json"
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert api.form() == {
        "api_key": "abc123",
        "api_secret": "s3cr3t",
        "from": "Outreach",
        "to": "4915205550102",
        "text": DELIVERY.text,
        "client-ref": DELIVERY.send_id,
    }


@pytest.mark.parametrize(
    ("text", "unicode"),
    [("Grüße, Ärger & 5€ {ok}", False), ("Ihre Lieferung 📦", True), ("Łódź", True), ("don’t", True)],
)
def test_vonage_sends_unicode_only_when_the_text_is_not_gsm7(text, unicode, api, vg):
    api.answer(200, sent(OK))
    vg.send(replace(DELIVERY, text=text))
    assert api.form().get("type") == ("unicode" if unicode else None)


def test_vonage_a_long_message_is_referenced_by_its_first_part(api, vg):
    second = {**OK, "message-id": "0C000000217B7F03"}
    api.answer(200, sent(OK, second))
    assert vg.send(DELIVERY) == "0C000000217B7F02"
    # A part refused after another was taken: the message went (a retry would send it twice).
    api.answer(200, sent(OK, {"status": "1", "error-text": "Throttled"}))
    assert vg.send(DELIVERY) == "0C000000217B7F02"


@pytest.mark.parametrize(
    ("status", "kind", "address"),
    [
        ("1", TransientChannelError, None),  # throttled
        ("2", PermanentChannelError, False),  # missing parameters
        ("3", PermanentChannelError, False),  # invalid parameters
        ("4", PermanentChannelError, False),  # invalid credentials
        ("5", TransientChannelError, None),  # internal error
        ("6", PermanentChannelError, False),  # invalid message / unroutable
        ("7", PermanentChannelError, True),  # number barred
        ("8", PermanentChannelError, False),  # our account barred
        ("9", TransientChannelError, None),  # out of credit: top up and retry
        ("10", TransientChannelError, None),  # too many binds
        ("12", PermanentChannelError, False),  # message too long
        ("15", PermanentChannelError, False),  # invalid sender
        ("29", PermanentChannelError, False),  # non-whitelisted destination (demo account)
        ("33", PermanentChannelError, True),  # number de-activated
    ],
)
def test_vonage_statuses_are_classified(status, kind, address, api, vg):
    api.answer(200, sent({"status": status, "error-text": "refused"}))
    with pytest.raises(kind, match=f"status {status}: refused") as caught:
        vg.send(DELIVERY)
    if address is not None:
        assert caught.value.address is address


def test_vonage_http_failures(api, vg):
    api.answer(429, b"slow down", **{"Retry-After": "12"})
    with pytest.raises(TransientChannelError, match="HTTP 429") as caught:
        vg.send(DELIVERY)
    assert caught.value.retry_after == 12.0
    api.answer(500, b"oops")
    with pytest.raises(TransientChannelError, match="HTTP 500"):
        vg.send(DELIVERY)
    api.answer(401, {"type": "https://developer.vonage.com/api-errors#unauthorized"})
    with pytest.raises(PermanentChannelError, match="HTTP 401") as caught:
        vg.send(DELIVERY)
    assert caught.value.address is False
    api.answer(200, b"<html>maintenance</html>")
    with pytest.raises(PermanentChannelError, match="without messages") as caught:
        vg.send(DELIVERY)
    assert caught.value.address is False


def test_vonage_refuses_a_number_that_is_not_e164_without_asking(api, vg):
    with pytest.raises(PermanentChannelError, match="not an E.164") as caught:
        vg.send(replace(DELIVERY, address="015205550102"))
    assert caught.value.address is True and api.requests == []


# -- vonage: configuration --------------------------------------------------------------------


def test_vonage_reads_its_table():
    table = {"api_key": "k", "api_secret": "s", "from": "+4915205550100", "signature_secret": SIG_SECRET}
    config = vonage.parse(where(), table, {})
    assert (config.sender, config.signature_method) == ("4915205550100", "md5hash")
    assert config.base_url == "https://rest.nexmo.com"
    assert SIG_SECRET not in repr(config) and "api_secret" not in repr(config)
    config = vonage.parse(where(), {**table, "signature_method": "SHA256"}, {})
    assert config.signature_method == "sha256"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_key": None}, "api_key=None: is needed: set it or OUTREACH_SMS_PROVIDER_API_KEY"),
        ({"api_secret": None}, "api_secret=None: is needed"),
        ({"from": None}, "from=None: is needed"),
        ({"from": "A sender name that is long"}, "from='A sender name that is long': must be a number or an"),
        ({"signature_method": "sha384"}, "signature_method='sha384': must be one of md5hash, md5"),
        (
            {"signature_secret": None, "signature_method": "sha1"},
            "signature_method='sha1': needs signature_secret",
        ),
        ({"base_url": "rest.nexmo.com"}, "base_url='rest.nexmo.com': must be an http"),
        ({"timeout": 0}, "timeout=0: must be a number > 0"),
    ],
)
def test_vonage_configuration_errors_name_the_key(change, message):
    table = {"api_key": "k", "api_secret": "s", "from": "Outreach", "signature_secret": SIG_SECRET, **change}
    table = {k: v for k, v in table.items() if v is not None}
    with pytest.raises(ConfigError, match=re.escape(f"[sms.provider] {message}")):
        vonage.parse(where(), table, {})


# -- vonage: webhooks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("md5hash", "6af838ef94998832dbfc29020b564830"),
        ("md5", "c15c21ced558c93a226c305f58f902f2"),
        ("sha1", "3e19a4e6880fdc2c1426bfd0587c98b9532f0210"),
        ("sha256", "a321e824b9b816be7c3f28859a31749a098713d39f613c80d455bbaffae1cd24"),
        ("sha512", "812a18f76680fa0fe1b8bd9ee1625466ceb1bd96242e4d050d2cfd9a7b40166c"
                   "63ed26ec9702168781b6edcf1633db8ff95af9341701004eec3fcf9550572ee8"),
    ],
)  # fmt: skip
def test_vonage_signature_methods_match_known_values(method, expected):
    assert vonage.signature("secret", method, {"a": "1", "b": "2", "timestamp": "1461605396"}) == expected


def test_vonage_signature_replaces_ampersands_and_equals_in_values():
    params = {"text": "a&b=c", "timestamp": "1"}
    data = b"&text=a_b_c&timestamp=1"
    assert vonage.signature("k", "sha256", params) == hmac.new(b"k", data, hashlib.sha256).hexdigest()


def receipt(status: str, err: str = "0", **extra: str) -> dict[str, str]:
    return {
        "msisdn": "4915205550102",
        "to": "Outreach",
        "network-code": "26201",
        "messageId": "0C000000217B7F02",
        "price": "0.0333",
        "status": status,
        "scts": "2603200601",
        "err-code": err,
        "api-key": "abc123",
        "client-ref": DELIVERY.send_id,
        "message-timestamp": "2026-03-20 06:00:00",
        "timestamp": str(int(T0.timestamp())),
        **extra,
    }


def signed(params: dict[str, str], method: str = "md5hash", secret: str = SIG_SECRET) -> dict[str, str]:
    return {**params, "sig": vonage.signature(secret, method, params)}


def vonage_hook(api: Loopback, clock: SimulatedClock, **extra: object) -> vonage.VonageConfig:
    return vonage_config(api, clock, signature_secret=SIG_SECRET, **extra)


def get(params: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("GET", VONAGE_HOOK + "?" + urlencode(params), {}, params, b"")


@pytest.mark.parametrize(
    ("status", "err", "ours", "permanent"),
    [
        ("delivered", "0", "delivered", False),
        ("accepted", "0", "accepted", False),
        ("buffered", "0", "accepted", False),
        ("expired", "3", "failed", False),
        ("failed", "1", "failed", False),  # unknown
        ("failed", "2", "failed", False),  # absent subscriber, temporary
        ("failed", "3", "failed", True),  # absent subscriber, permanent
        ("rejected", "4", "failed", True),  # call barred by the user
        ("rejected", "6", "failed", False),  # anti-spam: the content, not the number
        ("failed", "9", "failed", True),  # the user asked not to get messages from the service
        ("failed", "14", "failed", True),  # SMS blocked on the recipient's plan
        ("failed", "99", "failed", False),
        ("unknown", "1", None, False),
    ],
)
def test_vonage_receipts_in_outreachs_words(status, err, ours, permanent, api, clock):
    answer = vonage.webhook(vonage_hook(api, clock), get(signed(receipt(status, err))))
    if ours is None:
        assert answer.events == []
    else:
        [event] = answer.events
        assert event == Status("0C000000217B7F02", ours, event.detail, permanent)
        assert event.detail.startswith(status)


@pytest.mark.parametrize("method", vonage.SIGNATURE_METHODS)
def test_vonage_post_receipts_as_form_or_json_verify_with_each_method(method, api, clock):
    config = vonage_hook(api, clock, signature_method=method)
    params = signed(receipt("delivered"), method)
    form = WebhookRequest("POST", VONAGE_HOOK, {"content-type": "application/x-www-form-urlencoded"}, {},
                          urlencode(params).encode())  # fmt: skip
    as_json = WebhookRequest("POST", VONAGE_HOOK, {"content-type": "application/json"}, {},
                             json.dumps(params).encode())  # fmt: skip
    for request in (form, as_json):
        assert [e.status for e in vonage.webhook(config, request).events] == ["delivered"]
    upper = {**params, "sig": params["sig"].upper()}
    assert vonage.webhook(config, get(upper)).events


def test_vonage_inbound_sms(api, clock):
    params = {"msisdn": "4915205550102", "to": "4915205550100", "messageId": "0A00000123",
              "text": "Danke & bis bald = gut", "type": "text", "keyword": "DANKE",
              "message-timestamp": "2026-03-20 06:00:00", "timestamp": str(int(T0.timestamp()))}  # fmt: skip
    answer = vonage.webhook(vonage_hook(api, clock), get(signed(params)))
    assert answer.events == [Inbound("+4915205550102", "Danke & bis bald = gut")]


def test_vonage_webhooks_must_be_signed_and_recent(api, clock):
    config = vonage_hook(api, clock)
    params = receipt("failed", "3")
    forged = [
        get(params),  # unsigned
        get(signed(params, secret="another secret")),
        get(signed(params, "sha256")),  # another method than configured
        get({**signed(params), "err-code": "0"}),  # tampered
        get(signed({k: v for k, v in params.items() if k != "timestamp"})),  # no timestamp
    ]
    for request in forged:
        with pytest.raises(BadSignature):
            vonage.webhook(config, request)
    fresh = get(signed(params))
    assert vonage.webhook(config, fresh).events
    clock.advance(timedelta(hours=25))
    with pytest.raises(BadSignature, match="from now"):
        vonage.webhook(config, fresh)
    future = signed({**params, "timestamp": str(int(clock.now().timestamp()) + 3600)})
    with pytest.raises(BadSignature, match="from now"):
        vonage.webhook(config, get(future))


def test_vonage_webhooks_are_refused_without_a_signature_secret(api, clock):
    config = vonage_config(api, clock)
    assert config.signature_secret is None
    with pytest.raises(BadSignature, match="no signature_secret"):
        vonage.webhook(config, get(signed(receipt("delivered"))))


def test_vonage_a_json_body_that_is_not_an_object_is_a_bad_request(api, clock):
    request = WebhookRequest("POST", VONAGE_HOOK, {"content-type": "application/json"}, {}, b"[1, 2]")
    with pytest.raises(ValueError, match="not an object"):
        vonage.webhook(vonage_hook(api, clock), request)
