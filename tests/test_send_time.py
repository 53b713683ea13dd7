"""Send-time learning: a step goes at the local hour its customer answers and clicks, learned from
their own history, within the step's window (docs/JOURNEYS.md, "Send-time learning")."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach import ConfigError
from outreach.customers.engagement import Engagement
from outreach.journeys.config import load_journeys
from outreach.journeys.sendtime import MIN_EVENTS, as_configured, learn, learned_json
from outreach.timing import zone

from .helpers import at, deliver_due, ingest, outbox
from .kinds_project import kinds_app, project

JOURNEY = """
[journey]
name = "care"
category = "lifecycle"
trigger = "customer.signed_up"

[[journey.steps]]
name = "checkin"
template = "onboarding/checkin"
days = 3
at = "10:00"
window = "08:00-21:00"
send_time = "learned"
"""


def make(tmp_path, client, clock, zone_name="America/New_York"):
    app = kinds_app(tmp_path, client, clock, {"care": JOURNEY})
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": zone_name})
    return app


def engaged(app, kind: str, local_hours: list[int], zone_name="America/New_York") -> None:
    engagement = Engagement(app.client, app.keys)
    for hour in local_hours:
        when = at("2026-02-10T00:00:00Z").astimezone(zone(zone_name)).replace(hour=hour, minute=30)
        engagement.record("c1", zone_name, kind, when)


def test_the_customer_who_answers_in_the_evening_gets_it_in_the_evening(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    engaged(app, "answer", [18, 19, 19, 18, 9])
    [send_id] = ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned
    local = app.schedule.due_of(send_id).astimezone(zone("America/New_York"))
    assert (local.hour, local.minute) == (19, 0)
    planned = app.schedule.history(send_id)[0]["text"]
    assert "10:00 → 19:00: this customer answers and clicks most between 18:00 and 20:00" in planned
    clock.set(app.schedule.due_of(send_id))
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert outbox(app)[0]["local"].startswith(local.isoformat()[:16])
    history = [e["text"] for e in app.records.history(send_id)]
    assert "send time: this customer answered 4 of 5 surveys between 18:00 and 20:00" in history


def test_with_thin_history_the_step_hour_stands_and_explain_says_so(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    engaged(app, "click", [18, 19])
    [send_id] = ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned
    assert app.schedule.due_of(send_id).astimezone(zone("America/New_York")).hour == 10
    assert (
        "10:00: the step's hour (too little of the customer's history"
        in app.schedule.history(send_id)[0]["text"]
    )


def test_a_learned_hour_outside_the_window_is_not_used(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    engaged(app, "click", [23, 23, 0, 0, 23])
    [send_id] = ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned
    assert app.schedule.due_of(send_id).astimezone(zone("America/New_York")).hour == 10


def test_erasure_forgets_the_hours(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    engaged(app, "answer", [18, 19, 19])
    app.erase_customer("c1")
    assert app.client.exists(app.keys.engagement("c1")) == 0


def test_a_learned_send_keeps_its_hour_when_it_fires(tmp_path, client, clock):
    """Delivery re-resolves the rule the send keeps (the learned one): no deferral back to 10:00."""
    app = make(tmp_path, client, clock)
    engaged(app, "answer", [7, 7, 8, 8])
    [send_id] = ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned
    due = app.schedule.due_of(send_id)
    assert due.astimezone(zone("America/New_York")).hour == 8  # answers 07:00–09:00: 08:00
    clock.set(due)
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert not any(e["what"] == "step_changed" for e in app.records.history(send_id))


def test_send_time_needs_an_hour_to_start_from(tmp_path):
    config, templates = project(tmp_path, {"care": JOURNEY.replace('at = "10:00"\n', "")})
    with pytest.raises(ConfigError, match="needs an hour to start from"):
        load_journeys(config, templates)
    config, templates = project(tmp_path / "b", {"care": JOURNEY.replace('"learned"', '"best"')})
    with pytest.raises(ConfigError, match="send_time='best'"):
        load_journeys(config, templates)


counts = st.dictionaries(st.integers(0, 23), st.integers(0, 6), max_size=24).map(Counter)


@given(
    answers=counts, clicks=counts, window=st.sampled_from([None, "08:00-21:00", "21:00-07:00", "09:00-12:00"])
)
def test_the_learned_hour_is_inside_the_window_and_backed_by_the_history(answers, clicks, window):
    rule = {"at": "10:00", "days": 3, **({"window": window} if window else {})}
    learned = learn(rule, {"answer": answers, "click": clicks})
    assert learned["learned"]["at"] == "10:00"
    total = sum((answers + clicks).values())
    if learned["at"] == "10:00" and "→" not in learned["learned"]["why"]:
        return  # the step's hour: too little history, or none clear
    hour = int(learned["at"][:2])
    if window:
        from outreach.timing import Window

        assert Window.parse(window).contains(__import__("datetime").time(hour))
    band = (answers + clicks)[(hour - 1) % 24] + (answers + clicks)[hour]
    assert band >= MIN_EVENTS and band * 2 >= total
    # What the send keeps reads back as the step configured it.
    import json

    kept = learned_json(json.dumps(rule, sort_keys=True), {"answer": answers, "click": clicks})
    assert as_configured(kept) == json.dumps(rule, sort_keys=True)


def test_an_answer_counts_once_at_the_customer_local_hour(tmp_path, client, clock):
    survey = JOURNEY.replace('send_time = "learned"', 'survey = "csat"').replace(
        "onboarding/checkin", "survey/csat"
    )
    app = kinds_app(tmp_path, client, clock, {"care": survey})
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Asia/Tokyo"})
    [send_id] = ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned
    clock.set(app.schedule.due_of(send_id))
    deliver_due(app)
    clock.set(clock.now() + timedelta(hours=2))
    app.answer_survey(send_id, "c1", "csat", 4)
    app.answer_survey(send_id, "c1", "csat", 5)  # changed their mind: the same moment of engagement
    local = clock.now().astimezone(zone("Asia/Tokyo")).hour
    assert app.ingestor.engagement.hours("c1")["answer"] == Counter({local: 1})


def test_customers_of_one_band_share_one_intent_and_the_send_counts_their_history(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    engagement = Engagement(app.client, app.keys)
    sends = []
    for n in range(12):
        cid = f"k{n}"
        app.upsert_customer(
            {"id": cid, "name": "Kim", "email": f"k{n}@example.com", "zone": "America/New_York"}
        )
        for _ in range(3 + n):  # all answer at 19:30 their time, each a different number of times
            engagement.record(cid, "America/New_York", "answer", at("2026-02-10T00:30:00Z"))
        sends += ingest(app, "customer.signed_up", cid, clock.now().isoformat(), id=f"su{n}").planned
    assert app.client.hlen(app.keys.intents) == 1
    clock.set(app.schedule.due_of(sends[-1]))
    deliver_due(app)
    texts = [e["text"] for e in app.records.history(sends[-1])]
    assert any("→ 19:00: this customer answers and clicks most between 18:00 and 20:00" in t for t in texts)
    assert "send time: this customer answered 14 of 14 surveys between 18:00 and 20:00" in texts
