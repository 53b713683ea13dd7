"""Providers both ways, end to end: a send handed to Twilio or the WhatsApp Cloud API (loopback
servers speaking their documented shapes), then their signed webhooks through the web app, routed to
the send by the provider's message id; repeats and out-of-order callbacks; the WhatsApp service
window and its approved templates; a step without a template in the customer's language falls
through to SMS."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach import Outreach
from outreach.channels.twilio import signature as twilio_signature
from outreach.delivery.receipts import RANK
from outreach.report import build_report

from .conftest import make_settings
from .helpers import at, declared, deliver_due, plan_send, starter_project
from .loopback import Loopback, serving

ACCOUNT = "AC" + "0" * 32
AUTH_TOKEN = "twilio-auth-token"
APP_SECRET = "meta-app-secret"
PHONE_ID = "106540352242922"
ORDER = {"order_id": "B-2002", "new_eta": "2026-03-27", "original_eta": "2026-03-24"}


class Api(Loopback):
    """Twilio's Messages API and Meta's Graph messages endpoint on one loopback port."""

    def __init__(self) -> None:
        super().__init__()
        #: Meta refuses free text: the customer has not written within 24 hours as far as it knows.
        self.window_closed = False

    def reply(self, request: dict) -> tuple[int, dict[str, str], object]:
        n, json_type = len(self.requests), {"Content-Type": "application/json"}
        if request["path"].endswith("/Messages.json"):
            return 201, json_type, {"sid": f"SM{n:032x}", "status": "queued"}
        if self.window_closed and json.loads(request["body"]).get("type") == "text":
            error = {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047}
            return 400, json_type, {"error": error}
        return 200, json_type, {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.HBgM{n:08d}"}]}

    def graph(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests if r["path"].endswith("/messages")]

    def twilio(self) -> list[dict]:
        return [{k: v[0] for k, v in parse_qs(r["body"].decode()).items()}
                for r in self.requests if r["path"].endswith("/Messages.json")]  # fmt: skip


@pytest.fixture
def api() -> Iterator[Api]:
    with serving(Api()) as server:
        yield server


def _project(tmp_path, url: str):
    channels = declared(f"""
[sms]
address = "phone"
providers = ["twilio"]

[sms.twilio]
account_sid = "{ACCOUNT}"
auth_token = "{AUTH_TOKEN}"
from = "+15550100000"
base_url = "{url}"

[whatsapp]
address = "whatsapp"
providers = ["whatsapp_cloud"]

[whatsapp.whatsapp_cloud]
phone_number_id = "{PHONE_ID}"
access_token = "graph-token"
app_secret = "{APP_SECRET}"
verify_token = "our-verify-token"
base_url = "{url}"
""")
    approved = """
