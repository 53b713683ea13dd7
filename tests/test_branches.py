"""Wait up to N days for an event, then branch: a step planned when the event comes (``when``), and a
step sent only if it did not come first (``unless``)."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from outreach import ConfigError, Outreach
from outreach.settings import STARTER

from .conftest import make_settings
from .helpers import deliver_due, ingest, outbox

JOURNEY = """
[journey]
name = "activation"
category = "lifecycle"
trigger = "customer.signed_up"
exit_on = ["customer.unsubscribed"]

[[journey.steps]]
name = "congrats"
when = "customer.activated"
within_days = 3
delay_hours = 1
template = "onboarding/tips"

[[journey.steps]]
name = "nudge"
unless = "customer.activated"
days = 3
at = "10:00"
template = "onboarding/checkin"
"""


def app_with(tmp_path, client, clock, journey: str = JOURNEY) -> Outreach:
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    (config / "journeys" / "activation.toml").write_text(journey)
    (config / "journeys" / "onboarding.toml").unlink()  # its lifecycle messages would share the daily cap
    app = Outreach(make_settings(tmp_path, config_dir=config), client=client, clock=clock)
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Lisbon"})
    return app


def steps_of(app, send_ids) -> dict[str, str]:
    return {app.schedule.get(s).step: s for s in send_ids if app.schedule.get(s).journey == "activation"}


def test_the_event_came_the_waiting_step_goes_and_the_other_branch_is_cancelled(tmp_path, client, clock):
    app = app_with(tmp_path, client, clock)
    started = steps_of(app, ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned)
    assert set(started) == {"nudge"}  # the waiting step is not planned yet
    clock.set(clock.now() + timedelta(days=2))
    came = ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="act")
    congrats = steps_of(app, came.planned)["congrats"]  # (the starter's ces journey starts too)
    # Counted from the event (06:00 + 1 h), then into the lifecycle window, which opens at 09:00 in Lisbon.
    assert app.schedule.due_of(congrats) == clock.now().replace(hour=9)
    nudge = app.schedule.get(started["nudge"])
    assert (nudge.state, nudge.cancelled) == ("cancelled", "event_came")
    assert "customer.activated came" in app.schedule.history(started["nudge"])[-1]["text"]
    # A repeat of the awaited event plans nothing twice.
    assert (
        steps_of(app, ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="act2").planned)
        == {}
    )
    clock.set(app.schedule.due_of(congrats))
    outcomes = deliver_due(app)
    clock.set(clock.now() + timedelta(days=5, hours=2))
    outcomes += deliver_due(app)
    delivered = {o.send_id for o in outcomes if o.state == "delivered"}
    assert congrats in delivered and started["nudge"] not in delivered
    assert [r["step"] for r in outbox(app) if r["journey"] == "activation"] == ["congrats"]


def test_the_event_did_not_come_the_other_branch_goes(tmp_path, client, clock):
    app = app_with(tmp_path, client, clock)
    started = steps_of(app, ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned)
    clock.set(app.schedule.due_of(started["nudge"]))
    deliver_due(app)
    assert app.schedule.get(started["nudge"]).state == "delivered"
    clock.set(clock.now() + timedelta(days=1))
    late = ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="act")
    assert steps_of(app, late.planned) == {}
    assert "activation.congrats not planned: customer.activated came" in late.notes[0]


def test_an_exit_forgets_the_wait(tmp_path, client, clock):
    app = app_with(tmp_path, client, clock)
    ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su")
    ingest(
        app,
        "customer.unsubscribed",
        "c1",
        clock.now().isoformat(),
        id="bye",
        data={"categories": ["lifecycle"]},
    )
    assert (
        steps_of(app, ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="act").planned)
        == {}
    )


def test_an_erasure_removes_the_wait(tmp_path, client, clock):
    app = app_with(tmp_path, client, clock)
    ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su")
    assert app.client.exists(app.keys.journey_start("activation", "c1"))
    app.erase_customer("c1")
    assert not app.client.exists(app.keys.journey_start("activation", "c1"))


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ('when = "customer.activated"', "within_days=None: a step that waits (when) says for how long"),
        ('when = "customer.nope"\nwithin_days = 2', "when='customer.nope': must be a declared event type"),
        ('unless = "x.y"', "unless='x.y': must be a declared event type"),
        ('when = "customer.activated"\nwithin_days = 0', "within_days=0: must be a whole number of days"),
    ],
)
def test_bad_branches_are_refused_naming_the_step(tmp_path, client, clock, step, words):
    journey = ('[journey]\nname = "activation"\ncategory = "lifecycle"\ntrigger = "customer.signed_up"\n'
               f'[[journey.steps]]\nname = "x"\ntemplate = "onboarding/tips"\n{step}\n')  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        app_with(tmp_path, client, clock, journey)
    assert "activation.toml: journey 'activation': steps[0] (x)" in str(caught.value) and words in str(
        caught.value
    )


ORDERS = """
[event."order.shipped"]
data.order_id = { type = "string", required = true }
"""

SHIPPING = """
[journey]
name = "shipping"
category = "transactional"
trigger = "order.delayed"
supersede_by = "order_id"

