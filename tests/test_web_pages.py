"""Customer pages through FastAPI's TestClient: survey answers, comments, unsubscribe, preferences, errors.

Surveys are delivered through the real pipeline (ingest, schedule, deliver to the
outbox); the answer links are taken from the delivered message.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from outreach import Outreach
from outreach.channels.base import Delivery
from outreach.links import make_token
from outreach.localization.messages import load_translations
from outreach.web import create_app

from .conftest import CUSTOMERS, make_settings
from .helpers import deliver_due, ingest, outbox

#: The API token every test app accepts.
TOKEN = "test-token-0123456789"

NOA = {
    "id": "c-noa",
    "name": "Noa",
    "email": "noa@example.co.il",
    "locale": "he",
    "zone": "Asia/Jerusalem",
    "country": "IL",
}
LENA = {
    "id": "c-lena",
    "name": "Lena",
    "email": "lena@example.de",
    "locale": "de_DE",
    "zone": "Europe/Berlin",
    "country": "DE",
    "consent": {"survey": True},
}


class Recorder:
    """A transport that keeps every Delivery (so tests see the unsubscribe URL)."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def send(self, delivery: Delivery) -> str:
        self.deliveries.append(delivery)
        return f"recorded:{delivery.send_id}"


# -- helpers shared by the web tests --------------------------------------------------------------


def web_client(app: Outreach, **options) -> TestClient:
    return TestClient(create_app(app, api_tokens=[TOKEN], **options), follow_redirects=False)


def deliver_surveys(app: Outreach, clock, *customer_ids: str) -> dict[str, dict]:
    """Resolve an interaction for each customer, wait 4 h into the window, deliver: the outbox lines."""
    for customer_id in customer_ids:
        ingest(
            app, "interaction.resolved", customer_id, clock.now().isoformat(), id=f"resolved-{customer_id}"
        )
    due = max(app.schedule.due_between(None, None, limit=1000), key=lambda pair: pair[1])[1]
    assert due - clock.now() >= timedelta(hours=4)
    clock.set(due)
    outcomes = deliver_due(app)
    assert [o.state for o in outcomes] == ["delivered"] * len(customer_ids), outcomes
    rows = {}
    for row in outbox(app):
        if row["journey"] == "survey":
            rows[row["customer_id"]] = row
    return rows


def score_links(row: dict) -> dict[int, str]:
    """Score -> answer URL, from the email's HTML; the plain text carries the same links."""
    links = {
        int(score): html.unescape(url)
        for url, score in re.findall(r'<a href="([^"]+)"[^>]*>\s*(\d+)\s*</a>', row["html"])
    }
    assert links and all(url in row["body"] for url in links.values())
    return links


def path_of(url: str) -> str:
    return urlsplit(url).path


def hidden(page: str, name: str) -> str:
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))


def form_action(page: str) -> str:
    return html.unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))


def html_lang_dir(page: str) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="(ltr|rtl)">', page)
    return match.group(1), match.group(2)


def unsubscribe_token(app: Outreach, customer_id: str, send_id: str, category: str) -> str:
    """The token deliver.py puts in List-Unsubscribe."""
    expires = app.clock.now() + timedelta(days=app.settings.link_days)
    return make_token(
        app.settings.secret, "unsubscribe", {"c": customer_id, "s": send_id, "k": category}, expires
    )


@pytest.fixture
def web(app):
    with web_client(app) as client:
        yield client


@pytest.fixture
def amelia(app):
    return app.upsert_customer(CUSTOMERS["c-amelia"])


# -- survey answers ---------------------------------------------------------------------------------