[whatsapp."order_delay.notice"]
name = "order_delayed"
parameters = ["customer.given_name", "data.order_id"]
languages = { en = "en_US", pt_BR = "pt_BR", pt = "pt_PT" }
"""
    config, templates = starter_project(
        tmp_path / "project",
        files={"config/channels.toml": channels, "config/approved_templates.toml": approved},
    )
    journey = config / "journeys" / "order_delay.toml"
    text = journey.read_text()
    assert 'channels = ["email", "sms"]' in text
    journey.write_text(text.replace('channels = ["email", "sms"]', 'channels = ["whatsapp", "sms"]'))
    return config, templates


@pytest.fixture
def app(client, clock, tmp_path, api) -> Iterator[Outreach]:
    clock.set(at("2026-03-20T18:00:00Z"))  # daytime for every customer below: the windows are open
    config, templates = _project(tmp_path, api.url)
    application = Outreach(make_settings(tmp_path, config_dir=config, templates_dir=templates),
                           client=client, clock=clock)  # fmt: skip
    for customer in (
        {"id": "c-bia", "given_name": "Beatriz", "phone": "+5511955550101", "locale": "pt_BR",
         "zone": "America/Sao_Paulo", "country": "BR"},
        {"id": "c-jonas", "given_name": "Jonas", "phone": "+41791234567", "locale": "de_CH",
         "zone": "Europe/Zurich", "country": "CH", "addresses": {"whatsapp": "+41791234599"}},
        {"id": "c-ann", "given_name": "Ann", "phone": "+14155550103", "locale": "en_US",
         "zone": "America/Los_Angeles", "country": "US", "channel": "sms"},
    ):  # fmt: skip
        application.upsert_customer(customer)
    yield application
    application.close()


@pytest.fixture
def web(app):
    from fastapi.testclient import TestClient

    from outreach.web import create_app

    with TestClient(create_app(app, api_tokens="t")) as client:
        yield client


def _send(app: Outreach, label: str, customer: str, channels: str) -> str:
    return plan_send(app, label, app.clock.now(), customer, data=ORDER, journey="order_delay", step="notice",
                     channels=channels, category="transactional")  # fmt: skip


def _history(app: Outreach, send_id: str, what: str) -> list[dict]:
    return [e for e in app.schedule.history(send_id) if e["what"] == what]


# -- Twilio status callbacks ------------------------------------------------------------------


def _twilio_callback(web, app, sid: str, status: str, token: str = AUTH_TOKEN, base: str = "", **extra: str):
    url = (base or app.settings.public_url.rstrip("/")) + "/v1/webhooks/sms/twilio"
    form = {"AccountSid": ACCOUNT, "MessageSid": sid, "MessageStatus": status, "To": "+14155550103", **extra}
    headers = {"X-Twilio-Signature": twilio_signature(token, url, list(form.items())),
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    return web.post("/v1/webhooks/sms/twilio", content=urlencode(form), headers=headers)


def test_twilio_callbacks_find_their_send_once_and_never_move_it_backwards(app, web, api):
    send_id = _send(app, "t1", "c-ann", '["sms"]')
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    sid = _history(app, send_id, "delivered")[0]["reference"]
    assert sid.startswith("SM") and api.twilio()[0]["To"] == "+14155550103"

    assert _twilio_callback(web, app, sid, "sent").json()["results"] == {"new": 1}
    assert _twilio_callback(web, app, sid, "delivered").json()["results"] == {"new": 1}
    assert _twilio_callback(web, app, sid, "delivered").json()["results"] == {"repeat": 1}
    # "sent" arrives again, late: after delivered it changes nothing.
    assert _twilio_callback(web, app, sid, "queued").json()["results"] == {"repeat": 1}
    receipts = _history(app, send_id, "receipt")
    assert [r["status"] for r in receipts] == ["accepted", "delivered"]
    assert app.schedule.get(send_id).as_stored()["receipt"] == "delivered"
    # Counted once each for the metrics, and in the report by the furthest status.
    stats = app.stats()
    assert (stats["receipts:sms:accepted"], stats["receipts:sms:delivered"]) == (1, 1)
    report = build_report(app, since=app.clock.now() - timedelta(days=1), until=app.clock.now())
    assert report.overall.receipts == {"delivered": 1}


def test_a_wrongly_signed_callback_is_refused_and_changes_nothing(app, web):
    send_id = _send(app, "t2", "c-ann", '["sms"]')
    deliver_due(app)
    sid = _history(app, send_id, "delivered")[0]["reference"]
    assert _twilio_callback(web, app, sid, "undelivered", token="not-the-token").status_code == 401
    unsigned = web.post("/v1/webhooks/sms/twilio", content=f"MessageSid={sid}&MessageStatus=failed",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert unsigned.status_code == 401
    assert _history(app, send_id, "receipt") == []
    assert not app.policy.is_suppressed("sms", "+14155550103")


def test_an_unsubscribed_recipient_suppresses_the_number(app, web):
    send_id = _send(app, "t3", "c-ann", '["sms"]')
    deliver_due(app)
    sid = _history(app, send_id, "delivered")[0]["reference"]
    answer = _twilio_callback(web, app, sid, "undelivered", ErrorCode="21610").json()
    assert answer["results"] == {"new": 1}
    assert app.policy.is_suppressed("sms", "+14155550103")
    # A callback for a message Outreach never sent is acknowledged and counted, not an error.
    assert _twilio_callback(web, app, "SM" + "f" * 32, "delivered").json()["results"] == {"unknown": 1}


def test_a_signature_over_the_url_as_received_is_good_too(app, web):
    # Behind no proxy, or one that keeps the URL, Twilio signed the URL this process sees.
    send_id = _send(app, "t4", "c-ann", '["sms"]')
    deliver_due(app)
    sid = _history(app, send_id, "delivered")[0]["reference"]
    answer = _twilio_callback(web, app, sid, "delivered", base="http://testserver")
    assert answer.status_code == 200 and answer.json()["results"] == {"new": 1}


def test_with_a_public_url_configured_only_it_counts(app, web):
    from dataclasses import replace

    send_id = _send(app, "t5", "c-ann", '["sms"]')
    deliver_due(app)
    sid = _history(app, send_id, "delivered")[0]["reference"]
    app.settings = replace(app.settings, public_url="https://outreach.example.com")
    # Signed for the URL as this process sees it (its Host header is the caller's to choose): refused.
    assert _twilio_callback(web, app, sid, "delivered", base="http://testserver").status_code == 401
    assert _twilio_callback(web, app, sid, "delivered").json()["results"] == {"new": 1}


def test_addresses_compare_whatever_the_form_of_their_domain():
    from outreach.delivery.receipts import same_address

    assert same_address("Kim@Bücher.de", "kim@xn--bcher-kva.de")
    assert same_address("+5511955550101", "+5511955550101")
    assert not same_address("kim@example.org", "kim@example.com")


def test_a_webhook_for_an_unknown_provider_or_channel_is_404(web):
    assert web.post("/v1/webhooks/sms/vonage", content=b"{}").status_code == 404
    assert web.post("/v1/webhooks/fax/twilio", content=b"{}").status_code == 404


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.lists(st.sampled_from(["queued", "sent", "delivered", "read", "undelivered", "failed"]),
                      min_size=1, max_size=12))  # fmt: skip
def test_any_order_of_callbacks_records_each_status_once_and_progress_only_forwards(app, web, order):
    send_id = _send(app, f"p{abs(hash(tuple(order)))}", "c-ann", '["sms"]')
    deliver_due(app)
    sid = _history(app, send_id, "delivered")[0]["reference"]
    for status in order:
        assert _twilio_callback(web, app, sid, status).status_code == 200
    recorded = [r["status"] for r in _history(app, send_id, "receipt")]
    assert len(recorded) == len(set(recorded)), "a status is recorded once"
    progress = [RANK[s] for s in recorded if s in ("accepted", "delivered", "read")]
    assert progress == sorted(progress) and len(progress) == len(set(progress)), "never backwards"
    top = max(recorded, key=lambda s: RANK[s])
    assert app.schedule.get(send_id).as_stored()["receipt"] == top


# -- WhatsApp: the service window and approved templates ---------------------------------------


def _meta(web, body: dict, secret: str = APP_SECRET):
    raw = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return web.post("/v1/webhooks/whatsapp/whatsapp_cloud", content=raw,
                    headers={"X-Hub-Signature-256": sig, "Content-Type": "application/json"})  # fmt: skip


def _inbound(number: str, text: str, when: datetime | None = None) -> dict:
    stamp = str(int((when or at("2026-03-20T18:00:00Z")).timestamp()))
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
             "messages": [{"from": number.lstrip("+"), "id": "wamid.in", "timestamp": stamp,
                           "type": "text", "text": {"body": text}}]}  # fmt: skip
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
            "value": value}]}]}  # fmt: skip


def test_outside_the_window_an_approved_template_goes_with_the_customers_language_code(app, api):
    send_id = _send(app, "w1", "c-bia", '["whatsapp", "sms"]')
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    [message] = api.graph()
    assert message["type"] == "template" and message["to"] == "5511955550101"
    template = message["template"]
    assert (template["name"], template["language"]["code"]) == ("order_delayed", "pt_BR")
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert params == ["Beatriz", "B-2002"]
    assert _history(app, send_id, "delivered")[0]["channel"] == "whatsapp"


def test_the_customers_own_message_opens_the_window_for_free_text(app, web, api, clock):
    assert _meta(web, _inbound("+5511955550101", "Oi, cadê meu pedido?")).json()["results"] == {"inbound": 1}
    _send(app, "w2", "c-bia", '["whatsapp"]')
    deliver_due(app)
    [message] = api.graph()
    assert message["type"] == "text" and "B-2002" in message["text"]["body"]
    # A day later the window has closed again: a template once more.
    clock.advance(timedelta(hours=24, minutes=1))
    _send(app, "w3", "c-bia", '["whatsapp"]')
    deliver_due(app)
    assert api.graph()[-1]["type"] == "template"


def test_a_message_delivered_a_day_late_opens_no_window(app, web, api, clock):
    # Meta retries webhooks for days: the window counts from when the customer wrote.
    late = _inbound("+5511955550101", "oi", when=clock.now() - timedelta(hours=25))
    assert _meta(web, late).json()["results"] == {"inbound": 1}
    _send(app, "w7", "c-bia", '["whatsapp"]')
    deliver_due(app)
    assert api.graph()[-1]["type"] == "template"


def test_a_wrongly_signed_inbound_message_opens_nothing(app, web, api):
    assert _meta(web, _inbound("+5511955550101", "hi"), secret="forged").status_code == 401
    _send(app, "w4", "c-bia", '["whatsapp"]')
    deliver_due(app)
    assert api.graph()[-1]["type"] == "template"


def test_no_approved_template_in_the_customers_language_falls_through_to_sms(app, api):
    send_id = _send(app, "w5", "c-jonas", '["whatsapp", "sms"]')
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert api.graph() == [] and api.twilio()[0]["To"] == "+41791234567"
    [note] = [e for e in _history(app, send_id, "fallthrough") if e.get("channel") == "whatsapp"]
    assert "no approved template in de_CH" in note["text"]
    assert _history(app, send_id, "delivered")[0]["channel"] == "sms"


def test_whatsapp_statuses_reach_the_send_by_its_wamid(app, web, api):
    send_id = _send(app, "w6", "c-bia", '["whatsapp"]')
    deliver_due(app)
    wamid = _history(app, send_id, "delivered")[0]["reference"]
    to = "5511955550101"
    statuses = [{"id": wamid, "status": "read", "timestamp": "2", "recipient_id": to},
                {"id": wamid, "status": "delivered", "timestamp": "1", "recipient_id": to}]  # fmt: skip
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID}, "statuses": statuses}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
            "value": value}]}]}  # fmt: skip
    assert _meta(web, body).json()["results"] == {"new": 1, "stale": 1}
    assert [r["status"] for r in _history(app, send_id, "receipt")] == ["read"]


def test_the_subscription_challenge_is_answered_for_our_verify_token(web):
    path = "/v1/webhooks/whatsapp/whatsapp_cloud"
    ok = web.get(
        path, params={"hub.mode": "subscribe", "hub.verify_token": "our-verify-token", "hub.challenge": "42"}
    )
    assert (ok.status_code, ok.text) == (200, "42")
    bad = web.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"})
    assert bad.status_code == 401


def test_erasing_a_customer_removes_the_message_ids_and_windows_that_point_to_them(app, web):
    _meta(web, _inbound("+5511955550101", "olá"))
    send_id = _send(app, "e1", "c-bia", '["whatsapp"]')
    deliver_due(app)
    wamid = _history(app, send_id, "delivered")[0]["reference"]
    reference = app.keys.reference("whatsapp", "whatsapp_cloud", wamid)
    assert app.client.get(reference) is not None
    app.datarights.erase("c-bia")
    assert app.client.get(reference) is None
    assert not list(app.client.scan_iter(match=f"{app.settings.prefix}window:*"))


def test_when_meta_says_the_window_is_closed_the_same_channel_sends_the_template(app, web, api):
    _meta(web, _inbound("+5511955550101", "oi"))  # as far as we know, the window is open
    api.window_closed = True  # Meta knows better
    send_id = _send(app, "w8", "c-bia", '["whatsapp", "sms"]')
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    sent = api.graph()
    assert [m["type"] for m in sent] == ["text", "template"] and api.twilio() == []
    assert (
        _history(app, send_id, "window_closed")
        and _history(app, send_id, "delivered")[0]["channel"] == "whatsapp"
    )
    # The window is forgotten: the next message goes as a template straight away.
    _send(app, "w9", "c-bia", '["whatsapp", "sms"]')
    deliver_due(app)
    assert api.graph()[-1]["type"] == "template" and len(api.graph()) == 3


def test_a_block_suppresses_the_address_and_an_unblock_lifts_it(app):
    from outreach.channels.webhooks import Blocked, Unblocked
    from outreach.delivery.receipts import apply_events

    def apply(event):
        policy = app.policy
        return apply_events(
            [event], "whatsapp", "whatsapp_cloud", client=app.client, keys=app.keys,
            secret=app.settings.secret, record=lambda *a, **k: {}, find=app.records.find_send, now_ms=0,
            suppress=policy.suppress_address,
            unsuppress=policy.unsuppress_address,
        )  # fmt: skip

    assert apply(Blocked("+5511955550101")) == {"blocked": 1}
    assert app.policy.is_suppressed("whatsapp", "+5511955550101")
    assert apply(Unblocked("+5511955550101")) == {"unblocked": 1}
    assert not app.policy.is_suppressed("whatsapp", "+5511955550101")
