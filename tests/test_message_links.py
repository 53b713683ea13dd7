"""Links in the body: every template gets ``unsubscribe_url`` and ``preferences_url``, and every
shipped message customers can opt out of shows a visible unsubscribe link in its email text and HTML."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.journeys.config import load_journeys
from outreach.journeys.preview import preview
from outreach.localization.locales import load_locales
from outreach.localization.render import Renderer
from outreach.registry import needs_consent
from outreach.settings import STARTER

from .helpers import deliver_due, ingest, outbox

JOURNEYS = load_journeys(STARTER / "config", STARTER / "templates")
LOCALES = load_locales(STARTER / "config")
RENDERER = Renderer(STARTER / "templates", LOCALES)
EMAIL_STEPS = [
    (journey.name, step.name)
    for journey in JOURNEYS
    for step in journey.steps
    if "email" in step.channels and needs_consent(journey.category)
]


@pytest.mark.parametrize("locale", LOCALES.shipped)
@pytest.mark.parametrize(("journey", "step"), EMAIL_STEPS)
def test_every_shipped_email_customers_can_opt_out_of_shows_an_unsubscribe_link(journey, step, locale):
    rendered, _ = preview(RENDERER, JOURNEYS, f"{journey}.{step}", locale=locale, channel="email")
    assert "http://localhost:8000/u/" in rendered.text and "http://localhost:8000/p/" in rendered.text
    assert (
        'href="http://localhost:8000/u/' in rendered.html
        and 'href="http://localhost:8000/p/' in rendered.html
    )


@pytest.mark.parametrize("locale", LOCALES.shipped)
def test_a_message_that_must_be_told_has_no_unsubscribe_link(locale):
    rendered, _ = preview(RENDERER, JOURNEYS, "order_delay.notice", locale=locale, channel="email")
    assert "/u/" not in rendered.text and "/u/" not in rendered.html


def test_the_body_link_is_the_one_in_the_header_and_it_works(app, customers, clock):
    ingest(app, "customer.signed_up", "c-amelia", clock.now().isoformat(), id="su")
    clock.set(app.schedule.next_due())
    deliver_due(app)
    (row,) = [r for r in outbox(app) if r["step"] == "welcome"]
    url = row["unsubscribe_url"]
    assert url and url in row["body"] and f'href="{url}"' in row["html"]
    from .test_web_pages import web_client

    with web_client(app) as web:
        page = web.get(url.removeprefix(app.settings.public_url))
        assert page.status_code == 200


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(min_size=1, max_size=40),
    purpose=st.sampled_from(["unsubscribe", "answer", "preferences"]),
    fields=st.dictionaries(st.sampled_from(["c", "s", "k", "v"]), st.text(max_size=20) | st.integers()),
)
def test_a_token_is_the_hmac_of_its_purpose_and_body_whatever_the_secret(secret, purpose, fields):
    import hashlib
    import hmac

    from outreach.links import _unb64, make_token, read_token

    token = make_token(secret, purpose, fields)
    body, mac = token.split(".")
    expected = hmac.new(secret.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    assert _unb64(mac) == expected
    assert read_token([secret + "x", secret], purpose, token, datetime.now(UTC)) == fields
