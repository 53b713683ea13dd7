"""Which channel first, by the customer's choice or their country's order, and the hours the law
lets marketing go out on SMS and WhatsApp (policy.toml ``[routing]`` and ``[legal_hours]``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.customers.profile import Customer
from outreach.policy.channels import ordered, within_legal_hours
from outreach.policy.config import load_policy
from outreach.settings import STARTER
from outreach.timing import zone

from .helpers import at, deliver_due, plan_send

POLICY = load_policy(STARTER / "config")
CHANNELS = ["email", "sms", "whatsapp", "line", "webhook"]


def customer(country: str | None, channel: str | None = None, zone_name: str = "UTC") -> Customer:
    return Customer.from_mapping(
        {"id": "c-1", "name": "A", "email": "a@example.com", "phone": "+14155550100", "country": country,
         "channel": channel, "zone": zone_name}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("country", "step", "expected"),
    [
        ("BR", ["email", "sms", "whatsapp"], ["whatsapp", "sms", "email"]),
        ("JP", ["email", "line"], ["line", "email"]),
        ("US", ["email", "sms"], ["sms", "email"]),
        ("DE", ["sms", "email"], ["email", "sms"]),
        ("NZ", ["sms", "email"], ["sms", "email"]),  # no order for the country: the step's
        (None, ["sms", "email"], ["sms", "email"]),
    ],
)
def test_a_country_orders_the_steps_channels(country, step, expected):
    assert ordered(step, customer(country), POLICY.routing) == expected


def test_the_customers_own_choice_comes_first_then_their_countrys_order():
    assert ordered(["email", "sms", "whatsapp"], customer("BR", "email"), POLICY.routing) == [
        "email", "whatsapp", "sms",
    ]  # fmt: skip
    # A choice the step does not offer: the country's order for the rest.
    assert ordered(["email", "sms"], customer("BR", "whatsapp"), POLICY.routing) == ["sms", "email"]


@settings(max_examples=200, deadline=None)
@given(
    step=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=5, unique=True),
    country=st.sampled_from([None, "BR", "JP", "US", "DE", "CN", "NZ"]),
    chosen=st.one_of(st.none(), st.sampled_from(["email", "sms", "whatsapp"])),
)
def test_the_order_is_always_a_permutation_of_the_steps_channels(step, country, chosen):
    found = ordered(step, customer(country, chosen), POLICY.routing)
    assert sorted(found) == sorted(step), "never a channel the step does not name, never one dropped"
    routed = [c for c in POLICY.routing.get(country or "", ()) if c in step and c != chosen]
    if chosen in step:
        assert found[0] == chosen
        found = found[1:]
    assert found[: len(routed)] == routed


# -- legal hours -------------------------------------------------------------------------------


def _decide(country: str, zone_name: str, local: datetime, category: str = "marketing"):
    who = customer(country, zone_name=zone_name)
    now = local.replace(tzinfo=zone(zone_name)).astimezone(UTC)
    pairs = [("sms", "+14155550100"), ("email", "a@example.com")]
    return within_legal_hours(pairs, who, category, POLICY.legal_hours, now), now


def test_us_marketing_sms_after_nine_at_night_goes_by_email_instead():
    (allowed, skipped, opens), _ = _decide("US", "America/Los_Angeles", datetime(2026, 6, 3, 21, 30))
    assert allowed == [("email", "a@example.com")] and opens is None
    assert "TCPA" in skipped[0] and "08:00-21:00" in skipped[0]


def test_us_marketing_sms_alone_waits_for_eight_in_the_morning_local():
    who = customer("US", zone_name="America/Chicago")
    now = datetime(2026, 6, 3, 22, 15, tzinfo=zone("America/Chicago")).astimezone(UTC)
    allowed, _, opens = within_legal_hours([("sms", "+1")], who, "marketing", POLICY.legal_hours, now)
    assert allowed == [] and opens == datetime(2026, 6, 4, 8, 0, tzinfo=zone("America/Chicago"))


def test_transactional_messages_keep_their_own_hours():
    (allowed, skipped, _), _ = _decide("US", "America/New_York", datetime(2026, 6, 3, 23, 0), "transactional")
    assert [c for c, _ in allowed] == ["sms", "email"] and skipped == []


@pytest.mark.parametrize(
    ("local", "next_open"),
    [
        (datetime(2026, 6, 7, 11, 0), datetime(2026, 6, 8, 8, 0)),  # a Sunday: Monday 08:00
        (datetime(2026, 7, 14, 11, 0), datetime(2026, 7, 15, 8, 0)),  # Bastille Day
        (datetime(2026, 6, 3, 20, 0), datetime(2026, 6, 4, 8, 0)),  # 20:00 is closed
        (datetime(2026, 6, 6, 19, 59), None),  # a Saturday evening is open
    ],
)
def test_france_no_sundays_or_public_holidays_and_eight_to_eight(local, next_open):
    who = customer("FR", zone_name="Europe/Paris")
    now = local.replace(tzinfo=zone("Europe/Paris")).astimezone(UTC)
    allowed, _, opens = within_legal_hours([("sms", "+33")], who, "marketing", POLICY.legal_hours, now)
    if next_open is None:
        assert allowed and opens is None
    else:
        assert opens == next_open.replace(tzinfo=zone("Europe/Paris"))


def test_brazil_saturday_afternoon_waits_for_monday_and_either_set_of_hours_opens():
    who = customer("BR", zone_name="America/Sao_Paulo")
    sp = zone("America/Sao_Paulo")
    saturday = datetime(2026, 6, 6, 14, 0, tzinfo=sp).astimezone(UTC)
    _, _, opens = within_legal_hours([("whatsapp", "+55")], who, "marketing", POLICY.legal_hours, saturday)
    assert opens == datetime(2026, 6, 8, 8, 0, tzinfo=sp)
    morning = datetime(2026, 6, 6, 10, 0, tzinfo=sp).astimezone(UTC)
    allowed, _, _ = within_legal_hours([("whatsapp", "+55")], who, "marketing", POLICY.legal_hours, morning)
    assert allowed


def test_a_marketing_send_at_night_is_deferred_with_the_law_named(app, clock):
    app.upsert_customer(
        {"id": "c-us", "name": "Sam", "phone": "+14155550100", "country": "US", "zone": "America/Los_Angeles",
         "consent": {"marketing": True}}
    )  # fmt: skip
    # 06:00 UTC on the test's Friday is 23:00 the day before in Los Angeles.
    data = {"order_id": "A", "new_eta": "2026-03-25"}
    send_id = plan_send(app, "promo", clock.now(), "c-us", data=data, channels='["sms"]',
                        category="marketing", zone="America/Los_Angeles", country="US")  # fmt: skip
    [outcome] = deliver_due(app)
    send = app.schedule.get(send_id)
    assert (outcome.state, outcome.reason) == ("deferred", "legal_hours")
    assert send.due.astimezone(zone("America/Los_Angeles")).hour == 8
    clock.advance(timedelta(hours=9, minutes=1))
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert at("2026-03-20T15:00:00Z") <= app.clock.now()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[legal_hours.US]\nchannels = ["smss"]\nwindow = "08:00-21:00"\n',
            "channels='smss': no such channel",
        ),
        (
            '[legal_hours.US]\ncategories = ["promo"]\nchannels = ["sms"]\nwindow = "08:00-21:00"\n',
            "categories='promo': no such category",
        ),
        ('[legal_hours.US]\nchannels = ["sms"]\n', "window=None"),
        (
            '[legal_hours.US]\ncategories = ["transactional"]\nchannels = ["sms"]\nwindow = "08:00-21:00"\n',
            "is not consentable",
        ),
        ('[legal_hours.us]\nchannels = ["sms"]\nwindow = "08:00-21:00"\n', "ISO 3166"),
        ('[legal_hours.US]\nchannels = ["sms"]\nwindow = "8 to 9"\n', "legal_hours.US.window"),
        ('[routing]\nBR = "whatsapp"\n', "routing.BR"),
    ],
)
def test_a_law_that_would_apply_to_nothing_is_refused_naming_the_key(tmp_path, table, message):
    from outreach.errors import ConfigError

    (tmp_path / "policy.toml").write_text(table)
    with pytest.raises(ConfigError, match=message):
        load_policy(tmp_path)
