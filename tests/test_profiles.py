"""Profiles that cannot silently go wrong: aliases, unknown fields, and a zone that is given,
inferred from a country whose clocks agree, or known to be unknown."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from babel.core import get_global
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from outreach import InputError, Outreach
from outreach.cli.commands import main
from outreach.customers.profile import ALIASES, FIELDS, ZONE_FROM_COUNTRY, ZONE_GIVEN, ZONE_UNKNOWN, Customer
from outreach.settings import STARTER
from outreach.timing import country_zone, zone

from .conftest import make_settings
from .helpers import ingest

BASE = {"id": "p1", "name": "Pat", "email": "pat@example.com"}


@pytest.mark.parametrize(("alias", "field"), sorted(ALIASES.items()))
def test_every_alias_lands_in_its_field(alias, field):
    value = {"zone": "Asia/Tokyo", "locale": "ja_JP", "given_name": "Pat", "family_name": "Lee",
             "email": "pat.lee@example.com", "phone": "+81312345678", "preferred_name": "Patty",
             "gender": "feminine"}[field]  # fmt: skip
    base = {k: v for k, v in BASE.items() if k != field}
    customer = Customer.from_mapping({**base, "country": "JP", alias: value})
    assert getattr(customer, field) == value
    assert alias not in customer.attributes


def test_an_alias_that_disagrees_with_its_field_is_refused():
    with pytest.raises(InputError) as caught:
        Customer.from_mapping({**BASE, "zone": "Europe/Rome", "timezone": "Asia/Tokyo"})
    assert caught.value.field == "timezone" and "zone too" in caught.value.problem
    # Saying the same thing twice is fine.
    assert Customer.from_mapping({**BASE, "zone": "Europe/Rome", "tz": "Europe/Rome"}).zone == "Europe/Rome"


@given(
    st.text(min_size=1, max_size=12).filter(
        lambda k: k not in FIELDS and k not in ALIASES and k != "zone_from"
    )
)
def test_an_unknown_top_level_field_is_refused_naming_it(key):
    with pytest.raises(InputError) as caught:
        Customer.from_mapping({**BASE, key: "x"})
    assert caught.value.field == key and "attributes" in caught.value.problem


@pytest.mark.parametrize("country", sorted(get_global("territory_zones")))
def test_a_country_zone_is_one_whose_clock_every_zone_of_the_country_keeps(country):
    found = country_zone(country)
    if found is None:
        return
    names = get_global("territory_zones")[country]
    assert found in names
    for name in names:
        try:
            other = zone(name)
        except InputError:
            continue  # a zone CLDR knows and this tzdata does not
        for week in range(104):
            instant = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(weeks=week)
            assert instant.astimezone(zone(found)).utcoffset() == instant.astimezone(other).utcoffset(), name


@pytest.mark.parametrize(
    ("profile", "zone_name", "source"),
    [
        ({"zone": "America/Chicago", "country": "US"}, "America/Chicago", ZONE_GIVEN),
        ({"country": "FR"}, "Europe/Paris", ZONE_FROM_COUNTRY),
        ({"country": "de"}, "Europe/Berlin", ZONE_FROM_COUNTRY),
        ({"country": "US"}, "UTC", ZONE_UNKNOWN),
        ({}, "UTC", ZONE_UNKNOWN),
    ],
)
def test_the_zone_is_given_inferred_or_unknown(profile, zone_name, source):
    customer = Customer.from_mapping({**BASE, **profile})
    assert (customer.zone, customer.zone_from, customer.zone_known) == (
        zone_name,
        source,
        source != ZONE_UNKNOWN,
    )
    assert Customer.from_json(customer.to_json()) == customer


def test_events_for_a_customer_without_a_zone_are_refused_naming_it_then_replayed(app, clock):
    app.upsert_customer({**BASE, "country": "US"})
    assert ingest(app, "customer.signed_up", "p1", clock.now().isoformat(), id="e1") is None
    (letter,) = app.deadletters.list()
    assert "zone" in letter.reason and "US has clocks in more than one zone" in letter.reason
    assert app.schedule.send_ids_of("p1") == []  # nothing happened, not even half
    app.upsert_customer({**BASE, "country": "US", "zone": "America/Denver"})
    app.replay(letter.id)
    app.drain(worker := app.worker(threads=1))
    worker.stop()
    assert len(app.schedule.send_ids_of("p1")) >= 2


def test_a_journey_without_local_times_needs_no_zone(tmp_path, client, clock):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    with (config / "categories.toml").open("a") as fh:
        fh.write("\n[alerts]\nconsentable = false\n")
    (config / "journeys" / "order_delay.toml").write_text(
        (config / "journeys" / "order_delay.toml").read_text().replace('category = "transactional"',
                                                                        'category = "alerts"')
    )  # fmt: skip
    app = Outreach(make_settings(tmp_path, config_dir=config), client=client, clock=clock)
    app.upsert_customer(BASE)
    result = ingest(
        app, "order.delayed", "p1", clock.now().isoformat(), data={"order_id": "A", "new_eta": "2026-04-01"}
    )
    assert result is not None and len(result.planned) == 1


def test_a_csv_with_a_timezone_column_keeps_the_zone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("OUTREACH_REDIS_URL", "OUTREACH_PROJECT", "OUTREACH_CONFIG_DIR", "OUTREACH_TEMPLATES_DIR"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "people.csv").write_text(
        "id,first_name,last_name,email,timezone,consent.marketing,channel_consent.sms,attributes.plan\n"
        "k1,Kai,Ito,kai@example.com,Asia/Tokyo,yes,no,pro\n"
        "k2,Kim,Ro,kim@example.com,Asia/Seoul,,,\n"
        "k3,Lu,Wu,lu@example.com,Mars/Olympus,,,\n"
    )
    runner = CliRunner()
    done = runner.invoke(main, ["customers", "import", "people.csv"])
    assert done.exit_code == 0, done.output
    assert "imported 2 customers, 1 rejected" in done.output
    shown = runner.invoke(main, ["customers", "show", "k1"]).output
    assert '"zone": "Asia/Tokyo"' in shown and '"given_name": "Kai"' in shown
    assert '"consent": {"marketing": true}' in shown and '"channel_consent": {"sms": false}' in shown
    assert '"plan": "pro"' in shown
    letters = runner.invoke(main, ["dead-letters", "list"]).output
    assert "people.csv:4" in letters and "zone" in letters


def test_an_unknown_csv_column_is_named_on_each_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text(
        "id,name,email,zone,favourite_colour\nk1,Kai,kai@example.com,UTC,red\n"
    )
    done = CliRunner().invoke(main, ["customers", "import", "people.csv"])
    assert "imported 0 customers, 1 rejected" in done.output


def test_the_api_refuses_an_unknown_profile_field(app):
    from .test_web_pages import TOKEN, web_client

    with web_client(app) as web:
        answer = web.put("/v1/customers/p1", json={"name": "Pat", "timezone": "Asia/Tokyo"},
                         headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    # The API's schema names its fields: an alias is not one of them.
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "timezone"
    assert app.customers.get("p1") is None


def test_a_profile_read_back_infers_its_zone_again():
    unknown = Customer.from_mapping({**BASE, "country": "US"})
    again = Customer.from_mapping(json.loads(unknown.to_json()))
    assert (again.zone, again.zone_from) == ("UTC", ZONE_UNKNOWN)
    french = Customer.from_mapping({**BASE, "country": "FR"})
    moved = Customer.from_mapping({**json.loads(french.to_json()), "country": "JP"})
    assert (moved.zone, moved.zone_from) == ("Asia/Tokyo", ZONE_FROM_COUNTRY)
