"""A journey edited while sends are planned: a removed step's sends are cancelled as ``step_removed``,
a changed rule re-plans, a changed template renders; never a template error days later."""

from __future__ import annotations

import shutil
import zlib

from outreach import Outreach
from outreach.settings import STARTER
from outreach.timing import zone

from .conftest import make_settings
from .helpers import deliver_due, ingest, outbox

LISBON = zone("Europe/Lisbon")


def edited(tmp_path, client, clock, edit) -> Outreach:
    """The application on the same store after ``edit(config, templates)`` changed its project."""
    config, templates = tmp_path / "config", tmp_path / "templates"
    if not config.exists():
        shutil.copytree(STARTER / "config", config)
        shutil.copytree(STARTER / "templates", templates)
    edit(config, templates)
    # One prefix per test (the real Redis is shared by the session), the same for every edit.
    prefix = f"v{zlib.crc32(str(tmp_path).encode())}:"
    return Outreach(make_settings(tmp_path, config_dir=config, templates_dir=templates, prefix=prefix),
                    client=client, clock=clock)  # fmt: skip


def signed_up(app, clock) -> dict[str, str]:
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Lisbon"})
    result = ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su1")
    sends = {app.schedule.get(s).step: s for s in result.planned}
    clock.set(app.schedule.due_of(sends["welcome"]))
    deliver_due(app)  # the welcome goes out on the day of the sign-up
    return sends


def unchanged(config, templates) -> None:
    pass


def test_a_removed_step_is_cancelled_when_it_comes_due(tmp_path, client, clock):
    app = edited(tmp_path, client, clock, unchanged)
    sends = signed_up(app, clock)

    def drop_tips(config, templates) -> None:
        path = config / "journeys" / "onboarding.toml"
        head, *steps = path.read_text().split("[[journey.steps]]\n")
        path.write_text(head + "".join("[[journey.steps]]\n" + s for s in steps if 'name = "tips"' not in s))
        shutil.rmtree(templates / "onboarding" / "tips")

    app = edited(tmp_path, client, clock, drop_tips)
    clock.set(app.schedule.due_of(sends["tips"]))
    outcomes = {o.send_id: o for o in deliver_due(app)}
    tips = app.schedule.get(sends["tips"])
    assert (tips.state, tips.reason) == ("cancelled", "step_removed")
    assert outcomes[sends["tips"]].reason == "step_removed"
    assert "onboarding.tips is no longer in the journeys" in app.schedule.history(sends["tips"])[-1]["text"]
    assert app.deadletters.count() == 0  # not a failure: nothing was wrong with the send


def test_a_removed_journey_cancels_its_planned_sends(tmp_path, client, clock):
    app = edited(tmp_path, client, clock, unchanged)
    sends = signed_up(app, clock)

    def drop(config, templates) -> None:
        (config / "journeys" / "onboarding.toml").unlink()

    app = edited(tmp_path, client, clock, drop)
    clock.set(app.schedule.due_of(sends["checkin"]))
    deliver_due(app)
    states = {step: (app.schedule.get(s).state, app.schedule.get(s).reason) for step, s in sends.items()}
    assert states["tips"] == states["checkin"] == ("cancelled", "step_removed")
    assert not [r for r in outbox(app) if r["step"] in ("tips", "checkin")]


def test_a_changed_rule_re_plans_from_the_same_start(tmp_path, client, clock):
    app = edited(tmp_path, client, clock, unchanged)
    sends = signed_up(app, clock)
    planned = app.schedule.due_of(sends["tips"])
    assert planned.astimezone(LISBON).hour == 10

    def later(config, templates) -> None:
        path = config / "journeys" / "onboarding.toml"
        path.write_text(path.read_text().replace('at = "10:00"', 'at = "15:00"', 1))

    app = edited(tmp_path, client, clock, later)
    clock.set(planned)
    outcomes = {o.send_id: o for o in deliver_due(app)}
    assert outcomes[sends["tips"]].state == "deferred"
    history = app.schedule.history(sends["tips"])
    changed = next(e for e in history if e["what"] == "step_changed")
    assert "rule" in changed["text"] and "15:00" in changed["text"]
    due = app.schedule.due_of(sends["tips"])
    assert due.astimezone(LISBON).hour == 15 and due.date() == planned.date()
    clock.set(due)
    got = [o for o in deliver_due(app) if o.send_id == sends["tips"]]
    assert [o.state for o in got] == ["delivered"], (got, app.schedule.history(sends["tips"])[-2:])


def test_a_changed_template_renders_the_new_one(tmp_path, client, clock):
    app = edited(tmp_path, client, clock, unchanged)
    sends = signed_up(app, clock)

    def moved(config, templates) -> None:
        shutil.move(templates / "onboarding" / "tips", templates / "onboarding" / "tips_v2")
        (templates / "onboarding" / "tips_v2" / "subject.txt").write_text("Tips, second edition")
        path = config / "journeys" / "onboarding.toml"
        path.write_text(
            path.read_text().replace('name = "tips"\n', 'name = "tips"\ntemplate = "onboarding/tips_v2"\n')
        )

    app = edited(tmp_path, client, clock, moved)
    clock.set(app.schedule.due_of(sends["tips"]))
    deliver_due(app)
    assert app.schedule.get(sends["tips"]).state == "delivered"
    (row,) = [r for r in outbox(app) if r["step"] == "tips"]
    assert row["subject"] == "Tips, second edition"


def test_a_template_that_now_reads_a_field_the_event_lacks_ends_the_send_saying_so(tmp_path, client, clock):
    app = edited(tmp_path, client, clock, unchanged)
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Lisbon"})
    (send_id,) = ingest(app, "order.delayed", "c1", clock.now().isoformat(), id="o1",
                        data={"order_id": "A-1", "new_eta": "2026-03-30"}).planned  # fmt: skip

    def carrier(config, templates) -> None:
        events = config / "events.toml"
        carrier_field = 'data.carrier = { type = "string", required = true }\n'
        events.write_text(events.read_text().replace("data.new_eta = {", carrier_field + "data.new_eta = {"))
        journey = config / "journeys" / "order_delay.toml"
        journey.write_text(
            journey.read_text().replace("[journey.sample]\n", '[journey.sample]\ncarrier = "DHL"\n')
        )
        subject = templates / "order_delay" / "notice" / "subject.txt"
        subject.write_text("{{ data.carrier }}: " + subject.read_text())

    app = edited(tmp_path, client, clock, carrier)
    clock.set(app.schedule.due_of(send_id))
    assert [(o.state, o.reason) for o in deliver_due(app)] == [("cancelled", "step_changed")]
    assert "now reads data.carrier" in app.schedule.history(send_id)[-1]["text"]
    assert app.deadletters.count() == 0
