"""The email API providers (ses, sendgrid, postmark) against a loopback server that checks each
documented request and answers the documented success and error bodies; their webhooks with
correct, wrong and missing signatures; their configuration errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from outreach.channels import sns
from outreach.channels.aws_sigv4 import Credentials, sign
from outreach.channels.base import Delivery
from outreach.channels.config import load_channels
from outreach.channels.email_api import Mailbox, mailbox
from outreach.channels.parsing import Where
from outreach.channels.postmark import PostmarkConfig, PostmarkTransport
from outreach.channels.postmark import parse as parse_postmark
from outreach.channels.postmark import webhook as postmark_webhook
from outreach.channels.sendgrid import SendGridConfig, SendGridTransport
from outreach.channels.sendgrid import parse as parse_sendgrid
from outreach.channels.sendgrid import webhook as sendgrid_webhook
from outreach.channels.ses import SesConfig, SesTransport
from outreach.channels.ses import parse as parse_ses
from outreach.channels.ses import webhook as ses_webhook
from outreach.channels.webhooks import BadSignature, Status, TryLater, WebhookRequest
from outreach.clock import SimulatedClock
from outreach.errors import ConfigError, PermanentChannelError, TransientChannelError

from .helpers import declared
from .loopback import Loopback, serving

T0 = datetime(2026, 3, 20, 6, 0, tzinfo=UTC)
SENDER = Mailbox("Outreach", "hello@example.com")
DELIVERY = Delivery(
    send_id="9b1c77e2",
    attempt=1,
    customer_id="c-jurgen",
    journey="order_delay",
    step="notice",
    channel="email",
    address="jurgen@example.de",
    locale="de_DE",
    subject="Ihre Bestellung verspätet sich",
    text="Hallo Jürgen, neue Lieferung Donnerstag.",
    html="<p>Hallo Jürgen, neue Lieferung <b>Donnerstag</b>.</p>",
    utc=T0,
    local=T0,
    category="lifecycle",
    name="Jürgen Groß",
    unsubscribe_url="https://example.com/u/abc?x=1",
    unsubscribe_mailto="unsubscribe@example.com",
)
LIST_UNSUBSCRIBE = {
    "X-Outreach-Send-Id": DELIVERY.send_id,
    "List-Unsubscribe": "<mailto:unsubscribe@example.com>, <https://example.com/u/abc?x=1>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}


# -- the loopback provider -------------------------------------------------------------------------

ANSWERS = {
    "/v2/email/outbound-emails": (200, {}, b'{"MessageId":"0100018e-ses-1"}'),
    "/v3/mail/send": (202, {"X-Message-Id": "euo2iKxdSayPF4YE4--I7A"}, b""),
    "/email": (
        200,
        {},
        b'{"To":"jurgen@example.de","SubmittedAt":"2026-03-20T06:00:00Z",'
        b'"MessageID":"b7bc2f4a-e38e-4336-af7d-e6c392c2f817","ErrorCode":0,"Message":"OK"}',
    ),
}


class Provider(Loopback):
    """The three email APIs: each path answers as its API does unless a test scripts otherwise."""

    def reply(self, request: dict) -> tuple[int, dict[str, str], bytes]:
        return ANSWERS[request["path"]]


@pytest.fixture
def provider() -> Iterator[Provider]:
    with serving(Provider()) as server:
        yield server


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


def refused(transport, script_entry, provider: Provider) -> Exception:
    provider.script.append(script_entry)
    with pytest.raises((PermanentChannelError, TransientChannelError)) as info:
        transport.send(DELIVERY)
    return info.value


def decoded(header: str) -> str:
    return str(make_header(decode_header(header)))


def hook(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest("POST", "https://outreach.example.com/v1/webhooks/email/x", headers or {}, {}, body)


# -- shared email parts ----------------------------------------------------------------------------


def test_mailboxes_quote_encode_and_refuse():
    assert mailbox("Jürgen Groß", "jurgen@BÜCHER.example").address == "jurgen@xn--bcher-kva.example"
    assert mailbox("Doe, Jane", "jane@example.com").formatted() == '"Doe, Jane" <jane@example.com>'
    assert mailbox('A "B" C.', "a@example.com").formatted() == '"A \\"B\\" C." <a@example.com>'
    encoded = mailbox("Jürgen Groß", "j@example.com").formatted(encode=True)
    assert encoded.isascii() and decoded(encoded) == "Jürgen Groß <j@example.com>"
    long = mailbox("Jürgen Groß " * 12, "j@example.com").formatted(encode=True)
    assert "\n" not in long and decoded(long) == "Jürgen Groß " * 11 + "Jürgen Groß <j@example.com>"
    assert mailbox("Evil\r\nBcc: x@y", "e@example.com").name == "Evil Bcc: x@y"
    for bad in ("", "no-at-sign", "a b@example.com", "a@exa\nmple.com", "@example.com", "a@"):
        assert mailbox("", bad) is None


# -- AWS Signature Version 4 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "query", "signature"),
    [  # AWS's SigV4 test suite: get-vanilla, post-vanilla, get-vanilla-query-order-key-case
        ("GET", "", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", "", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        (
            "GET",
            "Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_sigv4_reproduces_the_aws_test_suite(method, query, signature):
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    at = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    headers = sign(
        credentials,
        region="us-east-1",
        service="service",
        method=method,
        host="example.amazonaws.com",
        path="/",
        query=query,
        now=at,
    )
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )


# -- ses -------------------------------------------------------------------------------------------


def ses_config(provider: Provider, **changes) -> SesConfig:
    config = SesConfig(
        region="eu-central-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        sender=SENDER,
        base_url=provider.url,
        session_token="session-token-1",
        configuration_set="outreach-events",
        topic_arn=TOPIC,
    )
    return replace(config, **changes)


@pytest.fixture
def ses(provider, clock) -> Iterator[SesTransport]:
    transport = SesTransport("email", ses_config(provider), clock=clock)
    yield transport
    transport.close()


def test_ses_sends_a_signed_simple_message(provider, ses):
    assert ses.send(DELIVERY) == "0100018e-ses-1"
    [request] = provider.requests
    headers = request["headers"]
    assert request["path"] == "/v2/email/outbound-emails"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Amz-Date"] == "20260320T060000Z"
    assert headers["X-Amz-Security-Token"] == "session-token-1"
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260320/eu-central-1/ses/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
    )
    # The signature covers what was sent: recomputed from the request as the server received it.
    expected = sign(
        ses.config.credentials,
        region="eu-central-1",
        service="ses",
        method="POST",
        host=headers["Host"],
        path=request["path"],
        headers={"Content-Type": "application/json"},
        body=request["body"],
        now=T0,
    )
    assert headers["Authorization"] == expected["Authorization"]
    to = json.loads(request["body"])["Destination"]["ToAddresses"][0]
    assert to.isascii() and decoded(to) == "Jürgen Groß <jurgen@example.de>"
    assert json.loads(request["body"]) == {
        "FromEmailAddress": "Outreach <hello@example.com>",
        "Destination": {"ToAddresses": [to]},
        "Content": {
            "Simple": {
                "Subject": {"Data": DELIVERY.subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": DELIVERY.text, "Charset": "UTF-8"},
                    "Html": {"Data": DELIVERY.html, "Charset": "UTF-8"},
                },
                "Headers": [{"Name": k, "Value": v} for k, v in LIST_UNSUBSCRIBE.items()],
            }
        },
        "ConfigurationSetName": "outreach-events",
    }


def test_ses_without_session_token_html_or_unsubscribe(provider, clock):
    with_less = SesTransport(
        "email", ses_config(provider, session_token=None, configuration_set=None), clock=clock
    )
    plain = replace(DELIVERY, html=None, unsubscribe_url=None, unsubscribe_mailto=None, name="")
    assert with_less.send(plain) == "0100018e-ses-1"
    headers, body = provider.requests[0]["headers"], provider.json()
    assert "X-Amz-Security-Token" not in headers
    assert "SignedHeaders=content-type;host;x-amz-date," in headers["Authorization"]
    assert body["Destination"] == {"ToAddresses": ["jurgen@example.de"]}
    assert (
        set(body["Content"]["Simple"]) == {"Subject", "Body", "Headers"}
        and "ConfigurationSetName" not in body
    )
    assert body["Content"]["Simple"]["Headers"] == [{"Name": "X-Outreach-Send-Id", "Value": DELIVERY.send_id}]
    with_less.close()


def aws_error(status: int, kind: str, message: str, *, header: bool = True, **extra: str):
    headers = (
        {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazonaws.sesv2/"}
        if header
        else {}
    )
    body = {"message": message} if header else {"__type": f"com.amazonaws.sesv2#{kind}", "message": message}
    return (status, {**headers, **extra}, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("answer", "error", "address"),
    [
        (aws_error(400, "MessageRejected", "Email address is not verified."), PermanentChannelError, False),
        (aws_error(400, "MessageRejected", "Address blacklisted."), PermanentChannelError, True),
        (
            aws_error(400, "MessageRejected", "Daily message quota exceeded.", header=False),
            TransientChannelError,
            None,
        ),
        (aws_error(400, "AccountSuspendedException", "suspended"), PermanentChannelError, False),
        (aws_error(400, "SendingPausedException", "paused", header=False), PermanentChannelError, False),
        (aws_error(400, "MailFromDomainNotVerifiedException", "MX"), PermanentChannelError, False),
        (aws_error(404, "NotFoundException", "no such configuration set"), PermanentChannelError, False),
        (aws_error(400, "BadRequestException", "Illegal address"), PermanentChannelError, False),
        (aws_error(403, "InvalidSignatureException", "bad signature"), PermanentChannelError, False),
        (aws_error(400, "LimitExceededException", "limit"), TransientChannelError, None),
        (aws_error(429, "TooManyRequestsException", "slow down"), TransientChannelError, None),
        (aws_error(503, "ServiceUnavailable", "later"), TransientChannelError, None),
        ((500, {}, b"oops"), TransientChannelError, None),
        ((404, {}, b""), PermanentChannelError, False),  # a wrong base_url, not a bad address
    ],
)
def test_ses_errors_by_type(provider, ses, answer, error, address):
    exc = refused(ses, answer, provider)
    assert type(exc) is error
    if address is not None:
        assert exc.address is address


def test_ses_throttling_waits_as_told_and_a_missing_id_is_sent_nowhere_else(provider, ses):
    exc = refused(ses, aws_error(429, "TooManyRequestsException", "slow", **{"Retry-After": "7"}), provider)
    assert isinstance(exc, TransientChannelError) and exc.retry_after == 7
    # Accepted without an id: the email may be on its way; neither SES again nor another provider.
    exc = refused(ses, (200, {}, b"{}"), provider)
    assert isinstance(exc, PermanentChannelError) and "MessageId" in str(exc)
    assert not exc.address and not exc.elsewhere


def test_ses_refuses_unusable_addresses_before_asking(provider, ses):
    with pytest.raises(PermanentChannelError) as bad:
        ses.send(replace(DELIVERY, address="not an address"))
    assert bad.value.address is True
    with pytest.raises(PermanentChannelError) as utf8:
        ses.send(replace(DELIVERY, address="jürgen@example.de"))
    assert utf8.value.address is False  # SES's limit, not the address's: another provider may send it
    assert provider.requests == []


# -- ses webhook: SNS signatures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(T0 - timedelta(days=1))
        .not_valid_after(T0 + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("sns") / "sns.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, path


@pytest.fixture(autouse=True)
def fresh_certificates() -> Iterator[None]:
    sns.CERTIFICATES.clear()
    yield
    sns.CERTIFICATES.clear()


TOPIC = "arn:aws:sns:eu-central-1:123456789012:outreach-ses"


def sns_body(key: rsa.RSAPrivateKey, cert_url: str, fields: dict, version: str = "1") -> bytes:
    message = {
        "TopicArn": TOPIC,
        "MessageId": "22b80b92-fdea",
        "Timestamp": "2026-03-20T06:00:01.000Z",
        **fields,
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
    }
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns.string_to_sign(message), padding.PKCS1v15(), digest)
    message["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(message).encode()


def notification(key, cert_url, event: dict, version: str = "1") -> bytes:
    fields = {"Type": "Notification", "Message": json.dumps(event)}
    return sns_body(key, cert_url, fields, version)


def ses_event(kind: str, key: str = "eventType", **extra) -> dict:
    return {key: kind, "mail": {"messageId": "0100018e-ses-1", "destination": ["jurgen@example.de"]}, **extra}


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_webhook_verifies_sns_signatures(provider, signer, version):
    key, pem = signer
    config = ses_config(provider, sns_certificate=str(pem), topic_arn=TOPIC)
    body = notification(key, str(pem), ses_event("Delivery"), version)
    assert ses_webhook(config, hook(body)).events == [Status("0100018e-ses-1", "delivered")]

    tampered = body.replace(b"Delivery", b"Bounce\\u0020")
    with pytest.raises(BadSignature):
        ses_webhook(config, hook(tampered))
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(BadSignature):
        ses_webhook(config, hook(notification(other, str(pem), ses_event("Delivery"), version)))
    unsigned = {k: v for k, v in json.loads(body).items() if k != "Signature"}
    with pytest.raises(BadSignature):
        ses_webhook(config, hook(json.dumps(unsigned).encode()))
    with pytest.raises(BadSignature):
        ses_webhook(config, hook(b"not json"))


def test_ses_webhook_takes_certificates_only_from_sns_hosts(provider, signer, monkeypatch):
    key, pem = signer
    fetched: list[str] = []

    def fake_fetch(url: str) -> bytes:
        fetched.append(url)
        return pem.read_bytes()

    monkeypatch.setattr(sns, "fetch", fake_fetch)
    config = ses_config(provider)
    good = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.pem"
    for _ in range(2):
        assert ses_webhook(config, hook(notification(key, good, ses_event("Delivery")))).events
    assert fetched == [good]  # fetched once, then kept

    for url in (
        "http://sns.eu-central-1.amazonaws.com/cert.pem",
        "https://sns.eu-central-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-central-1.amazonaws.com/cert.pem",
        "https://user@sns.eu-central-1.amazonaws.com/cert.pem",
        "https://sns.eu-central-1.amazonaws.com:8443/cert.pem",
        str(pem),  # a local file only when it is the configured sns_certificate
    ):
        with pytest.raises(BadSignature):
            ses_webhook(config, hook(notification(key, url, ses_event("Delivery"))))
    assert fetched == [good]


def test_ses_webhook_keeps_to_the_configured_topic(provider, signer):
    key, pem = signer
    config = ses_config(provider, sns_certificate=str(pem), topic_arn="arn:aws:sns:eu-central-1:1:other")
    with pytest.raises(BadSignature, match="topic"):
        ses_webhook(config, hook(notification(key, str(pem), ses_event("Delivery"))))


def test_ses_webhook_confirms_subscriptions_on_sns_hosts_only(provider, signer, monkeypatch):
    key, pem = signer
    config = ses_config(provider, sns_certificate=str(pem))
    fetched: list[str] = []
    monkeypatch.setattr(sns, "fetch", lambda url: fetched.append(url) or b"<ConfirmSubscriptionResponse/>")

    def confirmation(url: str) -> bytes:
        fields = {
            "Type": "SubscriptionConfirmation",
            "Token": "2336412f37",
            "SubscribeURL": url,
            "Message": "You have chosen to subscribe to the topic.",
        }
        return sns_body(key, str(pem), fields, "2")

    good = f"https://sns.eu-central-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f37"
    answer = ses_webhook(config, hook(confirmation(good)))
    assert answer.events == [] and answer.reply is not None and answer.reply.status == 200
    assert fetched == [good]

    answer = ses_webhook(config, hook(confirmation("https://evil.example/?Action=ConfirmSubscription")))
    assert answer.reply is not None and answer.reply.status == 502 and fetched == [good]

    def failing(url: str) -> bytes:
        raise OSError("connection refused")

    monkeypatch.setattr(sns, "fetch", failing)
    answer = ses_webhook(config, hook(confirmation(good)))
    assert answer.reply is not None and answer.reply.status == 502 and "refused" in answer.reply.body


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ses_event("Send"), Status("0100018e-ses-1", "accepted")),
        (ses_event("Delivery", "notificationType"), Status("0100018e-ses-1", "delivered")),
        (ses_event("Open"), Status("0100018e-ses-1", "read", "open")),
        (ses_event("Click"), Status("0100018e-ses-1", "read", "click")),
        (
            ses_event(
                "Bounce",
                bounce={
                    "bounceType": "Permanent",
                    "bounceSubType": "General",
                    "bouncedRecipients": [{"diagnosticCode": "550 5.1.1 unknown"}],
                },
            ),
            Status("0100018e-ses-1", "bounced", "Permanent General: 550 5.1.1 unknown"),
        ),
        (
            ses_event(
                "Bounce",
                "notificationType",
                bounce={"bounceType": "Transient", "bounceSubType": "MailboxFull"},
            ),
            Status("0100018e-ses-1", "failed", "Transient MailboxFull", permanent=False),
        ),
        (
            ses_event("Bounce", bounce={"bounceType": "Undetermined"}),
            Status("0100018e-ses-1", "failed", "Undetermined", permanent=False),
        ),
        (
            ses_event("Complaint", complaint={"complaintFeedbackType": "abuse"}),
            Status("0100018e-ses-1", "complained", "abuse"),
        ),
        (
            ses_event("Reject", reject={"reason": "Bad content"}),
            Status("0100018e-ses-1", "failed", "rejected: Bad content", permanent=False),
        ),
        (
            ses_event("Rendering Failure", failure={"errorMessage": "missing name"}),
            Status("0100018e-ses-1", "failed", "rendering failure: missing name", permanent=False),
        ),
        (ses_event("DeliveryDelay"), None),
        (ses_event("Subscription"), None),
        ({"eventType": "Delivery"}, None),
    ],
)
def test_ses_events_become_statuses(provider, signer, event, expected):
    key, pem = signer
    config = ses_config(provider, sns_certificate=str(pem))
    answer = ses_webhook(config, hook(notification(key, str(pem), event)))
    assert answer.events == ([expected] if expected else [])


def test_sns_urls():
    assert sns.is_sns_url("https://sns.us-east-1.amazonaws.com/x.pem")
    assert sns.is_sns_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem")
    assert sns.is_sns_url("https://sns.us-gov-west-1.amazonaws.com:443/x.pem")
    for url in (
        "https://sns.amazonaws.com/x.pem",
        "https://sqs.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/x",
        "ftp://sns.us-east-1.amazonaws.com/",
        "https://[::1]/",
        "https://sns.us-east-1.amazonaws.com:99999/",
    ):
        assert not sns.is_sns_url(url), url
    with pytest.raises(ValueError):
        sns.https_get("https://127.0.0.1/")  # the fetch itself refuses anything but SNS


# -- sendgrid --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def event_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(der).decode()


def sendgrid_config(provider: Provider, public_key: str | None = None) -> SendGridConfig:
    return SendGridConfig(
        api_key="SG.secret-key", sender=SENDER, base_url=provider.url, webhook_public_key=public_key
    )


@pytest.fixture
def sendgrid(provider, clock) -> Iterator[SendGridTransport]:
    transport = SendGridTransport("email", sendgrid_config(provider), clock=clock)
    yield transport
    transport.close()


def test_sendgrid_sends_one_personalization(provider, sendgrid):
    assert sendgrid.send(DELIVERY) == "euo2iKxdSayPF4YE4--I7A"
    [request] = provider.requests
    assert request["path"] == "/v3/mail/send"
    assert request["headers"]["Authorization"] == "Bearer SG.secret-key"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "personalizations": [
            {
                "to": [{"email": "jurgen@example.de", "name": "Jürgen Groß"}],
                "custom_args": {"outreach_send_id": "9b1c77e2"},
            }
        ],
        "from": {"email": "hello@example.com", "name": "Outreach"},
        "subject": DELIVERY.subject,
        "content": [
            {"type": "text/plain", "value": DELIVERY.text},
            {"type": "text/html", "value": DELIVERY.html},
        ],
        "headers": LIST_UNSUBSCRIBE,
    }


def sendgrid_error(status: int, *errors: tuple[str | None, str], **headers: str):
    body = {"errors": [{"field": f, "message": m, "help": None} for f, m in errors]}
    return (status, headers, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("answer", "error", "address"),
    [
        (
            sendgrid_error(400, ("from", "The from address does not match a verified Sender Identity.")),
            PermanentChannelError,
            False,
        ),
        (
            sendgrid_error(400, ("personalizations.0.to.0.email", "Does not contain a valid address.")),
            PermanentChannelError,
            True,
        ),
        (
            sendgrid_error(401, (None, "The provided authorization grant is invalid, expired, or revoked")),
            PermanentChannelError,
            False,
        ),
        (sendgrid_error(403, (None, "access forbidden")), PermanentChannelError, False),
        (sendgrid_error(413, (None, "payload too large")), PermanentChannelError, False),
        (sendgrid_error(500, (None, "internal error")), TransientChannelError, None),
        ((503, {}, b""), TransientChannelError, None),
        ((404, {}, b"{}"), PermanentChannelError, False),
        ((202, {}, b""), PermanentChannelError, False),  # accepted without X-Message-Id: may be on its way
    ],
)
def test_sendgrid_errors(provider, sendgrid, answer, error, address):
    exc = refused(sendgrid, answer, provider)
    assert type(exc) is error
    if address is not None:
        assert exc.address is address


def test_sendgrid_rate_limit_waits_until_the_reset(provider, sendgrid):
    reset = str(int(T0.timestamp()) + 30)
    answer = sendgrid_error(
        429, (None, "too many requests"), **{"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"}
    )
    exc = refused(sendgrid, answer, provider)
    assert isinstance(exc, TransientChannelError) and exc.retry_after == 30
    exc = refused(sendgrid, sendgrid_error(429, (None, "slow"), **{"Retry-After": "5"}), provider)
    assert exc.retry_after == 5


def signed(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str = "1774000000") -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
        "x-twilio-email-event-webhook-timestamp": timestamp,
    }


def sg_event(kind: str, **extra) -> dict:
    return {
        "email": "jurgen@example.de",
        "timestamp": 1774000000,
        "event": kind,
        "outreach_send_id": "9b1c77e2",
        "sg_message_id": "euo2iKxdSayPF4YE4--I7A.filterdrecv-5f54b5d587-pczjm-1-67BADEEA-6.0",
        **extra,
    }


def test_sendgrid_webhook_verifies_the_signature(provider, event_key):
    key, public = event_key
    config = sendgrid_config(provider, public)
    body = json.dumps([sg_event("delivered")]).encode()
    answer = sendgrid_webhook(config, hook(body, signed(key, body)))
    assert answer.events == [Status("euo2iKxdSayPF4YE4--I7A", "delivered")]

    headers = signed(key, body)
    with pytest.raises(BadSignature):
        sendgrid_webhook(config, hook(body.replace(b"delivered", b"bounce"), headers))
    with pytest.raises(BadSignature):  # the timestamp is signed too
        sendgrid_webhook(
            config, hook(body, {**headers, "x-twilio-email-event-webhook-timestamp": "1774000001"})
        )
    with pytest.raises(BadSignature):
        sendgrid_webhook(config, hook(body, signed(ec.generate_private_key(ec.SECP256R1()), body)))
    with pytest.raises(BadSignature):
        sendgrid_webhook(config, hook(body, {**headers, "x-twilio-email-event-webhook-signature": "%%%"}))
    with pytest.raises(BadSignature):
        sendgrid_webhook(config, hook(body))
    with pytest.raises(BadSignature, match="not configured"):
        sendgrid_webhook(sendgrid_config(provider), hook(body, headers))


def test_sendgrid_events_become_statuses(provider, event_key):
    key, public = event_key
    ref = "euo2iKxdSayPF4YE4--I7A"
    events = [
        sg_event("processed"),
        sg_event("deferred", response="400 try again later"),
        sg_event("delivered"),
        sg_event("open"),
        sg_event("click", url="https://example.com"),
        sg_event("bounce", type="bounce", reason="550 5.1.1 unknown user"),
        sg_event("bounce", type="blocked", reason="554 blocked by policy"),
        sg_event("dropped", reason="Bounced Address"),
        sg_event("dropped", reason="Unsubscribed Address"),
        sg_event("dropped", reason="Invalid"),
        sg_event("dropped", reason="Spam Content (if spam checker app enabled)"),
        sg_event("dropped", reason="Invalid SMTPAPI header"),
        sg_event("spamreport"),
        sg_event("unsubscribe"),
        {"event": "delivered", "email": "x@example.com"},  # names no message
    ]
    body = json.dumps(events).encode()
    assert sendgrid_webhook(sendgrid_config(provider, public), hook(body, signed(key, body))).events == [
        Status(ref, "accepted"),
        Status(ref, "delivered"),
        Status(ref, "read", "open"),
        Status(ref, "read", "click"),
        Status(ref, "bounced", "550 5.1.1 unknown user"),
        Status(ref, "failed", "blocked: 554 blocked by policy", permanent=False),
        Status(ref, "failed", "dropped: Bounced Address", permanent=True),
        Status(ref, "failed", "dropped: Unsubscribed Address", permanent=True),
        Status(ref, "failed", "dropped: Invalid", permanent=True),
        Status(ref, "failed", "dropped: Spam Content (if spam checker app enabled)", permanent=False),
        Status(ref, "failed", "dropped: Invalid SMTPAPI header", permanent=False),
        Status(ref, "complained"),
    ]


# -- postmark --------------------------------------------------------------------------------------


def postmark_config(provider: Provider, **changes) -> PostmarkConfig:
    config = PostmarkConfig(
        server_token="pm-server-token",
        sender=SENDER,
        base_url=provider.url,
        message_stream="outreach",
        webhook_user="hooks",
        webhook_password="s3cr:et",
    )
    return replace(config, **changes)


@pytest.fixture
def postmark(provider, clock) -> Iterator[PostmarkTransport]:
    transport = PostmarkTransport("email", postmark_config(provider), clock=clock)
    yield transport
    transport.close()


def test_postmark_sends_with_the_server_token(provider, postmark):
    assert postmark.send(DELIVERY) == "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
    [request] = provider.requests
    assert request["path"] == "/email"
    assert request["headers"]["X-Postmark-Server-Token"] == "pm-server-token"
    assert request["headers"]["Accept"] == "application/json"
    assert json.loads(request["body"]) == {
        "From": "Outreach <hello@example.com>",
        "To": "Jürgen Groß <jurgen@example.de>",
        "Subject": DELIVERY.subject,
        "TextBody": DELIVERY.text,
        "HtmlBody": DELIVERY.html,
        "MessageStream": "outreach",
        "Metadata": {"outreach_send_id": "9b1c77e2"},
        "Headers": [{"Name": k, "Value": v} for k, v in LIST_UNSUBSCRIBE.items()],
    }


def postmark_error(status: int, code: int, message: str, **headers: str):
    return (status, headers, json.dumps({"ErrorCode": code, "Message": message}).encode())


@pytest.mark.parametrize(
    ("answer", "error", "address"),
    [
        (
            postmark_error(422, 406, "You tried to send to recipient(s) that have been marked as inactive."),
            PermanentChannelError,
            True,
        ),
        (postmark_error(422, 300, "Invalid 'To' address: 'jurgen@'."), PermanentChannelError, True),
        (
            postmark_error(422, 300, "Invalid 'From' address: not a verified sender signature."),
            PermanentChannelError,
            False,
        ),
        (postmark_error(401, 10, "Bad or missing Server API token."), PermanentChannelError, False),
        (postmark_error(422, 400, "Sender signature not found"), PermanentChannelError, False),
        (postmark_error(422, 412, "Account is pending"), PermanentChannelError, False),
        (postmark_error(503, 100, "Maintenance"), TransientChannelError, None),
        (postmark_error(500, 0, "Internal server error"), TransientChannelError, None),
        ((502, {}, b"<html>bad gateway</html>"), TransientChannelError, None),
        ((422, {}, b"{}"), PermanentChannelError, False),
        ((403, {}, b"<html>403 Forbidden</html>"), PermanentChannelError, False),
    ],
)
def test_postmark_errors_by_code(provider, postmark, answer, error, address):
    exc = refused(postmark, answer, provider)
    assert type(exc) is error
    if address is not None:
        assert exc.address is address


def test_postmark_rate_limit_is_transient(provider, postmark):
    exc = refused(postmark, postmark_error(429, 429, "Rate limit exceeded", **{"Retry-After": "3"}), provider)
    assert isinstance(exc, TransientChannelError) and exc.retry_after == 3


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_postmark_webhook_checks_basic_credentials(provider):
    config = postmark_config(provider)
    body = json.dumps(
        {
            "RecordType": "Delivery",
            "MessageID": "pm-1",
            "Recipient": "jurgen@example.de",
            "Details": "Test delivery webhook details",
        }
    ).encode()
    assert postmark_webhook(config, hook(body, basic("hooks", "s3cr:et"))).events == [
        Status("pm-1", "delivered", "Test delivery webhook details")
    ]
    for headers in (
        basic("hooks", "wrong"),
        basic("other", "s3cr:et"),
        {"authorization": "Basic %%%"},
        {"authorization": "Bearer s3cr:et"},
        {},
    ):
        with pytest.raises(BadSignature):
            postmark_webhook(config, hook(body, headers))
    with pytest.raises(BadSignature, match="not configured"):
        postmark_webhook(
            replace(config, webhook_user=None, webhook_password=None), hook(body, basic("hooks", ""))
        )


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"RecordType": "Open", "FirstOpen": True}, Status("pm-1", "read", "open")),
        ({"RecordType": "Click"}, Status("pm-1", "read", "click")),
        ({"RecordType": "SpamComplaint", "Type": "SpamComplaint"}, Status("pm-1", "complained")),
        (
            {"RecordType": "Bounce", "Type": "HardBounce", "Description": "Unknown user"},
            Status("pm-1", "bounced", "HardBounce: Unknown user"),
        ),
        (
            {"RecordType": "Bounce", "Type": "BadEmailAddress", "Description": "Invalid"},
            Status("pm-1", "bounced", "BadEmailAddress: Invalid"),
        ),
        (
            {"RecordType": "Bounce", "Type": "SoftBounce", "Description": "Mailbox full"},
            Status("pm-1", "failed", "SoftBounce: Mailbox full", permanent=False),
        ),
        (
            {"RecordType": "Bounce", "Type": "Transient", "Description": "Delayed"},
            Status("pm-1", "failed", "Transient: Delayed", permanent=False),
        ),
        (
            {"RecordType": "Bounce", "Type": "Blocked", "Description": "ISP block"},
            Status("pm-1", "failed", "Blocked: ISP block", permanent=False),
        ),
        ({"RecordType": "Bounce", "Type": "AutoResponder"}, None),
        ({"RecordType": "SubscriptionChange", "SuppressSending": True}, None),
    ],
)
def test_postmark_records_become_statuses(provider, record, expected):
    body = json.dumps({"MessageID": "pm-1", "Recipient": "jurgen@example.de", **record}).encode()
    answer = postmark_webhook(postmark_config(provider), hook(body, basic("hooks", "s3cr:et")))
    assert answer.events == ([expected] if expected else [])


# -- configuration ---------------------------------------------------------------------------------


def where(name: str) -> Where:
    return Where(Path("config/channels.toml"), "email", name)


SES_TABLE = {
    "region": "eu-west-1",
    "access_key_id": "AKID",
    "secret_access_key": "topsecret",
    "from": "Outreach <hello@example.com>",
}


def test_ses_settings_and_their_defaults():
    config = parse_ses(where("ses"), SES_TABLE, {})
    assert config.base_url == "https://email.eu-west-1.amazonaws.com"
    assert config.sender == SENDER and config.timeout == 10.0 and config.session_token is None
    assert "topsecret" not in repr(config)
    assert parse_ses(where("ses"), {}, {}) is None


@pytest.mark.parametrize(
    ("parse", "table", "message"),
    [
        (parse_ses, {**SES_TABLE, "region": "Europe"}, "region='Europe': must be an AWS region"),
        (
            parse_ses,
            {k: v for k, v in SES_TABLE.items() if k != "secret_access_key"},
            "secret_access_key=None: is needed: set it or OUTREACH_EMAIL_X_SECRET_ACCESS_KEY",
        ),
        (parse_ses, {**SES_TABLE, "from": "nobody"}, "from='nobody': must be an address"),
        (parse_ses, {**SES_TABLE, "base_url": "ftp://x"}, "base_url='ftp://x': must be an http"),
        (parse_ses, {**SES_TABLE, "topic_arn": "outreach"}, "must be an SNS topic ARN"),
        (parse_ses, {**SES_TABLE, "sns_certificate": "/no/such.pem"}, "must be the path of a PEM"),
        (parse_ses, {**SES_TABLE, "timeout": -1}, "timeout=-1: must be a number > 0"),
        (parse_ses, {**SES_TABLE, "session_token": "a\nb"}, "session_token='***': must be one line"),
        (parse_sendgrid, {"from": "hello@example.com"}, "api_key=None: is needed"),
        (
            parse_sendgrid,
            {"api_key": "SG.x", "from": "hello@example.com", "webhook_public_key": "bm90IGEga2V5"},
            "webhook_public_key='bm90IGEga2V5': must be SendGrid's verification key",
        ),
        (parse_postmark, {"server_token": "t"}, "from=None: is needed"),
        (
            parse_postmark,
            {"server_token": "t", "from": "a@example.com", "webhook_user": "u"},
            "webhook_password=None: is needed with the other webhook credential",
        ),
        (
            parse_postmark,
            {"server_token": 5, "from": "a@example.com"},
            "server_token='***': must be a non-empty",
        ),
        (
            parse_postmark,
            {"server_token": "t", "from": "a@example.com", "message_stream": 5},
            "message_stream=5: must be a non-empty string",
        ),
    ],
)
def test_configuration_errors_name_the_key(parse, table, message):
    with pytest.raises(ConfigError) as info:
        parse(where("x"), table, {})
    assert message in str(info.value) and "topsecret" not in str(info.value)


def test_sendgrid_accepts_only_p256_verification_keys(event_key):
    _, public = event_key
    table = {"api_key": "SG.x", "from": "hello@example.com", "webhook_public_key": public}
    assert parse_sendgrid(where("sendgrid"), table, {}).verification_key is not None
    rsa_der = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigError, match="not an ECDSA P-256 public key"):
        parse_sendgrid(
            where("sendgrid"), {**table, "webhook_public_key": base64.b64encode(rsa_der).decode()}, {}
        )


def test_channels_toml_names_the_three_kinds(tmp_path):
    text = """