def test_answer_link_records_the_score_and_another_click_updates_it(app, web, amelia, clock, worker):
    row = deliver_surveys(app, clock, "c-amelia")["c-amelia"]
    send_id = row["send_id"]
    links = score_links(row)
    assert sorted(links) == [1, 2, 3, 4, 5]

    page = web.get(path_of(links[2]))
    assert page.status_code == 200
    assert html_lang_dir(page.text) == ("en-US", "ltr")
    assert "Your score: 2 (from 1 to 5)." in page.text
    assert 'aria-current="true">2</a>' in page.text
    answer = app.surveys.get(send_id)
    assert (answer.score, answer.band, answer.version, answer.customer_id) == (2, "detractor", 1, "c-amelia")

    # The page links to the other scores; choosing one replaces the answer.
    other = re.search(r'<a href="([^"]+)" aria-label="[^"]*">4</a>', page.text).group(1)
    changed = web.get(other)
    assert changed.status_code == 200 and "Your score: 4 (from 1 to 5)." in changed.text
    answer = app.surveys.get(send_id)
    assert (answer.score, answer.band, answer.version) == (4, "positive", 2)
    assert [a.send_id for a in app.surveys.of_customer("c-amelia")] == [send_id]
    assert len(app.surveys.between(None, None)) == 1

    # Reloading the same link changes nothing and emits nothing.
    assert web.get(other).status_code == 200
    assert app.surveys.get(send_id).version == 2

    # Each version was its own survey.answered event, ingested once.
    app.drain(worker)
    for version in (1, 2):
        assert app.client.get(app.keys.event(f"answer:{send_id}:{version}", "c-amelia")) == b"done"
    assert app.client.get(app.keys.event(f"answer:{send_id}:3", "c-amelia")) is None


def test_comment_is_stored_once_and_a_replayed_nonce_is_refused(app, web, amelia, clock):
    row = deliver_surveys(app, clock, "c-amelia")["c-amelia"]
    page = web.get(path_of(score_links(row)[5])).text
    nonce, action = hidden(page, "nonce"), form_action(page)
    assert '<label for="comment">' in page and 'id="comment"' in page

    done = web.post(action, data={"comment": "  Quick and friendly, thanks!  ", "nonce": nonce})
    assert done.status_code == 200 and "Thank you for your comment" in done.text
    assert app.surveys.get(row["send_id"]).comment == "Quick and friendly, thanks!"

    replay = web.post(action, data={"comment": "something else", "nonce": nonce})
    assert replay.status_code == 400
    assert "This form was already sent" in replay.text
    assert app.surveys.get(row["send_id"]).comment == "Quick and friendly, thanks!"

    # A nonce that was never issued, or one issued for another send, is refused too.
    forged = web.post(action, data={"comment": "x", "nonce": nonce[:-3] + "AAA"})
    assert forged.status_code == 400
    other = make_token(
        app.settings.secret, "comment", {"s": "s_other", "n": "abc"}, clock.now() + timedelta(days=1)
    )
    assert web.post(action, data={"comment": "x", "nonce": other}).status_code == 400
    assert app.surveys.get(row["send_id"]).comment == "Quick and friendly, thanks!"

    # A fresh page has a fresh nonce and shows the stored comment for editing.
    again = web.get(path_of(score_links(row)[5])).text
    assert hidden(again, "nonce") != nonce
    assert "Quick and friendly, thanks!</textarea>" in again
    updated = web.post(action, data={"comment": "Even better now.", "nonce": hidden(again, "nonce")})
    assert updated.status_code == 200
    assert app.surveys.get(row["send_id"]).comment == "Even better now."


def test_an_empty_comment_shows_the_form_again(app, web, amelia, clock):
    row = deliver_surveys(app, clock, "c-amelia")["c-amelia"]
    page = web.get(path_of(score_links(row)[3])).text
    empty = web.post(form_action(page), data={"comment": "   ", "nonce": hidden(page, "nonce")})
    assert empty.status_code == 400
    assert 'role="alert"' in empty.text and '<textarea id="comment"' in empty.text
    assert app.surveys.get(row["send_id"]).comment == ""


