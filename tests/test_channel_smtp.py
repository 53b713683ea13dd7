"""The SMTP transport against a real aiosmtpd server on loopback: encoding, headers, TLS, errors."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from outreach.channels.base import Delivery
from outreach.channels.email_message import build_message
from outreach.channels.smtp import SmtpConfig, SmtpTransport
from outreach.errors import PermanentChannelError, TransientChannelError

SENDER = "hello@example.com"
UTC_AT = datetime(2026, 3, 20, 9, 30, tzinfo=UTC)

#: locale -> (display name, subject, text) in the locale's script.
SAMPLES = {
    "en": ("Amelia O'Brien", "Your order is on its way", "Hello Amelia,\nyour parcel ships today."),
    "de": (
        "Jürgen Größe",
        "Ihre Bestellung verspätet sich – neue Lieferung am Donnerstag, 26. März, zwischen 9 und 12 Uhr",
        "Hallo Jürgen,\nleider verzögert sich Ihre Lieferung. Straße, Maß, Grüße.",
    ),
    "he": ("דנה לוי", "ההזמנה שלך בדרך אלייך", "שלום דנה,\nההזמנה שלך יצאה היום."),
    "ar": ("فاطمة الزهراء", "طلبك في الطريق إليك", "مرحبا فاطمة،\nتم شحن طلبك اليوم."),
    "ja": (
        "山田 太郎",
        "ご注文の商品は配送中です。お届け予定日は3月26日（木）の午前中となります。ご不在の場合は再配達をご依頼ください",
        "山田様\nご注文ありがとうございます。本日発送いたしました。",
    ),
    "zh": ("王小明", "您的订单正在配送中，预计周四送达", "王小明您好：\n您的订单已于今天发货。"),
    "vi": (
        "Nguyễn Thị Hương",
        "Đơn hàng của bạn đang được giao",
        "Chào Hương,\nđơn hàng đã được gửi đi hôm nay.",
    ),
    "hu": (
        "Kovács Árpád",
        "Árvíztűrő tükörfúrógép – a rendelése úton van",
        "Kedves Árpád!\nŐszintén köszönjük.",
    ),
    "pt_BR": ("João Conceição", "Seu pedido está a caminho", "Olá João,\nseu pedido saiu para entrega hoje."),
    "it": ("Niccolò Località", "Il tuo ordine è in viaggio", "Ciao Niccolò,\nil tuo ordine è partito oggi."),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def delivery(locale: str = "en", **changes) -> Delivery:
    name, subject, text = SAMPLES[locale]
    base = Delivery(
        send_id="3f2a9c0d1e",
        attempt=1,
        customer_id="c-1",
        journey="order_delay",
        step="notice",
        channel="email",
        address="customer@example.org",
        locale=locale,
        subject=subject,
        text=text + "\n",
        html=f"<p>{text}</p>\n",
        utc=UTC_AT,
        local=UTC_AT,
        category="lifecycle",
        name=name,
    )
    return replace(base, **changes)


class Recorder:
    """aiosmtpd handler: records every message; replies can be switched to failures."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None
        self.logins: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append(
            {
                "peer": session.peer,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "raw": envelope.original_content,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 OK queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"outreach", b"s3cret")
        if ok:
            self.logins.append(auth_data.login)
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=False)


def start(recorder: Recorder, port: int | None = None, **kwargs) -> Controller:
    """A server on a free loopback port; SMTPUTF8 off unless asked (aiosmtpd turns it on)."""
    kwargs.setdefault("enable_SMTPUTF8", False)
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port or _free_port(), server_hostname="mx.test", **kwargs
    )
    controller.start()
    return controller


@pytest.fixture
def server() -> Iterator[tuple[Controller, Recorder]]:
    recorder = Recorder()
    controller = start(recorder)
    yield controller, recorder
    controller.stop()


def config(port: int, **changes) -> SmtpConfig:
    return SmtpConfig(
        **{"host": "127.0.0.1", "port": port, "sender_address": SENDER, "sender_name": "Outreach", **changes}
    )


