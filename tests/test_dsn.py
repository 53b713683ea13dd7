"""Bounces (RFC 3464 delivery status notifications) and complaints (RFC 5965 feedback reports) read
back into statuses of messages sent over SMTP, shaped as real mailers write them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.channels.base import Delivery
from outreach.channels.dsn import DETAIL_LIMIT, normalize_message_id, read_reports, split_mailbox
from outreach.channels.email_message import build_message
from outreach.channels.webhooks import Status

T0 = datetime(2026, 3, 20, 9, 30, tzinfo=UTC)
DELIVERY = Delivery(
    send_id="9b1c77e2-0f3a",
    attempt=1,
    customer_id="c-amelia",
    journey="order_delay",
    step="notice",
    channel="email",
    address="amelia@mail.example.org",
    locale="en_GB",
    subject="Your order is delayed",
    text="Hello Amelia,\nFrom tomorrow your parcel is on its way.",
    html="<p>Hello Amelia</p>",
    utc=T0,
    local=T0,
    category="transactional",
    name="Amelia O'Brien",
)
ORIGINAL = build_message(DELIVERY, "hello@shop.example", "Shop", "shop.example")
#: What SmtpTransport.send returned for the original.
REFERENCE = str(ORIGINAL["Message-ID"])
ORIGINAL_BYTES = ORIGINAL.as_bytes()
ORIGINAL_HEADERS = ORIGINAL_BYTES.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def postfix_dsn(
    recipients: str, *, original: bytes | None = ORIGINAL_BYTES, headers_only: bool = False
) -> bytes:
    """A bounce as Postfix's bounce daemon writes it (message/rfc822, or the headers with RET=HDRS)."""
    head = _crlf(
        "Return-Path: <>\n"
        "Received: by mail.shop.example (Postfix) id 4Q3xYz1Lmnz9; Fri, 20 Mar 2026 09:31:02 +0000 (UTC)\n"
        "Date: Fri, 20 Mar 2026 09:31:02 +0000 (UTC)\n"
        "From: MAILER-DAEMON@mail.shop.example (Mail Delivery System)\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "To: hello@shop.example\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        ' boundary="4Q3xYz1Lmnz9.1774000262/mail.shop.example"\n'
        "Content-Transfer-Encoding: 8bit\n"
        "Message-Id: <20260320093102.4Q3xYz1Lmnz9@mail.shop.example>\n"
        "\n"
        "This is a MIME-encapsulated message.\n"
        "\n"
        "--4Q3xYz1Lmnz9.1774000262/mail.shop.example\n"
        "Content-Description: Notification\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "This is the mail system at host mail.shop.example.\n"
        "\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"
        "\n"
        "--4Q3xYz1Lmnz9.1774000262/mail.shop.example\n"
        "Content-Description: Delivery report\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mail.shop.example\n"
        "X-Postfix-Queue-ID: 4Q3xYz1Lmnz9\n"
        "X-Postfix-Sender: rfc822; hello@shop.example\n"
        "Arrival-Date: Fri, 20 Mar 2026 09:30:00 +0000 (UTC)\n"
        "\n" + recipients.strip("\n") + "\n\n"
    )
    tail = b"--4Q3xYz1Lmnz9.1774000262/mail.shop.example--\r\n"
    if original is None:
        return head + tail
    if headers_only:
        kind = b"Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n"
        body = original.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    else:
        kind = b"Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n"
        body = original
    return head + b"--4Q3xYz1Lmnz9.1774000262/mail.shop.example\r\n" + kind + b"\r\n" + body + b"\r\n" + tail


USER_UNKNOWN = """
Final-Recipient: rfc822; amelia@mail.example.org
Original-Recipient: rfc822;amelia@mail.example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx1.mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <amelia@mail.example.org>: Recipient address
    rejected: User unknown in virtual mailbox table
"""

DELAYED = """
Final-Recipient: rfc822; amelia@mail.example.org
Original-Recipient: rfc822;amelia@mail.example.org
Action: delayed
Status: 4.4.1
Remote-MTA: dns; mx1.mail.example.org
Diagnostic-Code: X-Postfix; connect to mx1.mail.example.org[192.0.2.25]:25: Connection timed out
Will-Retry-Until: Fri, 25 Mar 2026 09:30:00 +0000 (UTC)
"""