def test_comment_nonce_expires(app, web, amelia, clock):
    row = deliver_surveys(app, clock, "c-amelia")["c-amelia"]
    page = web.get(path_of(score_links(row)[3])).text
    clock.advance(timedelta(days=3))
    late = web.post(form_action(page), data={"comment": "late", "nonce": hidden(page, "nonce")})
    assert late.status_code == 410 and "This form has expired" in late.text


# -- bad links --------------------------------------------------------------------------------------


def test_forged_expired_and_wrong_purpose_tokens(app, web, amelia, clock):
    row = deliver_surveys(app, clock, "c-amelia")["c-amelia"]
    send_id = row["send_id"]
    good = path_of(score_links(row)[4]).removeprefix("/s/")

    body, signature = good.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    for token in (f"{body}.{flipped}", "not-a-token", f"{body}x.{signature}", "a.b.c"):
        page = web.get(f"/s/{token}")
        assert page.status_code == 400, token
        assert "This link is not valid" in page.text

    # Signed with the right secret, but for another purpose.
    unsubscribe = unsubscribe_token(app, "c-amelia", send_id, "survey")
    assert web.get(f"/s/{unsubscribe}").status_code == 400
    assert web.get(f"/u/{good}").status_code == 400
    assert web.get(f"/p/{good}").status_code == 400
    assert app.surveys.get(send_id) is None

    # A score the scale does not have.
    expires = clock.now() + timedelta(days=1)
    nine = make_token(
        app.settings.secret, "answer", {"s": send_id, "c": "c-amelia", "k": "csat", "v": 9}, expires
    )
    page = web.get(f"/s/{nine}")
    assert page.status_code == 400 and "This score is not on the scale" in page.text
    assert html_lang_dir(page.text) == ("en-US", "ltr")

    # A send that is not this customer's, and a customer who does not exist.
    app.upsert_customer(NOA)
    theirs = make_token(
        app.settings.secret, "answer", {"s": send_id, "c": "c-noa", "k": "csat", "v": 3}, expires
    )
    assert web.get(f"/s/{theirs}").status_code == 404
    nobody = make_token(
        app.settings.secret, "answer", {"s": send_id, "c": "c-nobody", "k": "csat", "v": 3}, expires
    )
    assert web.get(f"/s/{nobody}").status_code == 404
    assert app.surveys.get(send_id) is None

    # The answer links expire after survey_link_days; the page is still in the customer's language.
    clock.advance(timedelta(days=app.settings.survey_link_days, minutes=1))
    page = web.get(f"/s/{good}")
    assert page.status_code == 410 and "This link has expired" in page.text
    assert html_lang_dir(page.text) == ("en-US", "ltr")
    assert app.surveys.get(send_id) is None


def test_erased_customer_gets_410(app, web, amelia, clock):
    row = deliver_surveys(app, clock, "c-amelia")["c-amelia"]
    token = unsubscribe_token(app, "c-amelia", row["send_id"], "survey")
    app.erase_customer("c-amelia")
    assert web.get(path_of(score_links(row)[5])).status_code == 410
    page = web.get(f"/u/{token}")
    assert page.status_code == 410 and "This link no longer works" in page.text
    assert web.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 410


@pytest.mark.parametrize(
    ("header", "lang", "direction"),
    [
        ("he-IL,he;q=0.9,en;q=0.8", "he", "rtl"),
        ("ar-EG", "ar", "rtl"),
        ("sv-SE, de;q=0.5", "de", "ltr"),
        ("fr-FR, de;q=0.5", "fr", "ltr"),
        ("es-419, en;q=0.5", "es", "ltr"),
        ("pt-PT", "pt-BR", "ltr"),
        ("zh-CN", "zh-Hans", "ltr"),
        ("ja;q=0.2, en;q=0.9", "en", "ltr"),
        ("sv, *;q=0.1", "en", "ltr"),
        ("", "en", "ltr"),
        ("!!;q=x", "en", "ltr"),
    ],
)
def test_error_page_without_a_customer_negotiates_accept_language(app, web, header, lang, direction):
    page = web.get("/s/forged.token", headers={"Accept-Language": header})
    assert page.status_code == 400
    assert html_lang_dir(page.text) == (lang, direction)
    assert page.headers["content-language"] == lang
    missing = web.get("/nowhere", headers={"Accept-Language": header})
    assert missing.status_code == 404 and html_lang_dir(missing.text) == (lang, direction)


