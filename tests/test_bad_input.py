"""Bad input gets a clear error naming field and value; nothing else is lost; it is dead-lettered."""

from __future__ import annotations

import shutil

import pytest

from outreach import ConfigError, InputError, Outreach, UnknownEventType
from outreach.customers.profile import Customer

from .conftest import STARTER, make_settings
from .helpers import at, deliver_due, ingest, outbox


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("zone", "Mars/Olympus", "zone='Mars/Olympus'"),
        ("locale", "xx_YY", "locale='xx_YY'"),
        ("email", "not-an-address", "email='not-an-address'"),
        ("channel", "pigeon", "channel='pigeon'"),
        ("formality", "casual", "formality='casual'"),
        ("country", "Germany", "country='Germany'"),
    ],
)
def test_invalid_profile_fields_are_named(field, value, words):
    data = {"id": "c1", "name": "Ana", "email": "ana@example.com", field: value}
    with pytest.raises(InputError) as info:
        Customer.from_mapping(data)
    assert words in str(info.value)
    assert info.value.field == field


def test_bcp47_locale_is_accepted():
    assert Customer.from_mapping({"id": "c1", "name": "Ana", "locale": "pt-BR"}).locale == "pt_BR"


def test_unknown_event_type_is_rejected_when_emitted(app):
    with pytest.raises(UnknownEventType) as info:
        app.emit("customer.exploded", "c-amelia")
    assert "type='customer.exploded'" in str(info.value)


def test_bad_events_in_a_batch_are_dead_lettered_and_the_rest_goes_on(app, customers, clock):
    batch = [
        {
            "id": "b1",
            "type": "order.delayed",
            "customer_id": "nobody",
            "data": {"order_id": "1", "new_eta": "2026-03-24"},
        },  # fmt: skip
        {
            "id": "b2",
            "type": "order.delayed",
            "customer_id": "c-haruto",
            "data": {"order_id": "H-1", "new_eta": "2026-03-24"},
        },
        {"id": "b3", "type": "order.delayed", "customer_id": "c-haruto", "data": {}},
        {"id": "b4", "type": "order.delayed", "customer_id": "c-haruto", "occurred_at": "yesterday"},
        "not an object",
    ]
    results = [app.ingest(e) for e in batch]
    assert [r is not None for r in results] == [False, True, False, False, False]
    reasons = sorted(d.reason for d in app.deadletters.list())
    assert any("customer_id='nobody': no such customer" in r for r in reasons)
    assert any("data.order_id=None" in r for r in reasons)
    assert any("occurred_at='yesterday'" in r for r in reasons)
    assert any("event='not an object'" in r for r in reasons)
    deliver_due(app)
    assert [r["customer_id"] for r in outbox(app)] == ["c-haruto"]


def test_dead_lettered_event_can_be_replayed_after_the_fix(app, worker, customers, clock):
    event = {
        "id": "late-customer",
        "type": "order.delayed",
        "customer_id": "c-new",
        "occurred_at": "2026-03-20T08:00:00Z",
        "data": {"order_id": "N-1", "new_eta": "2026-03-24"},
    }
    app.ingest_actor.send(event)
    app.drain(worker)
    [letter] = app.deadletters.list()
    assert letter.kind == "event" and "c-new" in letter.reason
    app.upsert_customer({"id": "c-new", "name": "Nia", "email": "nia@example.com", "zone": "UTC"})
    assert app.replay(letter.id) == "event"
    app.drain(worker)
    clock.set(at("2026-03-20T08:00:01Z"))
    deliver_due(app)
    assert [r["customer_id"] for r in outbox(app)] == ["c-new"]
    assert app.deadletters.count() == 0


def test_template_that_fails_to_render_is_dead_lettered(tmp_path, client, clock):
    templates = tmp_path / "templates"
    shutil.copytree(STARTER / "templates", templates)
    # A field the event carries, used wrongly: only rendering can tell.
    (templates / "order_delay/notice/subject.txt").write_text("{{ data.order_id.deeper }}")
    app = Outreach(make_settings(tmp_path, templates_dir=templates), client=client, clock=clock)
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "UTC"})
    app.upsert_customer({"id": "c2", "name": "Bo", "phone": "+12125550100", "channel": "sms", "zone": "UTC"})
    for cid in ("c1", "c2"):
        ingest(
            app,
            "order.delayed",
            cid,
            "2026-03-20T12:00:00Z",
            id=f"o-{cid}",
            data={"order_id": "1", "new_eta": "2026-03-24"},
        )
    clock.set(at("2026-03-20T12:00:01Z"))
    states = sorted((o.state, o.reason) for o in deliver_due(app))
    assert states == [("delivered", "sms"), ("failed", "template_error")]
    [letter] = app.deadletters.list()
    assert "order_delay/notice/subject.txt" in letter.reason


def test_a_template_using_a_field_its_event_lacks_is_refused_at_load(tmp_path, client, clock):
    templates = tmp_path / "templates"
    shutil.copytree(STARTER / "templates", templates)
    (templates / "order_delay/notice/subject.txt").write_text("Order\n{{ data.missing_field }}")
    with pytest.raises(ConfigError) as caught:
        Outreach(make_settings(tmp_path, templates_dir=templates), client=client, clock=clock)
    assert (
        "order_delay/notice/subject.txt:2: uses data.missing_field, which order.delayed does not carry"
        in str(caught.value)
    )


def _config_with(tmp_path, name: str, text: str):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    (config / "journeys" / name).write_text(text)
    return config


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            '[journey]\nname = "x"\ncategory = "lifecycle"\ntrigger = "customer.signed_upp"\n'
            '[[journey.steps]]\nname = "a"\ntemplate = "onboarding/welcome"\n',
            "journey 'x': trigger='customer.signed_upp'",
        ),
        (
            '[journey]\nname = "x"\ncategory = "lifecycle"\ntrigger = "customer.signed_up"\n'
            '[[journey.steps]]\nname = "a"\ntemplate = "onboarding/welcome"\nat = "25:00"\n',
            "journey 'x': steps[0] (a): at='25:00'",
        ),
        (
            '[journey]\nname = "x"\ncategory = "lifecycle"\ntrigger = "customer.signed_up"\n'
            '[[journey.steps]]\nname = "a"\ntemplate = "onboarding/welcome"\nwindow = "9-5"\n',
            "journey 'x': steps[0] (a): window='9-5'",
        ),
        (
            '[journey]\nname = "x"\ncategory = "lifecycle"\ntrigger = "customer.signed_up"\n'
            '[[journey.steps]]\nname = "a"\ntemplate = "nope/missing"\n',
            "journey 'x': steps[0] (a): template='nope/missing'",
        ),
        (
            '[journey]\nname = "x"\ncategory = "lifecycle"\ntrigger = "customer.signed_up"\n'
            'exit_onn = ["customer.activated"]\n[[journey.steps]]\nname = "a"\n',
            "journey 'x': exit_onn=",
        ),
        (
            '[journey]\nname = "x"\ncategory = "lifecycle"\ntrigger = "customer.signed_up"\n'
            '[[journey.steps]]\nname = "a"\ntemplate = "onboarding/welcome"\nchannels = ["fax"]\n',
            "channels=['fax']",
        ),
        ('[journey\nname = "x"', "not valid TOML"),
    ],
)
def test_journey_typos_name_file_journey_and_field(tmp_path, client, clock, text, words):
    config = _config_with(tmp_path, "broken.toml", text)
    with pytest.raises(ConfigError) as info:
        Outreach(make_settings(tmp_path, config_dir=config), client=client, clock=clock)
    assert "broken.toml" in str(info.value)
    assert words in str(info.value)