@pytest.fixture
def transport(server) -> Iterator[SmtpTransport]:
    controller, _ = server
    with SmtpTransport(config(controller.port, timeout=5)) as smtp:
        yield smtp


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def body_text(part) -> str:
    return part.get_content().replace("\r\n", "\n")


# -- the message ---------------------------------------------------------------------------


@pytest.mark.parametrize("locale", sorted(SAMPLES))
def test_message_in_every_script_round_trips(locale, server, transport):
    _, recorder = server
    sent = delivery(locale)
    reference = transport.send(sent)

    [received] = recorder.messages
    assert received["mail_from"] == SENDER
    assert received["rcpt_tos"] == [sent.address]
    raw = received["raw"]
    # The whole message is 7-bit ASCII: non-ASCII headers are RFC 2047 encoded words,
    # bodies quoted-printable or base64.
    raw.decode("ascii")
    if not SAMPLES[locale][1].isascii():
        assert b"=?utf-8?" in header_block(raw)

    msg = parse(raw)
    assert msg["Subject"] == sent.subject
    [to] = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == (sent.name, sent.address)
    assert msg["From"].addresses[0].addr_spec == SENDER
    assert msg["Message-ID"] == reference == f"<{sent.send_id}@example.com>"
    assert msg["X-Outreach-Send-Id"] == sent.send_id
    assert msg["Date"].datetime == sent.utc

    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert plain.get_content_type() == "text/plain" and plain.get_content_charset() == "utf-8"
    assert html.get_content_type() == "text/html"
    assert body_text(plain) == sent.text
    assert body_text(html) == sent.html
    assert "List-Unsubscribe" not in msg and "List-Unsubscribe-Post" not in msg


def test_text_only_when_there_is_no_html():
    msg = build_message(delivery("de", html=None), SENDER, "Outreach", "example.com")
    parsed = parse(msg.as_bytes())
    assert parsed.get_content_type() == "text/plain"
    assert body_text(parsed) == delivery("de").text


def test_message_id_is_the_same_for_every_attempt(server, transport):
    _, recorder = server
    first = transport.send(delivery("he", attempt=1))
    second = transport.send(delivery("he", attempt=2))
    assert first == second == "<3f2a9c0d1e@example.com>"
    ids = {parse(m["raw"])["Message-ID"] for m in recorder.messages}
    assert ids == {first}


def test_list_unsubscribe_only_with_an_unsubscribe_url():
    with_url = delivery(
        "ar",
        unsubscribe_url="https://example.com/u/tok-123?c=ar",
        unsubscribe_mailto="mailto:unsubscribe@example.com?subject=tok-123",
    )
    raw = build_message(with_url, SENDER, "Outreach", "example.com").as_bytes()
    msg = parse(raw)
    assert str(msg["List-Unsubscribe"]).split(", ") == [
        "<mailto:unsubscribe@example.com?subject=tok-123>",
        "<https://example.com/u/tok-123?c=ar>",
    ]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # URIs are never turned into encoded words, however long.
    long_url = "https://example.com/unsubscribe?token=" + "a" * 150
    raw = build_message(replace(with_url, unsubscribe_url=long_url), SENDER, "", "example.com").as_bytes()
    assert f"<{long_url}>".encode() in raw and b"=?utf-8?q?=3Chttps" not in raw

    transactional = build_message(delivery("ar"), SENDER, "Outreach", "example.com")
    assert "List-Unsubscribe" not in transactional and "List-Unsubscribe-Post" not in transactional
    # RFC 8058: one-click only for an https link (a development http link has the header alone).
    http = parse(build_message(replace(with_url, unsubscribe_url="http://localhost:8000/u/tok"), SENDER, "",
                               "example.com").as_bytes())  # fmt: skip
    assert "<http://localhost:8000/u/tok>" in str(http["List-Unsubscribe"])
    assert "List-Unsubscribe-Post" not in http