[[journey.steps]]
name = "shipped"
when = "order.shipped"
within_days = 10
template = "order_delay/notice"
"""


def test_a_wait_belongs_to_its_order_and_a_superseded_order_waits_once(tmp_path, client, clock):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    with (config / "events.toml").open("a") as fh:
        fh.write(ORDERS)
    (config / "journeys" / "shipping.toml").write_text(SHIPPING)
    app = Outreach(make_settings(tmp_path, config_dir=config), client=client, clock=clock)
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Lisbon"})

    def delayed(event_id: str, order: str) -> None:
        ingest(app, "order.delayed", "c1", clock.now().isoformat(), id=event_id,
               data={"order_id": order, "new_eta": "2026-03-30"})  # fmt: skip

    def shipped(event_id: str, order: str) -> list[str]:
        result = ingest(
            app, "order.shipped", "c1", clock.now().isoformat(), id=event_id, data={"order_id": order}
        )
        return [s for s in result.planned if app.schedule.get(s).journey == "shipping"]

    delayed("d-x", "X")
    delayed("d-y", "Y")
    (for_x,) = shipped("s-x", "X")
    assert app.schedule.get(for_x).data["order_id"] == "X"  # X's own start, not the latest one
    delayed("d-x2", "X")  # a newer delay of X supersedes the first: its planned shipping note too
    assert app.schedule.get(for_x).cancelled == "superseded"
    (again,) = shipped("s-x2", "X")
    assert again != for_x and app.schedule.get(again).data["order_id"] == "X"


def test_a_wait_on_an_event_without_the_journeys_key_is_refused_at_load(tmp_path, client, clock):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    with (config / "events.toml").open("a") as fh:
        fh.write('\n[event."order.shipped"]\ndata.tracking = { type = "string" }\n')
    (config / "journeys" / "shipping.toml").write_text(SHIPPING)
    with pytest.raises(ConfigError, match="when='order.shipped': must carry data.order_id"):
        Outreach(make_settings(tmp_path, config_dir=config), client=client, clock=clock)


def test_a_step_unless_its_own_trigger_comes_again_is_not_cancelled_by_the_event_that_planned_it(
    tmp_path, client, clock
):
    debounce = ('[journey]\nname = "activation"\ncategory = "lifecycle"\ntrigger = "customer.signed_up"\n'
                '[[journey.steps]]\nname = "hello"\ntemplate = "onboarding/tips"\ndays = 1\n'
                'unless = "customer.signed_up"\n')  # fmt: skip
    app = app_with(tmp_path, client, clock, debounce)
    first = steps_of(app, ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="a").planned)
    assert app.schedule.get(first["hello"]).state == "scheduled"
    ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="b")  # the same event, again
    assert app.schedule.get(first["hello"]).cancelled == "event_came"


def test_a_batch_with_the_start_and_the_awaited_event_branches_as_one_by_one(tmp_path, client, clock):
    """A sign-up and its activation (and a repeat of it) in one ingest batch: the waiting step is
    planned from the start kept earlier in the same batch, and the other branch is cancelled."""
    batched = app_with(tmp_path / "batch", client, clock)
    single = app_with(tmp_path / "single", client, clock)
    at = clock.now()
    events = [
        {"id": "su", "type": "customer.signed_up", "customer_id": "c1", "occurred_at": at.isoformat()},
        {"id": "act", "type": "customer.activated", "customer_id": "c1",
         "occurred_at": (at + timedelta(hours=2)).isoformat()},
        {"id": "act2", "type": "customer.activated", "customer_id": "c1",
         "occurred_at": (at + timedelta(hours=3)).isoformat()},
    ]  # fmt: skip
    got = batched.ingest_many(events)
    want = [single.ingest(e) for e in events]
    assert [sorted(r.planned) for r in got] == [sorted(r.planned) for r in want]
    assert [sorted(r.cancelled) for r in got] == [sorted(r.cancelled) for r in want]
    assert set(steps_of(batched, got[1].planned)) == {"congrats"}
    assert steps_of(batched, got[2].planned) == {}
    assert batched.schedule.get(steps_of(batched, got[0].planned)["nudge"]).cancelled == "event_came"