def exchange_ndr(status: str, diagnostic: str) -> bytes:
    """A non-delivery report as Exchange Online writes it: an alternative human part, the headers only."""
    boundary = "_000_DM6PR11MB4625ABCDEF_"
    return (
        _crlf(
            "From: Microsoft Outlook\n"
            " <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com>\n"
            "To: <hello@shop.example>\n"
            "Date: Fri, 20 Mar 2026 09:31:05 +0000\n"
            "Subject: Undeliverable: Your order is delayed\n"
            f'Content-Type: multipart/report; report-type="delivery-status";\n\tboundary="{boundary}"\n'
            "Content-Language: en-US\n"
            "Message-ID: <3b5e1a7c-4f0d-4a43-8a16-6b9d1e0c2f11@DM6PR11MB4625.namprd11.prod.outlook.com>\n"
            "Auto-Submitted: auto-replied\n"
            "MIME-Version: 1.0\n"
            "\n"
            f"--{boundary}\n"
            'Content-Type: multipart/alternative; differences=Content-Type;\n\tboundary="_002_alt_"\n'
            "\n"
            "--_002_alt_\n"
            'Content-Type: text/plain; charset="us-ascii"\n'
            "Content-Transfer-Encoding: quoted-printable\n"
            "\n"
            "Your message to amelia@contoso.com couldn't be delivered.\n"
            "\n"
            "--_002_alt_\n"
            'Content-Type: text/html; charset="us-ascii"\n'
            "Content-Transfer-Encoding: quoted-printable\n"
            "\n"
            "<html><body><p>Delivery has failed.</p></body></html>\n"
            "\n"
            "--_002_alt_--\n"
            "\n"
            f"--{boundary}\n"
            "Content-Type: message/delivery-status\n"
            "\n"
            "Reporting-MTA: dns;DM6PR11MB4625.namprd11.prod.outlook.com\n"
            "Received-From-MTA: dns;mail.shop.example\n"
            "Arrival-Date: Fri, 20 Mar 2026 09:31:04 +0000\n"
            "\n"
            "Original-Recipient: rfc822;amelia@contoso.com\n"
            "Final-Recipient: rfc822;amelia@contoso.com\n"
            "Action: failed\n"
            f"Status: {status}\n"
            f"Diagnostic-Code: smtp;{diagnostic}\n"
            "X-Display-Name: Amelia O'Brien\n"
            "\n"
            f"--{boundary}\n"
            'Content-Type: text/rfc822-headers; charset="us-ascii"\n'
            "\n"
        )
        + ORIGINAL_HEADERS.replace(b"Message-ID: ", b"Message-ID:\r\n  ")
        + _crlf(f"\n--{boundary}--\n")
    )


def arf(feedback_type: str, original: bytes = ORIGINAL_BYTES) -> bytes:
    """A feedback loop's complaint (RFC 5965), as a mailbox provider sends it."""
    return (
        _crlf(
            "From: <feedbackloop@fbl.mail.example.org>\n"
            "Date: Sat, 21 Mar 2026 10:00:00 +0000\n"
            "Subject: FW: Your order is delayed\n"
            "To: <abuse@shop.example>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=feedback-report;\n"
            ' boundary="part1_13d.2e68ed54_boundary"\n'
            "\n"
            "--part1_13d.2e68ed54_boundary\n"
            'Content-Type: text/plain; charset="US-ASCII"\n'
            "\n"
            "This is an email abuse report for an email message received from IP 192.0.2.1.\n"
            "\n"
            "--part1_13d.2e68ed54_boundary\n"
            "Content-Type: message/feedback-report\n"
            "\n"
            f"Feedback-Type: {feedback_type}\n"
            "User-Agent: ExampleFBL/1.0\n"
            "Version: 1\n"
            "Original-Mail-From: <hello@shop.example>\n"
            "Original-Rcpt-To: <amelia@mail.example.org>\n"
            "Arrival-Date: Fri, 20 Mar 2026 09:30:05 +0000\n"
            "Reported-Domain: shop.example\n"
            "Source-IP: 192.0.2.1\n"
            "\n"
            "--part1_13d.2e68ed54_boundary\n"
            "Content-Type: message/rfc822\n"
            "Content-Disposition: inline\n"
            "\n"
        )
        + original
        + _crlf("\n--part1_13d.2e68ed54_boundary--\n")
    )


# -- delivery status notifications ---------------------------------------------------------------