def test_pages_send_protective_headers(app, web):
    page = web.get("/s/forged.token")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text and "http://" not in page.text and "https://" not in page.text


# -- unsubscribe and preferences --------------------------------------------------------------------


@pytest.fixture
def recorded(client, clock, tmp_path):
    """An application whose email transport records each Delivery (with its unsubscribe URL)."""
    recorder = Recorder()
    app = Outreach(
        make_settings(tmp_path, public_url="https://outreach.example.com"),
        client=client,
        clock=clock,
        transports={"email": recorder},
    )
    app.recorder = recorder
    return app


def _survey_delivery(app, clock, customer: dict) -> Delivery:
    app.upsert_customer(customer)
    ingest(app, "interaction.resolved", customer["id"], clock.now().isoformat(), id=f"r-{customer['id']}")
    clock.set(app.schedule.next_due())
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    delivery = app.recorder.deliveries[-1]
    assert delivery.unsubscribe_url.startswith("https://outreach.example.com/u/")
    return delivery


def test_unsubscribe_page_then_confirm(recorded, clock):
    app = recorded
    delivery = _survey_delivery(app, clock, CUSTOMERS["c-amelia"])
    with web_client(app) as web:
        page = web.get(path_of(delivery.unsubscribe_url))
        assert page.status_code == 200
        assert "You will no longer receive short surveys about your experience." in page.text
        assert app.policy.allows(app.customers.get("c-amelia"), "survey")  # a page view changes nothing
        done = web.post(form_action(page.text))
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        customer = app.customers.get("c-amelia")
        assert customer.consent["survey"] is False and not app.policy.allows(customer, "survey")
        history = app.customers.consent_history("c-amelia")
        assert [(h["key"], h["allowed"], h["source"]) for h in history] == [
            ("survey", False, "unsubscribe link")
        ]
        # Other categories are untouched.
        assert app.policy.allows(customer, "lifecycle")
        # The confirmation links to the preference page.
        assert re.search(r'<a href="/p/[^"]+">', done.text)


