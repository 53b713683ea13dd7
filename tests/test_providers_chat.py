"""The chat-app providers (WhatsApp Cloud API, LINE, Telegram) against a loopback server that checks
each documented request and answers each documented success and error; their webhooks; their settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from outreach.channels.base import ApprovedMessage, Delivery
from outreach.channels.config import build_transports, load_channels
from outreach.channels.line import LineConfig, LineTransport, retry_key
from outreach.channels.line import parse as parse_line
from outreach.channels.line import webhook as line_webhook
from outreach.channels.parsing import Where
from outreach.channels.registry import PROVIDERS
from outreach.channels.telegram import TelegramConfig, TelegramTransport
from outreach.channels.telegram import parse as parse_telegram
from outreach.channels.telegram import webhook as telegram_webhook
from outreach.channels.webhooks import (
    BadSignature,
    Blocked,
    Inbound,
    Reply,
    Status,
    Unblocked,
    WebhookRequest,
)
from outreach.channels.whatsapp_cloud import (
    DEFAULT_API_VERSION,
    WhatsAppCloudConfig,
    WhatsAppCloudTransport,
    WindowClosed,
)
from outreach.channels.whatsapp_cloud import parse as parse_whatsapp
from outreach.channels.whatsapp_cloud import webhook as whatsapp_webhook
from outreach.clock import SimulatedClock
from outreach.errors import ConfigError, PermanentChannelError, TransientChannelError

from .helpers import declared
from .loopback import Loopback, serving

T0 = datetime(2026, 3, 20, 6, 0, tzinfo=UTC)
TOKEN = "EAAG-test-access-token"
APP_SECRET = "meta-app-secret-0123"
VERIFY = "verify-me-42"
LINE_TOKEN = "line-channel-access-token"
LINE_SECRET = "line-channel-secret-0123"
LINE_USER = "U" + "4af4980629" * 3 + "ab"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TG_SECRET = "tg_webhook-secret_01"

DELIVERY = Delivery(
    send_id="9b1c77e2",
    attempt=1,
    customer_id="c-ana",
    journey="order_delay",
    step="notice",
    channel="whatsapp",
    address="+5511987654321",
    locale="pt_BR",
    subject=None,
    text="Olá Ana, seu pedido atrasou – nova entrega quinta-feira. 📦",
    html=None,
    utc=T0,
    local=T0,
)


class Provider(Loopback):
    """The chat APIs: JSON answers, an empty object unless scripted."""

    def __init__(self) -> None:
        super().__init__()
        self.default = (200, {"Content-Type": "application/json"}, {})


@pytest.fixture
def provider() -> Iterator[Provider]:
    with serving(Provider()) as server:
        yield server


def where() -> Where:
    return Where(Path("config/channels.toml"), "chat", "p")


def request(body: bytes, method: str = "POST", query: dict | None = None, **headers: str) -> WebhookRequest:
    lowered = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return WebhookRequest(
        method, "https://outreach.example.com/v1/webhooks/chat/p", lowered, query or {}, body
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# == WhatsApp Cloud API ====================================================================


@pytest.fixture
def whatsapp(provider) -> Iterator[WhatsAppCloudTransport]:
    config = WhatsAppCloudConfig("106540352242922", TOKEN, APP_SECRET, VERIFY, base_url=provider.url)
    transport = WhatsAppCloudTransport("whatsapp", config)
    yield transport
    transport.close()


def graph_error(code: int, message: str, details: str = "") -> dict:
    data = {"messaging_product": "whatsapp", "details": details} if details else {}
    return {"error": {"message": message, "type": "OAuthException", "code": code, "error_data": data}}


def test_whatsapp_sends_text_with_the_bearer_token_and_returns_the_wamid(provider, whatsapp):
    provider.answer(200, {"messaging_product": "whatsapp", "messages": [{"id": "wamid.HBgM1"}]})
    assert whatsapp.send(DELIVERY) == "wamid.HBgM1"
    [sent] = provider.requests
    assert sent["path"] == f"/{DEFAULT_API_VERSION}/106540352242922/messages"
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511987654321",
        "type": "text",
        "text": {"body": DELIVERY.text},
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            ApprovedMessage("order_delay", "pt_BR", ("Ana", "quinta-feira")),
            {
                "name": "order_delay",
                "language": {"code": "pt_BR"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "quinta-feira"},
                        ],
                    }
                ],
            },
        ),
        (ApprovedMessage("hello_world", "he"), {"name": "hello_world", "language": {"code": "he"}}),
    ],
)
def test_whatsapp_sends_an_approved_template_outside_the_window(provider, whatsapp, template, expected):
    provider.answer(200, {"messages": [{"id": "wamid.T1", "message_status": "accepted"}]})
    assert whatsapp.send(replace(DELIVERY, template=template)) == "wamid.T1"
    body = provider.json()
    assert body["type"] == "template" and "text" not in body
    assert body["template"] == expected


def test_whatsapp_without_a_wamid_in_the_answer_names_the_send(provider, whatsapp):
    provider.answer(200, {"messaging_product": "whatsapp"})
    assert whatsapp.send(DELIVERY) == "whatsapp_cloud:9b1c77e2"


def test_whatsapp_refuses_a_number_not_in_e164_without_asking_meta(provider, whatsapp):
    with pytest.raises(PermanentChannelError, match="E.164") as caught:
        whatsapp.send(replace(DELIVERY, address="011 987654321"))
    assert caught.value.address is True
    assert provider.requests == []


@pytest.mark.parametrize(
    ("status", "code", "kind", "address"),
    [
        (400, 131026, PermanentChannelError, True),  # undeliverable: not on WhatsApp
        (400, 131047, WindowClosed, False),  # 24 h since the customer wrote: send a template
        (400, 131051, PermanentChannelError, False),  # unsupported message type
        (400, 132000, PermanentChannelError, False),  # template parameter count mismatch
        (404, 132001, PermanentChannelError, False),  # template does not exist
        (400, 100, PermanentChannelError, False),  # invalid parameter: our request
        (401, 190, PermanentChannelError, False),  # access token expired
        (500, 3, PermanentChannelError, False),  # capability: not fixed by waiting, whatever the status
        (400, 131056, TransientChannelError, None),  # pair rate limit
        (400, 130429, TransientChannelError, None),  # throughput
        (400, 131048, TransientChannelError, None),  # spam rate limit
        (400, 80007, TransientChannelError, None),  # account rate limit
        (500, 131000, TransientChannelError, None),  # something went wrong
        (503, 1, TransientChannelError, None),  # any 5xx
        (429, 4, TransientChannelError, None),  # app rate limit
    ],
)
def test_whatsapp_errors_by_graph_code(provider, whatsapp, status, code, kind, address):
    provider.answer(status, graph_error(code, f"(#{code}) Some title", "what Meta says"))
    with pytest.raises(kind) as caught:
        whatsapp.send(DELIVERY)
    assert f"(#{code}) Some title: what Meta says" in str(caught.value)
    assert type(caught.value) is kind
    if address is not None:
        assert caught.value.address is address
    assert TOKEN not in str(caught.value)


def test_whatsapp_errors_without_a_graph_body_go_by_status(provider, whatsapp):
    provider.answer(503, b"<html>down</html>", **{"Retry-After": "7"})
    with pytest.raises(TransientChannelError) as caught:
        whatsapp.send(DELIVERY)
    assert caught.value.retry_after == 7
    provider.answer(404, b"no such path")
    with pytest.raises(PermanentChannelError) as refused:
        whatsapp.send(DELIVERY)
    assert refused.value.address is False


def test_whatsapp_retry_after_as_a_date_is_read_on_the_given_clock(provider):
    config = WhatsAppCloudConfig("1", TOKEN, base_url=provider.url)
    transport = WhatsAppCloudTransport("whatsapp", config, clock=SimulatedClock(T0))
    provider.answer(
        429,
        graph_error(130429, "(#130429) Rate limit hit"),
        **{"Retry-After": format_datetime(T0 + timedelta(seconds=90), usegmt=True)},
    )
    try:
        with pytest.raises(TransientChannelError) as caught:
            transport.send(DELIVERY)
    finally:
        transport.close()
    assert caught.value.retry_after == 90


def _meta_body(value: dict) -> bytes:
    change = {"field": "messages", "value": {"messaging_product": "whatsapp", **value}}
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    ).encode()


def _meta_signed(body: bytes, secret: str = APP_SECRET) -> WebhookRequest:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return request(body, x_hub_signature_256=f"sha256={digest}")


CONFIG = WhatsAppCloudConfig("106540352242922", TOKEN, APP_SECRET, VERIFY)
METADATA = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}


def test_whatsapp_webhook_maps_each_status():
    statuses = [
        {"id": "wamid.A", "status": "sent", "recipient_id": "5511987654321"},
        {"id": "wamid.A", "status": "delivered"},
        {"id": "wamid.A", "status": "read"},
        {"id": "wamid.B", "status": "deleted"},
        {
            "id": "wamid.C",
            "status": "failed",
            "errors": [{"code": 131026, "title": "Message undeliverable", "error_data": {"details": "x"}}],
        },
        {
            "id": "wamid.D",
            "status": "failed",
            "errors": [{"code": 131049, "title": "Meta chose not to deliver"}],
        },
        {"id": "wamid.E", "status": "failed", "errors": [{"code": 131047, "title": "Re-engagement message"}]},
    ]
    answer = whatsapp_webhook(CONFIG, _meta_signed(_meta_body({"metadata": METADATA, "statuses": statuses})))
    assert answer.reply is None
    assert answer.events == [
        Status("wamid.A", "accepted", ""),
        Status("wamid.A", "delivered", ""),
        Status("wamid.A", "read", ""),
        Status("wamid.C", "failed", "(#131026) Message undeliverable: x", permanent=True),
        Status("wamid.D", "failed", "(#131049) Meta chose not to deliver", permanent=False),
        Status("wamid.E", "failed", "(#131047) Re-engagement message", permanent=False),
    ]


def test_whatsapp_webhook_reads_inbound_messages_of_our_number_only():
    messages = [
        {"from": "5511987654321", "id": "wamid.in1", "type": "text", "text": {"body": "Obrigada!"}},
        {"from": "5511987654321", "id": "wamid.in2", "type": "button", "button": {"text": "Parar"}},
        {"from": "972501234567", "id": "wamid.in3", "type": "image", "image": {"id": "m1"}},
    ]
    ours = _meta_body({"metadata": METADATA, "messages": messages})
    assert whatsapp_webhook(CONFIG, _meta_signed(ours)).events == [
        Inbound("+5511987654321", "Obrigada!"),
        Inbound("+5511987654321", "Parar"),
        Inbound("+972501234567", ""),
    ]
    other = _meta_body({"metadata": {**METADATA, "phone_number_id": "999"}, "messages": messages})
    assert whatsapp_webhook(CONFIG, _meta_signed(other)).events == []


def test_whatsapp_webhook_refuses_a_wrong_or_missing_signature():
    body = _meta_body({"metadata": METADATA, "statuses": [{"id": "wamid.A", "status": "read"}]})
    with pytest.raises(BadSignature):
        whatsapp_webhook(CONFIG, _meta_signed(body, "another secret"))
    with pytest.raises(BadSignature):
        whatsapp_webhook(CONFIG, _tampered(body))
    with pytest.raises(BadSignature):
        whatsapp_webhook(CONFIG, request(body))
    with pytest.raises(BadSignature, match="app_secret"):
        whatsapp_webhook(replace(CONFIG, app_secret=None), _meta_signed(body))


def _tampered(body: bytes) -> WebhookRequest:
    signed = _meta_signed(body)
    return replace(signed, body=body.replace(b"read", b"sent"))


def test_whatsapp_subscription_check_answers_the_challenge_for_our_verify_token():
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    answer = whatsapp_webhook(CONFIG, request(b"", "GET", query))
    assert answer.reply == Reply(200, "1158201444") and answer.events == []
    for wrong in ({**query, "hub.verify_token": "guess"}, {**query, "hub.mode": "unsubscribe"}, {}):
        with pytest.raises(BadSignature):
            whatsapp_webhook(CONFIG, request(b"", "GET", wrong))
    with pytest.raises(BadSignature, match="verify_token"):
        whatsapp_webhook(replace(CONFIG, verify_token=None), request(b"", "GET", query))


def test_whatsapp_settings():
    assert parse_whatsapp(where(), {}, {}) is None
    config = parse_whatsapp(
        where(),
        {"phone_number_id": "106540352242922", "access_token": TOKEN, "base_url": "http://127.0.0.1:9/"},
        {},
    )
    assert config == WhatsAppCloudConfig("106540352242922", TOKEN, base_url="http://127.0.0.1:9")
    assert TOKEN not in repr(config)
    assert PROVIDERS["whatsapp_cloud"].templates is True


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"phone_number_id": "106540352242922"},
            r"access_token=None: is needed: set it or OUTREACH_CHAT_P_ACCESS_TOKEN",
        ),
        ({"access_token": TOKEN}, "phone_number_id=None: must be the phone number's id"),
        ({"phone_number_id": "+1555", "access_token": TOKEN}, "phone_number_id='\\+1555'"),
        ({"phone_number_id": "1", "access_token": TOKEN, "api_version": "21"}, "api_version='21'"),
        ({"phone_number_id": "1", "access_token": TOKEN, "base_url": "ftp://h"}, "base_url='ftp://h'"),
        ({"phone_number_id": "1", "access_token": TOKEN, "timeout": 0}, "timeout=0"),
        ({"phone_number_id": "1", "access_token": 12345}, r"access_token='\*\*\*'"),
    ],
)
def test_whatsapp_settings_errors_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message) as caught:
        parse_whatsapp(where(), table, {})
    assert "config/channels.toml: [chat.p]" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_whatsapp_provider_table_with_its_token_from_the_environment(tmp_path, provider):
    text = f"""
        [whatsapp]
        providers = ["meta"]
        [whatsapp.meta]
        kind = "whatsapp_cloud"
        phone_number_id = "106540352242922"
        base_url = "{provider.url}"
        """
    (tmp_path / "channels.toml").write_text(declared(text), encoding="utf-8")
    env = {"OUTREACH_WHATSAPP_META_ACCESS_TOKEN": TOKEN}
    channel = load_channels(tmp_path, environ=env)["whatsapp"]
    assert channel.templates is True
    assert channel.provider("meta").settings.access_token == TOKEN
    provider.answer(200, {"messages": [{"id": "wamid.cfg"}]})
    transport = build_transports(tmp_path, tmp_path / "outbox", environ=env)["whatsapp"]
    try:
        assert transport.send(DELIVERY).reference == "wamid.cfg"
    finally:
        transport.close()
    assert provider.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


# == LINE ==================================================================================

LINE_DELIVERY = replace(
    DELIVERY, channel="line", address=LINE_USER, locale="ja_JP", text="ご注文の配送が遅れています。"
)


@pytest.fixture
def line(provider) -> Iterator[LineTransport]:
    transport = LineTransport("line", LineConfig(LINE_TOKEN, LINE_SECRET, base_url=provider.url))
    yield transport
    transport.close()


def test_line_pushes_with_a_retry_key_of_the_send(provider, line):
    provider.answer(200, {"sentMessages": [{"id": "461230966842064897", "quoteToken": "IStG5h1Tz7b"}]})
    assert line.send(LINE_DELIVERY) == "461230966842064897"
    [sent] = provider.requests
    assert sent["path"] == "/v2/bot/message/push"
    assert sent["headers"]["Authorization"] == f"Bearer {LINE_TOKEN}"
    assert json.loads(sent["body"]) == {
        "to": LINE_USER,
        "messages": [{"type": "text", "text": LINE_DELIVERY.text}],
    }
    key = sent["headers"]["X-Line-Retry-Key"]
    assert key == retry_key("9b1c77e2") and len(key) == 36
    # Every attempt of a send repeats its key; another send has another.
    line.send(replace(LINE_DELIVERY, attempt=2))
    assert provider.requests[1]["headers"]["X-Line-Retry-Key"] == key
    assert retry_key("another send") != key


def test_line_a_retry_already_accepted_is_a_success(provider, line):
    provider.answer(409, {"message": "The retry key is already accepted", "sentMessages": [{"id": "4612"}]})
    assert line.send(LINE_DELIVERY) == "4612"
    provider.answer(409, {"message": "The retry key is already accepted"})
    assert line.send(LINE_DELIVERY) == retry_key("9b1c77e2")
    provider.answer(200, {})
    assert line.send(LINE_DELIVERY) == retry_key("9b1c77e2")


@pytest.mark.parametrize(
    ("status", "body", "kind", "address"),
    [
        (
            400,
            {"message": "The property, 'to', in the request body is invalid (line: -, column: -)"},
            "P",
            True,
        ),
        (400, {"message": "Failed to send messages"}, "P", True),
        (
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "May not be empty", "property": "messages[0].text"}],
            },
            "P",
            False,
        ),
        (
            401,
            {"message": "Authentication failed. Confirm that the access token in the header is valid."},
            "P",
            False,
        ),
        (403, {"message": "Access to this API is not available for your account"}, "P", False),
        (429, {"message": "You have reached your monthly limit."}, "P", False),
        (429, {"message": "The API rate limit has been exceeded. Try again later."}, "T", None),
        (500, {"message": "Internal server error"}, "T", None),
    ],
)
def test_line_errors(provider, line, status, body, kind, address):
    provider.answer(status, body, **{"Retry-After": "3"})
    with pytest.raises(PermanentChannelError if kind == "P" else TransientChannelError) as caught:
        line.send(LINE_DELIVERY)
    assert body["message"] in str(caught.value)
    if address is None:
        assert caught.value.retry_after == 3
    else:
        assert caught.value.address is address
    assert LINE_TOKEN not in str(caught.value)


def _line_signed(events: list, secret: str = LINE_SECRET) -> WebhookRequest:
    body = json.dumps({"destination": "Uxxxxxxxx", "events": events}, ensure_ascii=False).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return request(body, x_line_signature=digest)


LINE_CONFIG = LineConfig(LINE_TOKEN, LINE_SECRET)


def test_line_webhook_reads_messages_from_users():
    source = {"type": "user", "userId": LINE_USER}
    events = [
        {"type": "message", "source": source, "message": {"type": "text", "id": "1", "text": "ありがとう"}},
        {"type": "message", "source": source, "message": {"type": "sticker", "id": "2", "packageId": "1"}},
        {"type": "unfollow", "source": source},
        {"type": "follow", "source": source, "replyToken": "r"},
        {
            "type": "message",
            "source": {"type": "group", "groupId": "C1", "userId": LINE_USER},
            "message": {"type": "text", "text": "hi"},
        },
    ]
    assert line_webhook(LINE_CONFIG, _line_signed(events)).events == [
        Inbound(LINE_USER, "ありがとう"),
        Inbound(LINE_USER, ""),
        Blocked(LINE_USER),  # unfollow: the user blocked the account
        Unblocked(LINE_USER),  # follow: added again (or unblocked)
    ]
    # The console's verification request: no events.
    assert line_webhook(LINE_CONFIG, _line_signed([])).events == []


def test_line_webhook_refuses_a_wrong_or_missing_signature():
    with pytest.raises(BadSignature):
        line_webhook(LINE_CONFIG, _line_signed([], "another secret"))
    signed = _line_signed([{"type": "unfollow", "source": {"type": "user", "userId": LINE_USER}}])
    with pytest.raises(BadSignature):
        line_webhook(LINE_CONFIG, replace(signed, body=signed.body.replace(b"unfollow", b"follow  ")))
    with pytest.raises(BadSignature):
        line_webhook(LINE_CONFIG, request(signed.body))
    with pytest.raises(BadSignature, match="channel_secret"):
        line_webhook(LineConfig(LINE_TOKEN), signed)


def test_line_settings():
    assert parse_line(where(), {}, {}) is None
    assert parse_line(where(), {"channel_access_token": LINE_TOKEN}, {}) == LineConfig(LINE_TOKEN)
    with pytest.raises(
        ConfigError, match="channel_access_token=None: is needed .* OUTREACH_CHAT_P_CHANNEL_ACCESS_TOKEN"
    ):
        parse_line(where(), {"channel_secret": LINE_SECRET}, {})
    with pytest.raises(ConfigError, match="base_url='https://api.line.me\\?x=1'"):
        parse_line(where(), {"channel_access_token": LINE_TOKEN, "base_url": "https://api.line.me?x=1"}, {})
    with pytest.raises(ConfigError, match=r"channel_secret='\*\*\*'"):
        parse_line(where(), {"channel_access_token": LINE_TOKEN, "channel_secret": "two\nlines"}, {})
    padded = parse_line(where(), {"channel_access_token": LINE_TOKEN, "channel_secret": " padded "}, {})
    assert padded.channel_secret == "padded"  # a pasted space is not part of it
    assert LINE_TOKEN not in repr(LineConfig(LINE_TOKEN, LINE_SECRET))


# == Telegram ==============================================================================

TG_DELIVERY = replace(
    DELIVERY, channel="telegram", address="-1001234567890", locale="he_IL", text="ההזמנה שלך מתעכבת"
)


@pytest.fixture
def telegram(provider) -> Iterator[TelegramTransport]:
    transport = TelegramTransport("telegram", TelegramConfig(BOT_TOKEN, TG_SECRET, base_url=provider.url))
    yield transport
    transport.close()


def _tg_ok(chat: int, message_id: int) -> dict:
    return {
        "ok": True,
        "result": {"message_id": message_id, "chat": {"id": chat, "type": "private"}, "date": 1},
    }


def test_telegram_sends_a_message_and_names_chat_and_message(provider, telegram):
    provider.answer(200, _tg_ok(-1001234567890, 77))
    assert telegram.send(TG_DELIVERY) == "-1001234567890:77"
    [sent] = provider.requests
    assert sent["path"] == f"/bot{BOT_TOKEN}/sendMessage"
    assert json.loads(sent["body"]) == {"chat_id": -1001234567890, "text": TG_DELIVERY.text}
    provider.answer(200, _tg_ok(-1009876543210, 5))
    assert telegram.send(replace(TG_DELIVERY, address="@outreach_news")) == "-1009876543210:5"
    assert provider.json()["chat_id"] == "@outreach_news"


@pytest.mark.parametrize(
    ("code", "description", "kind", "address"),
    [
        (403, "Forbidden: bot was blocked by the user", "P", True),
        (403, "Forbidden: user is deactivated", "P", True),
        (400, "Bad Request: chat not found", "P", True),
        (400, "Bad Request: message is too long", "P", False),
        (400, "Bad Request: message text is empty", "P", False),
        (401, "Unauthorized", "P", False),
        (404, "Not Found", "P", False),
        (502, "Bad Gateway", "T", None),
    ],
)
def test_telegram_errors(provider, telegram, code, description, kind, address):
    provider.answer(code, {"ok": False, "error_code": code, "description": description})
    with pytest.raises(PermanentChannelError if kind == "P" else TransientChannelError) as caught:
        telegram.send(TG_DELIVERY)
    assert description in str(caught.value)
    if address is not None:
        assert caught.value.address is address
    assert BOT_TOKEN not in str(caught.value) and BOT_TOKEN.split(":")[1] not in str(caught.value)


def test_telegram_flood_control_waits_as_told(provider, telegram):
    provider.answer(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 17",
            "parameters": {"retry_after": 17},
        },
    )
    with pytest.raises(TransientChannelError) as caught:
        telegram.send(TG_DELIVERY)
    assert caught.value.retry_after == 17


def test_telegram_a_migrated_group_names_its_new_chat(provider, telegram):
    provider.answer(
        400,
        {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": -1001999},
        },
    )
    with pytest.raises(PermanentChannelError, match="now chat -1001999") as caught:
        telegram.send(replace(TG_DELIVERY, address="-4001"))
    assert caught.value.address is True


def test_telegram_network_trouble_never_shows_the_token():
    config = TelegramConfig(BOT_TOKEN, base_url=f"http://127.0.0.1:{_free_port()}", timeout=2)
    transport = TelegramTransport("telegram", config)
    with pytest.raises(TransientChannelError) as caught:
        transport.send(TG_DELIVERY)
    assert BOT_TOKEN.split(":")[1] not in str(caught.value)
    with pytest.raises(ConfigError) as bad:
        TelegramTransport("telegram", TelegramConfig("not a token"))
    assert "not a token" not in str(bad.value)


def _tg_update(update: dict, secret: str | None = TG_SECRET) -> WebhookRequest:
    body = json.dumps(update, ensure_ascii=False).encode()
    return request(body, **({"x_telegram_bot_api_secret_token": secret} if secret is not None else {}))


TG_CONFIG = TelegramConfig(BOT_TOKEN, TG_SECRET)
TG_MESSAGE = {
    "update_id": 1,
    "message": {
        "message_id": 9,
        "chat": {"id": 4242, "type": "private"},
        "from": {"id": 4242},
        "text": "/start",
    },
}


def test_telegram_webhook_reads_messages_with_our_secret_token():
    assert telegram_webhook(TG_CONFIG, _tg_update(TG_MESSAGE)).events == [Inbound("4242", "/start")]
    photo = {
        "update_id": 2,
        "message": {"message_id": 10, "chat": {"id": -100777}, "photo": [], "caption": "look"},
    }
    assert telegram_webhook(TG_CONFIG, _tg_update(photo)).events == [Inbound("-100777", "look")]
    blocked = {
        "update_id": 3,
        "my_chat_member": {"chat": {"id": 4242}, "new_chat_member": {"status": "kicked"}},
    }
    assert telegram_webhook(TG_CONFIG, _tg_update(blocked)).events == [Blocked("4242")]
    restarted = {
        "update_id": 4,
        "my_chat_member": {"chat": {"id": 4242}, "new_chat_member": {"status": "member"}},
    }
    assert telegram_webhook(TG_CONFIG, _tg_update(restarted)).events == [Unblocked("4242")]


def test_telegram_webhook_refuses_a_wrong_or_missing_secret_token():
    with pytest.raises(BadSignature):
        telegram_webhook(TG_CONFIG, _tg_update(TG_MESSAGE, "guess"))
    with pytest.raises(BadSignature):
        telegram_webhook(TG_CONFIG, _tg_update(TG_MESSAGE, None))
    with pytest.raises(BadSignature, match="webhook_secret"):
        telegram_webhook(TelegramConfig(BOT_TOKEN), _tg_update(TG_MESSAGE))


def test_telegram_settings():
    assert parse_telegram(where(), {}, {}) is None
    assert parse_telegram(where(), {"bot_token": BOT_TOKEN, "webhook_secret": TG_SECRET}, {}) == TG_CONFIG
    assert BOT_TOKEN not in repr(TG_CONFIG)
    for table, message in [
        ({"bot_token": "123:short"}, r"bot_token='\*\*\*': must be a bot token"),
        (
            {"bot_token": BOT_TOKEN, "webhook_secret": "has spaces in it"},
            r"webhook_secret='\*\*\*': must be 1-256",
        ),
        (
            {"webhook_secret": TG_SECRET},
            "bot_token=None: is needed to send: set it or OUTREACH_CHAT_P_BOT_TOKEN",
        ),
        ({"bot_token": BOT_TOKEN, "base_url": "api.telegram.org"}, "base_url='api.telegram.org'"),
    ]:
        with pytest.raises(ConfigError, match=message) as caught:
            parse_telegram(where(), table, {})
        assert "123:short" not in str(caught.value) and BOT_TOKEN not in str(caught.value)


def test_the_three_kinds_are_registered_with_a_webhook():
    for name in ("whatsapp_cloud", "line", "telegram"):
        kind = PROVIDERS[name]
        assert kind.webhook is not None and "base_url" in kind.keys and kind.env("chat") == {}