def test_postfix_bounce_of_an_unknown_user_is_bounced():
    (status,) = read_reports(postfix_dsn(USER_UNKNOWN))
    assert status.reference == REFERENCE
    assert status.status == "bounced" and status.permanent
    assert status.detail == (
        "5.1.1 smtp; 550 5.1.1 <amelia@mail.example.org>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )


def test_postfix_bounce_with_the_headers_only():
    assert read_reports(postfix_dsn(USER_UNKNOWN, headers_only=True)) == read_reports(
        postfix_dsn(USER_UNKNOWN)
    )


def test_exchange_ndr_with_rfc822_headers_and_a_folded_message_id():
    diagnostic = "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    (status,) = read_reports(exchange_ndr("5.1.10", diagnostic))
    assert status == Status(REFERENCE, "bounced", f"5.1.10 smtp;{diagnostic}", permanent=True,
                            recipient=status.recipient)  # fmt: skip
    assert "@" in status.recipient


def test_a_policy_block_is_a_failure_but_not_the_address_fault():
    diagnostic = "550 5.7.1 Message rejected as spam by Content Filtering."
    (status,) = read_reports(exchange_ndr("5.7.1", diagnostic))
    assert (status.status, status.permanent) == ("failed", False)
    too_big = read_reports(exchange_ndr("5.3.4", "552 5.3.4 Message size exceeds fixed maximum message size"))
    assert [(s.status, s.permanent) for s in too_big] == [("failed", False)]


def test_each_recipient_group_reports_its_own_outcome():
    groups = """
Final-Recipient: rfc822; amelia@mail.example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

Final-Recipient: rfc822; amelia.alias@mail.example.org
Action: failed
Status: 4.4.7
Diagnostic-Code: X-Postfix; delivery temporarily suspended: connect timed out

Final-Recipient: rfc822; amelia.home@mail.example.org
Action: delivered
Status: 2.0.0
Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 12345

Final-Recipient: rfc822; amelia.work@mail.example.org
Action: relayed
Status: 2.0.0

Final-Recipient: rfc822; amelia.old@mail.example.org
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 mailbox full

Final-Recipient: rfc822; amelia.list@mail.example.org
Action: expanded (to 3 members)
Status: 2.0.0
"""
    statuses = read_reports(postfix_dsn(groups))
    assert [(s.status, s.permanent, s.detail) for s in statuses] == [
        ("bounced", True, "5.1.1 smtp; 550 5.1.1 user unknown"),
        ("failed", False, "4.4.7 X-Postfix; delivery temporarily suspended: connect timed out"),
        ("delivered", True, "2.0.0 smtp; 250 2.0.0 Ok: queued as 12345"),
        ("delivered", True, "2.0.0"),
    ]
    assert {s.reference for s in statuses} == {REFERENCE}


def test_a_delayed_dsn_is_no_outcome():
    assert read_reports(postfix_dsn(DELAYED)) == []
    assert read_reports(postfix_dsn(DELAYED, headers_only=True)) == []


def test_a_failure_without_a_readable_status_is_not_the_address_fault():
    groups = "Final-Recipient: rfc822; a@mail.example.org\nAction: FAILED\nStatus: unknown\n"
    (status,) = read_reports(postfix_dsn(groups))
    assert (status.status, status.permanent, status.detail) == ("failed", False, "unknown")


def test_the_detail_is_one_line_of_bounded_length():
    groups = (
        "Final-Recipient: rfc822; a@mail.example.org\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 " + "very long explanation " * 60 + "\n"
    )
    (status,) = read_reports(postfix_dsn(groups))
    assert len(status.detail) == DETAIL_LIMIT and status.detail.endswith("…")
    assert "\n" not in status.detail and "\r" not in status.detail


def test_a_base64_encoded_status_part_is_read():
    fields = (
        b"Reporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    )
    encoded = base64.encodebytes(fields).replace(b"\n", b"\r\n")
    dsn = postfix_dsn(USER_UNKNOWN).replace(
        b"Content-Type: message/delivery-status\r\n\r\n",
        b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"\r\nCUT",
    )
    head, _, rest = dsn.partition(b"CUT")
    dsn = head + rest[rest.index(b"--4Q3x") :]
    assert [(s.status, s.detail) for s in read_reports(dsn)] == [("bounced", "5.1.1")]


def test_internationalised_reports_are_read_too():
    dsn = postfix_dsn(USER_UNKNOWN).replace(b"message/delivery-status", b"message/global-delivery-status")
    dsn = dsn.replace(b"Content-Type: message/rfc822", b"Content-Type: message/global")
    assert [s.status for s in read_reports(dsn)] == ["bounced"]


def test_the_message_id_is_normalised_but_kept_as_written():
    assert normalize_message_id("  <Abc.1@Shop.example>  ") == "<Abc.1@Shop.example>"
    assert normalize_message_id("abc.1@shop.example") == "<abc.1@shop.example>"
    assert normalize_message_id("<abc.1@shop.example> (comment)") == "<abc.1@shop.example>"
    assert normalize_message_id("=?utf-8?q?x?=") == "<=?utf-8?q?x?=>"
    assert normalize_message_id("") is None
    assert normalize_message_id("two words") is None
    assert normalize_message_id("<" + "x" * 1000 + ">") is None
    bare = ORIGINAL_BYTES.replace(REFERENCE.encode(), REFERENCE.strip("<>").encode())
    assert [s.reference for s in read_reports(postfix_dsn(USER_UNKNOWN, original=bare))] == [REFERENCE]


# -- complaints ----------------------------------------------------------------------------------


def test_an_abuse_report_is_a_complaint():
    assert read_reports(arf("abuse")) == [Status(REFERENCE, "complained", "abuse report by ExampleFBL/1.0")]


def test_feedback_that_is_no_complaint_is_ignored():
    for kind in ("not-spam", "auth-failure", "virus", "other"):
        assert read_reports(arf(kind)) == []


# -- what yields nothing -------------------------------------------------------------------------


def test_ordinary_mail_and_reports_without_the_original_yield_nothing():
    assert read_reports(ORIGINAL_BYTES) == []
    assert read_reports(postfix_dsn(USER_UNKNOWN, original=None)) == []
    no_id = ORIGINAL_BYTES.replace(b"Message-ID:", b"X-Removed:")
    assert read_reports(postfix_dsn(USER_UNKNOWN, original=no_id)) == []
    read_receipt = postfix_dsn(USER_UNKNOWN).replace(b"delivery-status", b"disposition-notification")
    assert read_reports(read_receipt) == []
    assert read_reports(b"") == []


# -- mailboxes -----------------------------------------------------------------------------------


def _mbox(*messages: bytes) -> bytes:
    out = b""
    for message in messages:
        body = message.replace(b"\r\n", b"\n")
        body = b"\n".join(
            b">" + line if line.lstrip(b">").startswith(b"From ") else line for line in body.split(b"\n")
        )
        out += b"From MAILER-DAEMON  Fri Mar 20 09:31:02 2026\n" + body.rstrip(b"\n") + b"\n\n"
    return out


def test_an_mbox_of_several_messages():
    mailbox = _mbox(postfix_dsn(USER_UNKNOWN), ORIGINAL_BYTES, arf("abuse"), postfix_dsn(DELAYED))
    messages = list(split_mailbox(mailbox))
    assert len(messages) == 4
    assert [[s.status for s in read_reports(m)] for m in messages] == [["bounced"], [], ["complained"], []]
    # The quoted "From " line of the original's text comes back unquoted.
    assert b"\nFrom tomorrow" in ORIGINAL_BYTES and b">From" in mailbox
    assert b"\nFrom tomorrow" in messages[1] and b">From" not in messages[1]


def test_a_single_message_is_its_own_mailbox():
    assert list(split_mailbox(postfix_dsn(USER_UNKNOWN))) == [postfix_dsn(USER_UNKNOWN)]
    assert list(split_mailbox(b"")) == [] and list(split_mailbox(b"\n\n")) == []


def test_a_from_line_inside_a_paragraph_does_not_split():
    mailbox = (
        b"From a@b Fri Mar 20 09:31:02 2026\nSubject: x\n\nline\nFrom here on\n\nFrom c@d Fri\nSubject: y\n\n"
    )
    assert len(list(split_mailbox(mailbox))) == 2


# -- hostile input -------------------------------------------------------------------------------

EDITS = [b"", b"\r\n", b"\n\n", b"--", b"\x00", b"\xff\xfe", b":", b"<", b">", b"=?", b"\t", "é".encode(),
         b"Content-Type: message/delivery-status\r\n", b"Action: failed", b"5.1.1", b'boundary=""',
         b"Content-Transfer-Encoding: base64\r\n", b"Message-ID: <", b"; charset=utf-16"]  # fmt: skip
VALID = [postfix_dsn(USER_UNKNOWN), exchange_ndr("5.1.1", "550 5.1.1 unknown"), arf("abuse")]


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for position, cut, insert in edits:
        at = position % (len(data) + 1)
        data = data[:at] + insert + data[at + cut :]
    return data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    assert all(isinstance(s, Status) for s in read_reports(data))
    for message in split_mailbox(data):
        read_reports(message)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(VALID),
    st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.integers(0, 40),
            st.sampled_from(EDITS),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_reports_never_raise(valid, edits):
    for status in read_reports(_mutate(valid, edits)):
        assert status.reference.startswith("<") and status.reference.endswith(">")
        assert "\n" not in status.detail and len(status.detail) <= DETAIL_LIMIT


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("5.1.1", "bounced"),  # no such mailbox
        ("5.1.2", "bounced"),  # no such domain
        ("5.2.1", "bounced"),  # mailbox disabled
        ("5.2.2", "failed"),  # mailbox full: the address is good
        ("5.4.7", "failed"),  # delivery time expired: the domain was down for days
        ("5.4.4", "failed"),  # unable to route
        ("5.7.1", "failed"),  # a spam block: about the message
        ("5.0.0", "failed"),  # says nothing about the address
        ("5.1.7", "failed"),  # our sender address is bad: not the customer's
        ("5.1.8", "failed"),  # our sender's system is bad
        ("5.1.5", "failed"),  # "destination address valid"
    ],
)
def test_only_a_status_that_condemns_the_address_is_a_bounce(code, status):
    (found,) = read_reports(exchange_ndr(code, f"550 {code} refused"))
    assert found.status == status and found.permanent is (status == "bounced")