[email]
providers = ["ses", "mail2", "postmark"]
[email.ses]
region = "eu-central-1"
access_key_id = "AKID"
from = "Outreach <hello@example.com>"
[email.mail2]
kind = "sendgrid"
from = "hello@example.com"
[email.postmark]
from = "hello@example.com"
message_stream = "broadcast"
"""
    (tmp_path / "channels.toml").write_text(declared(text), encoding="utf-8")
    env = {
        "OUTREACH_EMAIL_SES_SECRET_ACCESS_KEY": "topsecret",
        "OUTREACH_EMAIL_MAIL2_API_KEY": "SG.key",
        "OUTREACH_EMAIL_POSTMARK_SERVER_TOKEN": "pm-token",
    }
    email = load_channels(tmp_path, environ=env)["email"]
    assert [(p.name, p.kind) for p in email.providers] == [
        ("ses", "ses"),
        ("mail2", "sendgrid"),
        ("postmark", "postmark"),
    ]
    ses, mail2, postmark = (p.settings for p in email.providers)
    assert (ses.secret_access_key, mail2.api_key, postmark.server_token) == (
        "topsecret",
        "SG.key",
        "pm-token",
    )
    assert postmark.message_stream == "broadcast" and mail2.base_url == "https://api.sendgrid.com"
    with pytest.raises(ConfigError, match="unknown key"):
        (tmp_path / "channels.toml").write_text(declared(text + 'api_key = "x"\n'), encoding="utf-8")
        load_channels(tmp_path, environ=env)


def test_sns_trusts_no_topic_unless_one_is_configured_and_fetches_nothing_for_another(
    provider, signer, monkeypatch
):
    key, pem = signer
    fetched: list[str] = []
    monkeypatch.setattr(sns, "fetch", lambda url: fetched.append(url) or b"")
    sns.CERTIFICATES.clear()
    remote = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0123abcd.pem"
    body = notification(key, remote, ses_event("Delivery"))
    with pytest.raises(BadSignature, match="topic_arn is not configured"):
        ses_webhook(ses_config(provider, topic_arn=None), hook(body))
    with pytest.raises(BadSignature, match="is not the configured"):
        ses_webhook(ses_config(provider, topic_arn="arn:aws:sns:eu-central-1:1:other"), hook(body))
    assert fetched == [], "a message from another topic costs no certificate fetch"


def test_sns_fetches_only_certificate_paths_and_not_again_right_after_a_failure(
    provider, signer, monkeypatch
):
    key, _ = signer
    fetched: list[str] = []

    def failing(url: str) -> bytes:
        fetched.append(url)
        raise OSError("unreachable")

    monkeypatch.setattr(sns, "fetch", failing)
    sns.CERTIFICATES.clear()
    config = ses_config(provider)
    elsewhere = "https://sns.eu-central-1.amazonaws.com/some/other/thing"
    with pytest.raises(BadSignature):
        ses_webhook(config, hook(notification(key, elsewhere, ses_event("Delivery"))))
    remote = "https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-0123abcd.pem"
    for _ in range(3):
        # Not the sender's fault: "try later" (503), so SNS sends it again instead of dropping it.
        with pytest.raises(TryLater):
            ses_webhook(config, hook(notification(key, remote, ses_event("Delivery"))))
    assert fetched == [remote]
