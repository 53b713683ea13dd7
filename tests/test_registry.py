"""The registries: one owner per list of names, and lookups that never crash on what config or a
caller hands them (a list from a TOML file, a number)."""

from __future__ import annotations

import shutil

import pytest

from outreach import ConfigError, InputError
from outreach.channels.registry import PROVIDERS
from outreach.journeys.config import load_journeys
from outreach.registry import (
    APP_ADDRESSES,
    CATEGORIES,
    CHANNELS,
    EVENT_TYPES,
    Entry,
    Registry,
    consentable,
    needs_consent,
)
from outreach.settings import STARTER
from outreach.surveys.scales import SCALES


@pytest.mark.parametrize("value", [["email"], {"a": 1}, 3, None, b"email", ("email",)])
def test_a_lookup_of_anything_that_is_not_a_name_finds_nothing(value):
    for registry in (CATEGORIES, CHANNELS, EVENT_TYPES, SCALES, PROVIDERS):
        assert value not in registry
        assert registry.get(value) is None


def test_a_name_is_declared_once():
    registry: Registry[Entry] = Registry("thing", [Entry("a")])
    with pytest.raises(ConfigError, match="thing 'a' is declared twice"):
        registry.add(Entry("a"))
    assert registry.names() == ("a",) and list(registry) == ["a"] and len(registry) == 1


def test_consent_is_needed_for_every_category_but_the_transactional_ones():
    assert consentable() == tuple(c for c in CATEGORIES if CATEGORIES[c].consentable)
    assert not needs_consent("transactional") and needs_consent("marketing")
    assert needs_consent("a category nobody declared")  # unknown: never sent without consent


def test_every_channel_names_a_provider_kind_and_a_profile_field():
    from outreach.customers.profile import Customer

    fields = set(Customer.__dataclass_fields__) | set(APP_ADDRESSES)  # apps: under ``addresses``
    for name in CHANNELS:
        assert CHANNELS[name].provider in PROVIDERS
        assert CHANNELS[name].address in fields


@pytest.mark.parametrize(
    ("key", "value"),
    [("category", '["x"]'), ("trigger", '["order.delayed"]'), ("category", "3"), ("channels", '[["email"]]')],
)
def test_a_journey_with_a_value_of_the_wrong_type_is_refused_naming_it(tmp_path, key, value):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    path = config / "journeys" / "order_delay.toml"
    text = path.read_text()
    old = {
        "category": 'category = "transactional"',
        "trigger": 'trigger = "order.delayed"',
        "channels": 'channels = ["email", "sms"]',
    }[key]
    path.write_text(text.replace(old, f"{key} = {value}"))
    with pytest.raises(ConfigError, match=key):
        load_journeys(config, STARTER / "templates")


def test_a_consent_change_for_a_category_that_is_not_a_name_is_refused(app):
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com"})
    with pytest.raises(InputError, match="category"):
        app.set_consent("c1", category=["marketing"], allowed=False)  # type: ignore[arg-type]