def test_one_click_unsubscribe(recorded, clock):
    app = recorded
    delivery = _survey_delivery(app, clock, CUSTOMERS["c-amelia"])
    with web_client(app) as web:
        # RFC 8058: what a mail client POSTs to the List-Unsubscribe URL.
        response = web.post(
            path_of(delivery.unsubscribe_url),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200 and "location" not in response.headers
        assert app.customers.get("c-amelia").consent == {"survey": False}
        # A retried POST changes nothing and records nothing new.
        again = web.post(path_of(delivery.unsubscribe_url), data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200
    assert len(app.customers.consent_history("c-amelia")) == 1
    assert not app.policy.allows(app.customers.get("c-amelia"), "survey")


def test_preference_page_round_trip(recorded, clock):
    app = recorded
    delivery = _survey_delivery(app, clock, LENA)
    with web_client(app) as web:
        done = web.post(path_of(delivery.unsubscribe_url), data={"List-Unsubscribe": "One-Click"})
        preferences = re.search(r'<a href="(/p/[^"]+)">', done.text).group(1)
        page = web.get(preferences)
        assert page.status_code == 200
        text = page.text
        assert html_lang_dir(text) == ("de-DE", "ltr")
        for name in ("lifecycle", "survey", "marketing", "transactional", "email", "sms", "whatsapp"):
            kind = "channel" if name in ("email", "sms", "whatsapp") else "category"
            assert f'<label for="{kind}-{name}">' in text, name
        checked = set(re.findall(r'id="(\w+-\w+)"[^>]*?(?: checked)', text))
        # Germany: lifecycle is opt-out (on), marketing opt-in (off); survey was just withdrawn.
        assert checked == {
            "category-lifecycle",
            "category-transactional",
            "channel-email",
            "channel-sms",
            "channel-whatsapp",
        }

        saved = web.post(
            form_action(text),
            data={"category": ["survey", "marketing"], "channel": ["email", "whatsapp"]},
        )
        # The page speaks German: the catalog's own text, never the English source.
        register = app.renderer.register_for(app.customers.get("c-lena"), "de_DE")
        catalog = load_translations(app.settings.templates_dir, "de")._catalog
        german = catalog[f"{register}\x04Your preferences are saved."]
        assert saved.status_code == 200 and german in saved.text
        assert "Your preferences are saved." not in saved.text
        customer = app.customers.get("c-lena")
        assert customer.consent == {"survey": True, "marketing": True, "lifecycle": False}
        assert customer.channel_consent == {"sms": False}
        changes = [(h["key"], h["allowed"], h["source"]) for h in app.customers.consent_history("c-lena")]
        assert sorted(changes[-4:]) == sorted(
            [
                ("lifecycle", False, "preference page"),
                ("survey", True, "preference page"),
                ("marketing", True, "preference page"),
                ("sms", False, "preference page"),
            ]
        )
        # Saving the same choices again records nothing new.
        web.post(
            form_action(text), data={"category": ["survey", "marketing"], "channel": ["email", "whatsapp"]}
        )
        assert len(app.customers.consent_history("c-lena")) == len(changes)

        # The unsubscribe link itself also opens the preference page.
        again = web.get("/p/" + path_of(delivery.unsubscribe_url).removeprefix("/u/"))
        checked = set(re.findall(r'id="(\w+-\w+)"[^>]*?(?: checked)', again.text))
        assert "category-lifecycle" not in checked and "channel-sms" not in checked
        assert {"category-survey", "category-marketing", "channel-email"} <= checked


def test_the_unsubscribe_sentence_holds_its_category_without_a_stray_space(recorded, clock):
    """ "您即将退订： <strong>…": the category is part of the translated sentence, so a full-width colon
    is followed by what the translator wrote, not by a space the template added."""
    app = recorded
    wei = {**LENA, "id": "c-wei", "name": "王伟", "email": "wei@example.cn", "locale": "zh_Hans_CN",
           "zone": "Asia/Shanghai", "country": "CN"}  # fmt: skip
    delivery = _survey_delivery(app, clock, wei)
    with web_client(app) as web:
        page = web.get(path_of(delivery.unsubscribe_url)).text
    sentence = re.search(r"<p>([^<]*)<strong>", page).group(1)
    assert "退订" in sentence and "： " not in page, sentence


def test_the_always_on_hint_is_read_once(recorded, clock):
    app = recorded
    delivery = _survey_delivery(app, clock, LENA)
    with web_client(app) as web:
        done = web.post(path_of(delivery.unsubscribe_url), data={"List-Unsubscribe": "One-Click"})
        page = web.get(re.search(r'<a href="(/p/[^"]+)">', done.text).group(1)).text
    label = re.search(r'<label for="category-transactional">(.*?)</label>', page, re.S).group(1)
    assert "transactional-hint" not in label
    assert page.count('id="transactional-hint"') == 1 and 'aria-describedby="transactional-hint"' in page


def test_the_answer_page_names_every_score_link(recorded, clock):
    app = recorded
    delivery = _survey_delivery(app, clock, CUSTOMERS["c-amelia"])
    answer = re.search(r"(https://outreach\.example\.com/s/\S+)", delivery.text).group(1)
    with web_client(app) as web:
        page = web.get(path_of(answer)).text
    labels = re.findall(r'<li><a href="[^"]+" aria-label="([^"]+)"', page)
    assert labels == [f"Score {n} out of 5" for n in range(1, 6)]
