"""Email through Amazon SES: the ``ses`` provider kind.

Each delivery is one SES API v2 ``SendEmail`` (``POST /v2/email/outbound-emails``) with Simple
content (subject, text and HTML bodies, the List-Unsubscribe headers), signed with AWS Signature
Version 4; the reference is the answer's ``MessageId``. SES reports what became of a message
through Amazon SNS: ``webhook`` checks the SNS signature, confirms the subscription and reads the
SES event in each notification.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..clock import Clock
from ..errors import PermanentChannelError
from . import sns
from .aws_sigv4 import Credentials, sign
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
from .webhooks import Reply, Status, WebhookAnswer, WebhookRequest

SEND_PATH = "/v2/email/outbound-emails"
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
#: Error types that say "not now": SES's throttling and AWS's generic ones.
TRANSIENT_ERRORS = frozenset(
    {"TooManyRequestsException", "LimitExceededException", "ThrottlingException", "Throttling",
     "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure", "InternalServerError"}
)  # fmt: skip
#: The one MessageRejected text about a recipient: SES refusing an address it suppresses.
RECIPIENT_REJECTED = ("address blacklisted",)


@dataclass(frozen=True)
class SesConfig:
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    sender: Mailbox
    #: SES's API: https://email.<region>.amazonaws.com unless configured.
    base_url: str
    session_token: str | None = field(default=None, repr=False)
    configuration_set: str | None = None
    timeout: float = 10.0
    #: Only notifications of this SNS topic are accepted (None: any topic, once signed).
    topic_arn: str | None = None
    #: A PEM certificate file accepted as the SigningCertURL naming it (tests, private set-ups).
    sns_certificate: str | None = None

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.access_key_id, self.secret_access_key, self.session_token)


class SesTransport:
    """Sends each delivery with one signed SendEmail request."""

    def __init__(self, name: str, config: SesConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.client = HttpClient(name, config.base_url, config.timeout, clock=clock)
        parts = urlsplit(config.base_url)
        default_port = 443 if parts.scheme == "https" else 80
        assert parts.hostname is not None
        #: The Host header as sent (and signed).
        self._host = parts.hostname + (f":{parts.port}" if parts.port not in (None, default_port) else "")
        self._path = self.client.path(SEND_PATH)

    def close(self) -> None:
        self.client.close()

    def request_body(self, delivery: Delivery) -> dict[str, Any]:
        parts = email_parts(delivery, self.config.sender, "ses")
        if not parts.recipient.local_ascii:
            # SES takes addresses in 7-bit ASCII only; another provider may take this one.
            raise PermanentChannelError(
                f"ses: {parts.recipient.address!r} has a non-ASCII local part, which SES cannot send to",
                address=False,
            )
        body: dict[str, Any] = {"Subject": {"Data": parts.subject, "Charset": "UTF-8"},
                                "Body": {"Text": {"Data": parts.text, "Charset": "UTF-8"}}}  # fmt: skip
        if parts.html is not None:
            body["Body"]["Html"] = {"Data": parts.html, "Charset": "UTF-8"}
        if parts.headers:
            body["Headers"] = [{"Name": k, "Value": v} for k, v in parts.headers.items()]
        request: dict[str, Any] = {
            # SES writes these headers as given: a name beyond ASCII goes as an RFC 2047 encoded word.
            "FromEmailAddress": parts.sender.formatted(encode=True),
            "Destination": {"ToAddresses": [parts.recipient.formatted(encode=True)]},
            "Content": {"Simple": body},
        }
        if self.config.configuration_set:
            request["ConfigurationSetName"] = self.config.configuration_set
        return request

    def send(self, delivery: Delivery) -> str:
        """Send one delivery; returns SES's MessageId."""
        payload = json.dumps(self.request_body(delivery), ensure_ascii=False, separators=(",", ":"))
        data = payload.encode("utf-8")
        path, _, query = self._path.partition("?")
        headers = {"Content-Type": "application/json"}
        headers |= sign(self.config.credentials, region=self.config.region, service="ses", method="POST",
                        host=self._host, path=path, query=query, headers=headers, body=data,
                        now=self.client.clock.now())  # fmt: skip
        response = self.client.request("POST", self._path, data, {"Host": self._host, **headers})
        if response.ok:
            answer = response.json()
            reference = answer.get("MessageId") if isinstance(answer, dict) else None
            if isinstance(reference, str) and reference:
                return reference
            raise self.client.unreadable(f"an answer without a MessageId: {response.text[:200]}")
        raise refusal(self.client, response)


def error_type(response: Response) -> tuple[str, str]:
    """The AWS error type (x-amzn-ErrorType, or the body's ``__type``/``code``) and its message."""
    data = response.json()
    data = data if isinstance(data, dict) else {}
    kind = response.headers.get("x-amzn-ErrorType") or str(data.get("__type") or data.get("code") or "")
    kind = kind.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    message = str(data.get("message") or data.get("Message") or response.text)
    return kind, message


def refusal(client: HttpClient, response: Response) -> Exception:
    """The channel error for an SES error answer, by its error type.

    MessageRejected is about the message or our account (invalid content, a sender not verified,
    a recipient not verified while the account is in the sandbox), so it blames the address only
    when SES says the address itself is on its suppression list ("Address blacklisted").
    """
    kind, message = error_type(response)
    text = f"HTTP {response.status} {kind or 'error'}: {message[:300]}"
    if kind in TRANSIENT_ERRORS or response.status == 429 or response.status >= 500:
        return client.transient(response, text)
    if kind == "MessageRejected":
        lower = message.lower()
        if "quota exceeded" in lower or "rate exceeded" in lower:
            return client.transient(response, text)
        return client.permanent(text, address=any(word in lower for word in RECIPIENT_REJECTED))
    # AccountSuspended, SendingPaused, MailFromDomainNotVerified, NotFound (the configuration set),
    # BadRequest, credentials and signature errors: ours to fix, not the customer's.
    return refused(client, response, text)