MALICIOUS = [
    "Eve\r\nBcc: x@evil.example",
    "Eve\nBcc: x@evil.example",
    "Eve\rBcc: x@evil.example",
    "Eve\u2028Bcc: x@evil.example",
    "Eve\x85Bcc: x@evil.example",
    "Eve\r\n\r\nInjected body",
    'Eve" <x@evil.example>, "Mallory',
]


@pytest.mark.parametrize("evil", MALICIOUS)
def test_header_injection_adds_no_header_and_no_recipient(evil, server, transport):
    _, recorder = server
    transport.send(
        delivery(
            "en",
            name=evil,
            subject="Hello " + evil,
            unsubscribe_url="https://example.com/u?t=1>\r\nBcc: x@evil.example",
        )
    )
    [received] = recorder.messages
    assert received["rcpt_tos"] == ["customer@example.org"]
    msg = parse(received["raw"])
    assert "Bcc" not in msg and "Cc" not in msg
    assert sorted(msg.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "X-Outreach-Send-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "MIME-Version",
            "Content-Type",
        ]
    )
    [to] = msg["To"].addresses
    assert to.addr_spec == "customer@example.org"
    assert "\n" not in to.display_name and "\r" not in msg["Subject"]
    for line in header_block(received["raw"]).split(b"\r\n"):
        assert not line.lower().startswith((b"bcc", b"injected"))


def test_an_address_with_a_line_break_is_refused(server, transport):
    _, recorder = server
    with pytest.raises(PermanentChannelError, match="invalid recipient"):
        transport.send(delivery(address="customer@example.org\r\nBcc: x@evil.example"))
    assert recorder.messages == []


# -- connections ---------------------------------------------------------------------------


def test_one_connection_per_thread_is_reused(server, transport):
    _, recorder = server
    transport.send(delivery("en"))
    transport.send(delivery("de"))
    assert len({m["peer"] for m in recorder.messages}) == 1

    other = threading.Thread(target=transport.send, args=(delivery("ja"),))
    other.start()
    other.join()
    assert len({m["peer"] for m in recorder.messages}) == 2


def test_reconnects_when_the_server_dropped_the_connection():
    recorder = Recorder()
    controller = start(recorder)
    port = controller.port
    with SmtpTransport(config(port, timeout=5)) as smtp:
        smtp.send(delivery("en"))
        # A restart closes the kept connection; the next send must notice and reconnect.
        controller.stop()
        controller = start(recorder, port=port)
        try:
            smtp.send(delivery("vi"))
        finally:
            controller.stop()
    assert len(recorder.messages) == 2
    assert len({m["peer"] for m in recorder.messages}) == 2


def test_connection_refused_is_transient():
    with (
        SmtpTransport(config(_free_port(), timeout=2)) as smtp,
        pytest.raises(TransientChannelError, match="ConnectionRefused"),
    ):
        smtp.send(delivery())


def test_a_server_that_never_greets_times_out_as_transient():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with SmtpTransport(config(port, timeout=0.3)) as smtp, pytest.raises(TransientChannelError):
            smtp.send(delivery())


# -- replies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "reply", "error"),
    [
        ("rcpt", "550 5.1.1 No such user here", PermanentChannelError),
        ("rcpt", "450 4.2.1 Mailbox busy", TransientChannelError),
        ("data", "554 5.7.1 Message rejected as spam", PermanentChannelError),
        ("data", "451 4.3.0 Try again later", TransientChannelError),
        ("data", "421 4.3.2 Shutting down", TransientChannelError),
    ],
)
def test_smtp_replies_map_to_transient_or_permanent(where, reply, error, server, transport):
    _, recorder = server
    setattr(recorder, f"{where}_reply", reply)
    with pytest.raises(error) as caught:
        transport.send(delivery())
    code, text = reply.split(" ", 1)
    assert code in str(caught.value) and text.split(" ", 1)[1] in str(caught.value)
    # The connection is still usable (RSET) or replaced (421): the next send goes out.
    setattr(recorder, f"{where}_reply", None)
    transport.send(delivery("it"))
    assert len(recorder.messages) == 1


