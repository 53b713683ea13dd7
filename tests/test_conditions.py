"""Branches on conditions (``if``): a step goes only when they hold at the moment it would go
(docs/JOURNEYS.md, "Branches")."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach import ConfigError
from outreach.journeys.conditions import Condition, parse_line
from outreach.journeys.config import load_journeys

from .helpers import by_step, deliver_due, ingest, outbox
from .kinds_project import kinds_app, project

JOURNEY = """
[journey]
name = "care"
category = "lifecycle"
trigger = "customer.signed_up"

[[journey.steps]]
name = "survey"
template = "survey/csat"
survey = "csat"
days = 1
at = "10:00"

[[journey.steps]]
name = "email"
template = "onboarding/checkin"
days = 3
at = "10:00"

[[journey.steps]]
name = "followup"
template = "onboarding/tips"
days = 6
at = "10:00"
if = {conditions}
"""


def toml_list(lines: list[str]) -> str:
    return "[" + ", ".join(json.dumps(line) for line in lines) + "]"


def app_with(tmp_path, client, clock, conditions: list[str], **profile):
    journey = JOURNEY.replace("{conditions}", toml_list(conditions))
    app = kinds_app(tmp_path, client, clock, {"care": journey})
    app.upsert_customer(
        {
            "id": "c1",
            "name": "Ana",
            "email": "ana@example.com",
            "zone": "Europe/Berlin",
            "country": "DE",
            **profile,
        }
    )
    return app


def run(app, clock, data=None, answer: int | None = None) -> tuple[dict[str, str], list[str]]:
    planned = by_step(
        app,
        ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), data=data or {}, id="su").planned,
    )
    for day in range(1, 8):
        clock.set(clock.now().replace(hour=9) + timedelta(days=1, hours=1 if day else 0))
        deliver_due(app)
        if day == 1 and answer is not None:
            app.answer_survey(planned["survey"], "c1", "csat", answer)
    return planned, [row["step"] for row in outbox(app)]


@pytest.mark.parametrize(
    ("conditions", "data", "answer", "profile", "goes"),
    [
        (["steps.email.delivered"], {}, None, {}, True),
        (["not steps.email.delivered"], {}, None, {}, False),
        (["steps.survey.score <= 2"], {}, 1, {}, True),
        (["steps.survey.score <= 2"], {}, 5, {}, False),
        (["steps.survey.score <= 2"], {}, None, {}, False),  # no answer: a missing value compares false
        (["not steps.survey.answered"], {}, None, {}, True),
        (["steps.survey.band == 'positive'"], {}, 5, {}, True),
        (['data.plan == "pro"'], {"plan": "pro"}, None, {}, True),
        (['data.plan == "pro"'], {"plan": "free"}, None, {}, False),
        (["data.seats >= 10"], {"seats": 12}, None, {}, True),
        (["data.seats >= 10"], {"seats": "12"}, None, {}, False),  # text is not a number
        (["data.company.size > 100"], {"company": {"size": 250}}, None, {}, True),
        (['profile.country in ["DE", "AT"]'], {}, None, {}, True),
        (['profile.language == "de"'], {}, None, {"locale": "de-AT"}, True),
        (["attributes.vip"], {}, None, {"attributes": {"vip": True}}, True),
        (["attributes.vip"], {}, None, {}, False),
        (["consent.marketing"], {}, None, {"consent": {"marketing": False}}, False),
        (["consent.marketing", "steps.email.delivered"], {}, None, {"consent": {"marketing": True}}, True),
        (["steps.email.state == 'delivered'", "not steps.email.bounced"], {}, None, {}, True),
    ],
)
def test_the_step_goes_only_when_its_conditions_hold(
    tmp_path, client, clock, conditions, data, answer, profile, goes
):
    app = app_with(tmp_path, client, clock, conditions, **profile)
    planned, steps = run(app, clock, data, answer)
    assert ("followup" in steps) == goes
    send = app.records.get(planned["followup"])
    history = app.records.history(planned["followup"])
    if goes:
        assert send.state == "delivered"
        assert any(e["what"] == "branch" and "branch taken" in e["text"] for e in history)
    else:
        assert (send.state, send.reason) == ("suppressed", "condition")
        assert "branch not taken" in history[-1]["text"]
    # The explanation names every condition and the value it read.
    text = next(e["text"] for e in history if "branch" in e["text"])
    assert all(repr(c) in text for c in conditions)


def test_the_explanation_says_what_was_read(tmp_path, client, clock):
    app = app_with(tmp_path, client, clock, ["steps.survey.score <= 2"])
    planned, _ = run(app, clock, answer=4)
    text = app.records.history(planned["followup"])[-1]["text"]
    assert text == "branch not taken: 'steps.survey.score <= 2' does not hold (steps.survey.score is 4)"


def test_a_not_clicked_email_sends_the_whatsapp_version(tmp_path, client, clock):
    app = app_with(tmp_path, client, clock, ["not steps.email.clicked"])
    planned, steps = run(app, clock)
    assert "followup" in steps
    app2 = app_with(tmp_path / "b", client, clock, ["not steps.email.clicked"])
    planned = by_step(
        app2, ingest(app2, "customer.signed_up", "c1", clock.now().isoformat(), id="su2").planned
    )
    for _ in range(8):
        clock.advance(timedelta(days=1))
        deliver_due(app2)
        if app2.records.get(planned["email"]).state == "delivered" and not app2.clicks.first_click(
            planned["email"]
        ):
            # The customer follows a tracked link in the email (the web process records it).
            assert app2.clicks.record(planned["email"], "c1", "https://shop.example.com/start")
    followup = app2.records.get(planned["followup"])
    assert (followup.state, followup.reason) == ("suppressed", "condition")
    assert "steps.email.clicked is true" in app2.records.history(planned["followup"])[-1]["text"]


@pytest.mark.parametrize(
    ("conditions", "problem"),
    [
        (["steps.followup.delivered"], "its own outcome"),
        (["steps.nope.delivered"], "no step 'nope'"),
        (["steps.email.opened"], "reads steps.<step>.<fact>"),
        (["profile.salary > 3"], "not a profile field"),
        (["consent.spam"], "not a category"),
        (["weather.rain"], "not something a condition reads"),
        (["data.total >= "], "is not a value"),
        (["data..x"], "must read"),
        (["data.total >= abc"], "not a value"),
        (["not data.total == 3"], '"not" goes with a bare subject'),
        (["data.total in 3"], "needs a list"),
        (['profile.country in "DEAT"'], "needs a list"),
        (["data.total > [1]"], "compares with a number or a text"),
        (["data.total == NaN"], "not a value"),
        (["data.total == 1e999"], "not a value"),
        (["data.x == " + "[" * 3000 + "]" * 3000], "at most 500"),
        (["data.x == [" + "[1]," * 60 + "1]"], "not a value"),
        ([], "must be a list of conditions"),
    ],
)
def test_conditions_are_checked_when_the_journey_loads(tmp_path, conditions, problem):
    journey = JOURNEY.replace("{conditions}", toml_list(conditions))
    config, templates = project(tmp_path, {"care": journey})
    with pytest.raises(ConfigError, match=problem) as raised:
        load_journeys(config, templates)
    assert "steps[2] (followup)" in str(raised.value)


def test_a_later_step_cannot_be_named(tmp_path):
    journey = JOURNEY.replace("{conditions}", "[]").replace(
        'name = "email"', 'name = "email"\nif = ["steps.followup.delivered"]'
    )
    config, templates = project(tmp_path, {"care": journey})
    with pytest.raises(ConfigError, match="comes after email"):
        load_journeys(config, templates)


def test_a_contract_field_the_trigger_does_not_carry_is_refused(tmp_path):
    journey = JOURNEY.replace("customer.signed_up", "order.delayed").replace(
        "{conditions}", '["data.nope == 1"]'
    )
    config, templates = project(tmp_path, {"care": journey})
    with pytest.raises(ConfigError, match="carries no field 'nope'"):
        load_journeys(config, templates)


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["a", "b", ""]),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
)
OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]


@given(actual=values, value=values, op=st.sampled_from(OPS))
def test_a_comparison_holds_only_between_values_of_one_kind(actual, value, op):
    listed = op in ("in", "not in")
    ordering = op in ("<", "<=", ">", ">=")
    if (listed and not isinstance(value, list)) or (ordering and (value is None or isinstance(value, list))):
        with pytest.raises(ValueError):
            parse_line(f"data.x {op} {json.dumps(value)}")
        return
    condition = parse_line(f"data.x {op} {json.dumps(value)}")
    assert condition.value == value
    held, why = condition.holds(actual)
    assert isinstance(held, bool) and why.startswith("data.x is ")

    def kind(v):
        return "b" if isinstance(v, bool) else "n" if isinstance(v, int) else type(v).__name__

    if value is None:
        assert held == ((actual is None) == (op == "=="))
    elif listed:
        found = any(kind(actual) == kind(v) and actual == v for v in value)
        assert held == (actual is not None and not isinstance(actual, list) and found == (op == "in"))
    elif actual is None or kind(actual) != kind(value):
        assert held is False  # a missing value or another kind never passes, != included
    elif not isinstance(actual, list):
        expected = {
            "==": actual == value,
            "!=": actual != value,
            "<": actual < value,
            "<=": actual <= value,
            ">": actual > value,
            ">=": actual >= value,
        }[op]
        assert held == expected


def test_a_missing_value_passes_no_negative_filter():
    for line in ['data.country != "US"', 'data.country not in ["US"]', "data.seats != 10"]:
        assert parse_line(line).holds(None)[0] is False
    assert parse_line("data.seats != 10").holds("12")[0] is False
    assert parse_line("data.flag in [1]").holds(True)[0] is False
    assert parse_line("data.x == null").holds(None)[0] is True
    assert parse_line("data.x != null").holds(0)[0] is True


@given(st.text(max_size=40))
def test_any_line_parses_or_is_refused_with_a_reason(line):
    try:
        condition = parse_line(line)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(condition, Condition) and "." in condition.subject


def test_an_event_id_with_a_tilde_reads_its_own_start(tmp_path, client, clock):
    app = app_with(tmp_path, client, clock, ["steps.email.delivered"])
    planned = by_step(
        app, ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="signup~42").planned
    )
    for _ in range(8):
        clock.set(clock.now().replace(hour=9) + timedelta(days=1, hours=1))
        deliver_due(app)
    assert app.records.get(planned["followup"]).state == "delivered"


def test_a_digest_step_cannot_be_named(tmp_path):
    journey = JOURNEY.replace("{conditions}", '["steps.email.delivered"]').replace(
        'name = "email"\ntemplate = "onboarding/checkin"',
        'name = "email"\ntemplate = "order_digest/list"\ndigest = true',
    )
    config, templates = project(tmp_path, {"care": journey})
    with pytest.raises(ConfigError, match="email is a digest"):
        load_journeys(config, templates)
