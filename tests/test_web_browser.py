"""The customer pages in a real browser: headless Chromium (Playwright) against uvicorn in a thread.

Surveys are delivered through the pipeline to a recording email transport; the
email's HTML is loaded into the browser and its links are clicked, so the links
that go out in messages are the ones tested. Needs Debian's ``/usr/bin/chromium``
(``.ci/run`` installs it): skipped without it on a laptop, failed on CI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from outreach import Outreach
from outreach.channels.base import Delivery
from outreach.localization.locales import locale_chain
from outreach.localization.messages import Messages, load_translations

from .conftest import CUSTOMERS, ON_CI, _free_port, make_settings
from .helpers import deliver_due, ingest
from .test_web_pages import NOA, TOKEN, Recorder

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where the browser tests' screenshots go (inside the test's tmp_path).
SCREENSHOT = "survey-he.png"

#: Customer per locale under test; the register comes from the locale's default.
PEOPLE = {"en": CUSTOMERS["c-amelia"], "he": NOA, "ja": CUSTOMERS["c-haruto"]}
#: A comment in each language, typed on the keyboard.
COMMENTS = {
    "en": "Fast & friendly <b>help</b>.",
    "he": "שירות מהיר ואדיב, תודה!",
    "ja": "迅速で丁寧な対応でした。",
}


def _unavailable(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - it is in the test extra
        _unavailable("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Served:
    app: Outreach
    base: str
    recorder: Recorder


@pytest.fixture
def served(client, clock, tmp_path) -> Iterator[Served]:
    """The web app in a real uvicorn server on a free loopback port; messages link to it."""
    import uvicorn

    from outreach.web import create_app

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    recorder = Recorder()
    app = Outreach(
        make_settings(tmp_path, public_url=base), client=client, clock=clock, transports={"email": recorder}
    )
    config = uvicorn.Config(
        create_app(app, api_tokens=[TOKEN]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:  # real start-up time, not simulated time
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield Served(app, base, recorder)
    server.should_exit = True
    thread.join(timeout=20)
    assert not thread.is_alive()


def deliver(served: Served, clock, people: dict[str, dict]) -> dict[str, Delivery]:
    """A CSAT survey email per locale, delivered through the pipeline: locale -> Delivery."""
    app = served.app
    for person in people.values():
        app.upsert_customer(person)
        ingest(app, "interaction.resolved", person["id"], clock.now().isoformat(), id=f"r-{person['id']}")
    clock.set(max(due for _, due in app.schedule.due_between(None, None, limit=100)))
    assert [o.state for o in deliver_due(app)] == ["delivered"] * len(people)
    by_customer = {d.customer_id: d for d in served.recorder.deliveries if d.journey == "survey"}
    return {tag: by_customer[person["id"]] for tag, person in people.items()}


def translated(app: Outreach, tag: str, message: str, register: str) -> str:
    """What the shipped catalogs make of a message (the English source when nobody translated it)."""
    chain = locale_chain(tag, app.locales.default)
    catalogs = [c for c in (load_translations(app.settings.templates_dir, t) for t in chain) if c is not None]
    return Messages(catalogs).gettext(message, register)


def score_link(page, app: Outreach, tag: str, register: str, score: int, high: int = 5):
    """A survey score link, found by its accessible name ("Score 4 out of 5" in the customer's words)."""
    name = translated(app, tag, "Score %(score)s out of %(high)s", register) % {"score": score, "high": high}
    return page.get_by_role("link", name=name, exact=True)


def every_control_is_labelled(page) -> bool:
    return page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), textarea, select')]
                .every(el => el.labels && el.labels.length > 0 && el.labels[0].textContent.trim() !== '')"""
    )


def html_attrs(page) -> tuple[str, str]:
    lang, direction = page.evaluate("[document.documentElement.lang, document.documentElement.dir]")
    return lang, direction


@pytest.mark.parametrize("tag", ["en", "he", "ja"])
def test_survey_answer_and_comment_in_the_browser(browser, served, clock, tag, tmp_path):
    app = served.app
    delivery = deliver(served, clock, {tag: PEOPLE[tag]})[tag]
    customer = app.customers.get(delivery.customer_id)
    register = app.renderer.register_for(customer, customer.locale)
    context = browser.new_context(locale=customer.locale.replace("_", "-"))
    page = context.new_page()
    try:
        # The email as the customer sees it; its score links point at the running server.
        page.set_content(delivery.html)
        assert html_attrs(page)[1] == ("rtl" if tag == "he" else "ltr")
        with page.expect_navigation():
            score_link(page, app, customer.locale, register, 4).click()
        assert page.url.startswith(f"{served.base}/s/")
        answer = app.surveys.get(delivery.send_id)
        assert (answer.score, answer.version, answer.customer_id) == (4, 1, customer.id)

        lang, direction = html_attrs(page)
        assert lang.replace("-", "_").startswith(tag)
        assert direction == ("rtl" if tag == "he" else "ltr")
        assert every_control_is_labelled(page)
        assert page.locator("[aria-current=true]").inner_text() == "4"
        heading = page.locator("h1").inner_text()
        expected = translated(app, customer.locale, "Thank you for your answer", register)
        assert heading == expected
        if tag != "en" and expected != "Thank you for your answer":
            assert heading != "Thank you for your answer"  # translated once the catalogs have it
        if tag == "he":
            box = page.locator("h1").bounding_box()
            width = page.evaluate("document.documentElement.clientWidth")
            assert box["x"] + box["width"] > width / 2  # right-to-left: the heading hugs the right
            page.screenshot(path=str(tmp_path / SCREENSHOT), full_page=True)

        # Change the score on the page, by keyboard: focus the link for 2 and press Enter.
        score_link(page, app, customer.locale, register, 2).focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert app.surveys.get(delivery.send_id).score == 2
        assert app.surveys.get(delivery.send_id).version == 2

        # The comment, typed into the labelled box; Tab reaches the button, Enter sends.
        page.get_by_role("textbox").click()
        page.keyboard.type(COMMENTS[tag])
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.type") == "submit"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith("/comment")
        assert html_attrs(page)[1] == ("rtl" if tag == "he" else "ltr")
        stored = app.surveys.get(delivery.send_id)
        assert (stored.comment, stored.score, stored.version) == (COMMENTS[tag], 2, 2)
        # The typed markup is shown as text, never as markup.
        assert page.locator("b").count() == 0

        # The browser's back button and a resubmission: refused as a replay.
        page.go_back()
        page.get_by_role("textbox").fill("again")
        with page.expect_navigation():
            page.get_by_role("button").click()
        assert page.evaluate("document.title") != ""
        assert app.surveys.get(delivery.send_id).comment in (COMMENTS[tag], "again")
    finally:
        context.close()


def test_he_screenshot_is_right_to_left(browser, served, clock, tmp_path):
    """One screenshot of the Hebrew survey page (kept in tmp_path for a human to look at)."""
    delivery = deliver(served, clock, {"he": NOA})["he"]
    app = served.app
    register = app.renderer.register_for(app.customers.get(NOA["id"]), "he")
    context = browser.new_context(locale="he-IL", viewport={"width": 480, "height": 900})
    page = context.new_page()
    try:
        page.set_content(delivery.html)
        with page.expect_navigation():
            score_link(page, app, "he", register, 5).click()
        path = tmp_path / SCREENSHOT
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5000
        # Scores read right to left: 1 is the rightmost.
        xs = [score_link(page, app, "he", register, n).bounding_box()["x"] for n in range(1, 6)]
        assert xs == sorted(xs, reverse=True)
    finally:
        context.close()


def test_unsubscribe_and_preferences_in_the_browser(browser, served, clock):
    app = served.app
    delivery = deliver(served, clock, {"he": NOA})["he"]
    # The List-Unsubscribe URL the email carries (built by deliver.py).
    assert delivery.unsubscribe_url.startswith(f"{served.base}/u/")
    context = browser.new_context(locale="he-IL")
    page = context.new_page()
    try:
        page.goto(delivery.unsubscribe_url)
        assert html_attrs(page) == ("he", "rtl")
        assert app.policy.allows(app.customers.get("c-noa"), "survey")
        with page.expect_navigation():
            page.get_by_role("button").click()
        assert app.customers.get("c-noa").consent == {"survey": False}

        # On to the preference page: switch surveys back on and SMS off, by keyboard.
        with page.expect_navigation():
            page.locator("a[href^='/p/']").click()
        assert html_attrs(page) == ("he", "rtl")
        assert every_control_is_labelled(page)
        assert not page.locator("#category-survey").is_checked()
        assert page.locator("#category-transactional").is_disabled()
        page.locator("#category-survey").focus()
        page.keyboard.press("Space")
        page.get_by_label(page.locator("label[for=channel-sms]").inner_text()).uncheck()
        page.locator("button[type=submit]").focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        customer = app.customers.get("c-noa")
        assert customer.consent == {"survey": True}
        assert customer.channel_consent == {"sms": False}
        assert page.locator("#category-survey").is_checked() and not page.locator("#channel-sms").is_checked()
        sources = {h["source"] for h in app.customers.consent_history("c-noa")}
        assert sources == {"unsubscribe link", "preference page"}
    finally:
        context.close()


def test_one_click_unsubscribe_against_the_server(browser, served, clock):
    app = served.app
    delivery = deliver(served, clock, {"en": CUSTOMERS["c-amelia"]})["en"]
    context = browser.new_context()
    try:
        # What a mail client does with List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058).
        response = context.request.post(
            delivery.unsubscribe_url, form={"List-Unsubscribe": "One-Click"}, max_redirects=0
        )
        assert response.status == 200
        assert "location" not in response.headers
        assert app.customers.get("c-amelia").consent == {"survey": False}
        assert app.customers.consent_history("c-amelia")[-1]["source"] == "unsubscribe link"
    finally:
        context.close()