def test_an_international_domain_goes_out_as_idna(server, transport):
    _, recorder = server
    transport.send(delivery(address="kunde@bücher.example"))
    [received] = recorder.messages
    assert received["rcpt_tos"] == ["kunde@xn--bcher-kva.example"]
    assert parse(received["raw"])["To"].addresses[0].addr_spec == "kunde@xn--bcher-kva.example"


def test_a_non_ascii_mailbox_needs_smtputf8(server, transport):
    _, recorder = server
    with pytest.raises(PermanentChannelError, match="SMTPUTF8"):
        transport.send(delivery(address="jürgen@beispiel.example"))
    assert recorder.messages == []

    smtputf8 = Recorder()
    controller = start(smtputf8, enable_SMTPUTF8=True)
    try:
        with SmtpTransport(config(controller.port, timeout=5)) as smtp:
            smtp.send(delivery("de", address="jürgen@beispiel.example"))
    finally:
        controller.stop()
    [received] = smtputf8.messages
    assert received["rcpt_tos"] == ["jürgen@beispiel.example"]
    # SMTPUTF8 headers are raw UTF-8 (RFC 6532): parse them as text.
    msg = email.message_from_string(received["raw"].decode("utf-8"), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "jürgen@beispiel.example"
    assert msg["Subject"] == SAMPLES["de"][1]


@pytest.mark.parametrize(
    ("changes", "missing"),
    [({"security": "starttls"}, "STARTTLS"), ({"username": "outreach", "password": "x"}, "AUTH")],
)
def test_a_server_without_starttls_or_auth_is_permanent(changes, missing, server):
    controller, recorder = server
    with (
        SmtpTransport(config(controller.port, timeout=5, **changes)) as smtp,
        pytest.raises(PermanentChannelError, match=f"not supported by the server.*{missing}"),
    ):
        smtp.send(delivery())
    assert recorder.messages == []


# -- TLS and AUTH --------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with the openssl command (no network, no CA)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls(tmp_path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only the test certificate)."""
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    return server_ctx, ssl.create_default_context(cafile=str(cert))


def test_starttls_with_auth(tls):
    server_ctx, client_ctx = tls
    recorder = Recorder()
    controller = start(
        recorder,
        tls_context=server_ctx,
        require_starttls=True,
        auth_required=True,
        authenticator=recorder.authenticate,
    )
    try:
        good = config(
            controller.port,
            security="starttls",
            username="outreach",
            password="s3cret",
            ssl_context=client_ctx,
            timeout=5,
        )
        with SmtpTransport(good) as smtp:
            assert smtp.send(delivery("hu")) == "<3f2a9c0d1e@example.com>"
        with (
            SmtpTransport(replace(good, password="wrong")) as smtp,
            pytest.raises(PermanentChannelError) as bad,
        ):
            smtp.send(delivery("hu"))
        assert "535" in str(bad.value)
    finally:
        controller.stop()
    [received] = recorder.messages
    assert received["tls"] and recorder.logins == [b"outreach"]
    assert parse(received["raw"])["Subject"] == SAMPLES["hu"][1]


def test_implicit_tls(tls):
    server_ctx, client_ctx = tls
    recorder = Recorder()
    controller = start(recorder, ssl_context=server_ctx)
    try:
        with SmtpTransport(
            config(controller.port, security="tls", ssl_context=client_ctx, timeout=5)
        ) as smtp:
            smtp.send(delivery("zh"))
            smtp.send(delivery("zh", attempt=2))
    finally:
        controller.stop()
    assert [m["tls"] for m in recorder.messages] == [True, True]
    assert len({m["peer"] for m in recorder.messages}) == 1


def test_an_untrusted_certificate_is_transient(tls):
    server_ctx, _ = tls
    recorder = Recorder()
    controller = start(recorder, ssl_context=server_ctx)
    try:
        # The system's CAs do not know the test certificate.
        with (
            SmtpTransport(config(controller.port, security="tls", timeout=5)) as smtp,
            pytest.raises(TransientChannelError, match="CERTIFICATE_VERIFY_FAILED|SSL"),
        ):
            smtp.send(delivery())
    finally:
        controller.stop()
    assert recorder.messages == []