# -- webhook: SES events through SNS ------------------------------------------------------------


def _bounce(event: Mapping[str, Any]) -> tuple[str, bool, str]:
    bounce = event.get("bounce")
    bounce = bounce if isinstance(bounce, dict) else {}
    kind = str(bounce.get("bounceType", ""))
    detail = f"{kind} {bounce.get('bounceSubType', '')}".strip()
    recipients = bounce.get("bouncedRecipients")
    if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict):
        diagnostic = recipients[0].get("diagnosticCode")
        detail += f": {diagnostic}" if diagnostic else ""
    if kind == "Permanent":
        return "bounced", True, detail
    # Transient (mailbox full, message too large...) and Undetermined: not the address's fault.
    return "failed", False, detail


def ses_status(event: Mapping[str, Any]) -> Status | None:
    """The status an SES event (event publishing's ``eventType`` or a notification's
    ``notificationType``) says about its message; None for events that say nothing of it."""
    kind = str(event.get("eventType") or event.get("notificationType") or "")
    mail = event.get("mail")
    reference = mail.get("messageId") if isinstance(mail, dict) else None
    if not isinstance(reference, str) or not reference:
        return None
    if kind == "Send":
        return Status(reference, "accepted")
    if kind == "Delivery":
        return Status(reference, "delivered")
    if kind in ("Open", "Click"):
        return Status(reference, "read", kind.lower())
    if kind == "Bounce":
        status, permanent, detail = _bounce(event)
        return Status(reference, status, detail, permanent)
    if kind == "Complaint":
        complaint = event.get("complaint")
        feedback = complaint.get("complaintFeedbackType", "") if isinstance(complaint, dict) else ""
        if feedback == "not-spam":
            return None  # the recipient said the message is *not* spam: no complaint
        return Status(reference, "complained", str(feedback or ""))
    if kind == "Reject":
        reject = event.get("reject")
        reason = reject.get("reason", "") if isinstance(reject, dict) else ""
        return Status(reference, "failed", f"rejected: {reason}".strip(), permanent=False)
    if kind == "Rendering Failure":
        failure = event.get("failure")
        reason = failure.get("errorMessage", "") if isinstance(failure, dict) else ""
        return Status(reference, "failed", f"rendering failure: {reason}".strip(), permanent=False)
    # DeliveryDelay (SES keeps trying), Subscription, and anything newer: nothing to record.
    return None


def webhook(config: SesConfig, request: WebhookRequest) -> WebhookAnswer:
    """An SNS message: a subscription confirmation is confirmed, a notification read as an SES event."""
    message = sns.verify(request.body, certificate=config.sns_certificate, topic_arn=config.topic_arn)
    if message.type == "SubscriptionConfirmation":
        problem = sns.confirm(message)
        if problem:
            return WebhookAnswer(reply=Reply(502, f"SNS subscription not confirmed: {problem}"))
        return WebhookAnswer(reply=Reply(200, "SNS subscription confirmed"))
    if message.type != "Notification":
        return WebhookAnswer(reply=Reply(200, ""))
    try:
        event = json.loads(message.message)
    except ValueError:
        return WebhookAnswer()  # a signed message that is no SES event (a test publish): nothing to do
    status = ses_status(event) if isinstance(event, dict) else None
    return WebhookAnswer(events=[status] if status else [])


# -- configuration ----------------------------------------------------------------------------


def parse(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> SesConfig | None:
    """The settings of an ``ses`` provider table (None when it names none of the required keys)."""
    if not any(table.get(key) for key in ("region", "access_key_id", "secret_access_key", "from")):
        return None
    region = text_key(where, table, "region", required=True)
    assert region is not None
    if not REGION.match(region):
        raise where.fail("region", region, "must be an AWS region like 'eu-west-1'")
    key_id = text_key(where, table, "access_key_id", required=True)
    secret = text_key(where, table, "secret_access_key", required=True)
    assert key_id is not None and secret is not None
    topic_arn = text_key(where, table, "topic_arn")
    if topic_arn is not None and not topic_arn.startswith("arn:aws"):
        raise where.fail("topic_arn", topic_arn, "must be an SNS topic ARN (arn:aws:sns:...)")
    certificate = text_key(where, table, "sns_certificate")
    if certificate is not None and not Path(certificate).is_file():
        raise where.fail("sns_certificate", certificate, "must be the path of a PEM certificate file")
    return SesConfig(
        region=region,
        access_key_id=key_id,
        secret_access_key=secret,
        sender=sender_key(where, table),
        session_token=text_key(where, table, "session_token"),
        configuration_set=text_key(where, table, "configuration_set"),
        base_url=base_url_key(where, table, f"https://email.{region}.amazonaws.com"),
        timeout=timeout_key(where, table),
        topic_arn=topic_arn,
        sns_certificate=certificate,
    )


def build(channel: str, config: SesConfig) -> SesTransport:
    return SesTransport(channel, config)


KIND: ProviderKind[SesConfig] = ProviderKind(
    name="ses",
    description="email through Amazon SES (API v2, SigV4); events through SNS",
    keys=COMMON_KEYS
    | {
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "configuration_set",
        "topic_arn",
        "sns_certificate",
    },  # fmt: skip
    parse=parse,
    build=build,
    webhook=webhook,
)
