"""Steps counted from a date in the event (``before``/``after = "ends_at"``): at a local time, with
window, weekday and holiday shifts that never cross the date."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach import ConfigError, Outreach, TimingError
from outreach.timing import SendRule, parse_instant, resolve, zone
from outreach.timing.calendar import _holiday_name

from .conftest import make_settings
from .helpers import deliver_due, ingest, starter_project

ZONES = ["Asia/Tokyo", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo",
         "Asia/Kathmandu", "Pacific/Chatham", "Europe/London"]  # fmt: skip
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    anchor=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2030, 12, 31)),
    zone_name=st.sampled_from(ZONES),
    days=st.integers(0, 40),
    at=st.none() | st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    weekdays=st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True),
    window=st.none() | st.tuples(st.integers(0, 22), st.integers(1, 23)).filter(lambda w: w[0] < w[1]),
    holidays=st.sampled_from([None, "DE", "JP", "US", "BR"]),
)
def test_a_step_before_a_date_lands_before_it_on_an_allowed_moment_never_after_its_target(
    anchor, zone_name, days, at, weekdays, window, holidays
):
    keys: dict = {"before": "ends_at", "days": days, "weekdays": weekdays}
    if at is not None:
        keys["at"] = at.strftime("%H:%M")
    if window is not None:
        keys["window"] = f"{window[0]:02d}:00-{window[1]:02d}:00"
    if holidays:
        keys["holidays"] = holidays
    rule = SendRule.from_mapping(keys)
    instant = anchor.replace(tzinfo=dt.UTC)
    resolution = resolve(rule, instant, zone_name)
    local = resolution.local
    assert resolution.utc < instant  # never at or past the date
    assert resolution.utc <= resolution.target.astimezone(dt.UTC) or resolution.target >= instant
    assert local.date() <= (instant.astimezone(zone(zone_name)).date() - dt.timedelta(days=days))
    assert WEEKDAYS[local.weekday()] in weekdays
    assert not (holidays and _holiday_name(holidays, local.date()))
    if window is not None:
        assert rule.window.contains(local.time())
    assert all(shift.local <= resolution.target or shift.reason in ("dst_gap", "dst_fold")
               for shift in resolution.shifts)  # fmt: skip


@given(anchor=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2030, 12, 31)),
       zone_name=st.sampled_from(ZONES), days=st.integers(0, 40))  # fmt: skip
def test_a_step_after_a_date_counts_from_the_date_not_the_event(anchor, zone_name, days):
    rule = SendRule.from_mapping({"after": "renews_at", "days": days, "at": "10:00"})
    instant = anchor.replace(tzinfo=dt.UTC)
    resolution = resolve(rule, instant, zone_name)
    assert resolution.utc >= instant
    assert resolution.local.date() >= instant.astimezone(zone(zone_name)).date() + dt.timedelta(days=days)


def test_a_date_is_its_local_midnight_and_a_datetime_its_instant():
    rule = SendRule.from_mapping({"before": "ends_at", "days": 1})
    start = rule.start(parse_instant("2026-04-01T00:00:00Z"), {"ends_at": "2026-04-13"}, "Asia/Tokyo")
    assert start == parse_instant("2026-04-13T00:00:00+09:00")
    start = rule.start(parse_instant("2026-04-01T00:00:00Z"), {"ends_at": "2026-04-13T10:00:00-04:00"}, "UTC")
    assert start == parse_instant("2026-04-13T14:00:00Z")
    for bad in ({}, {"ends_at": "soon"}, {"ends_at": "2026-04-13T10:00:00"}, {"ends_at": 5}):
        with pytest.raises(TimingError, match="before"):
            rule.start(parse_instant("2026-04-01T00:00:00Z"), bad, "UTC")


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"before": "ends_at", "after": "ends_at"}, "before or after, not both"),
        ({"before": "not a field"}, "must name a date or datetime field"),
        ({"before": "ends_at", "delay_hours": 2}, "counts in days, not a delay"),
    ],
)
def test_bad_anchored_rules_are_refused(keys, words):
    with pytest.raises(TimingError, match=words):
        SendRule.from_mapping(keys)


# -- in a journey -----------------------------------------------------------------------------------

EVENTS = """
[event."trial.started"]
data.ends_at = { type = "datetime", required = true, example = "2026-04-13T00:00:00Z" }
data.plan = { type = "string", example = "pro" }
"""


def trial_app(tmp_path, client, clock, step: str) -> Outreach:
    journey = (f'[journey]\nname = "trial_ending"\ncategory = "lifecycle"\ntrigger = "trial.started"\n'
               f'[[journey.steps]]\nname = "reminder"\n{step}\n')  # fmt: skip
    parts = {f"templates/trial_ending/reminder/{part}": "Your trial ends {{ data.ends_at }}"
             for part in ("subject.txt", "body.txt", "body.html")}  # fmt: skip
    config, templates = starter_project(
        tmp_path,
        append={"events.toml": EVENTS},
        files={"config/journeys/trial_ending.toml": journey, **parts},
    )
    return Outreach(
        make_settings(tmp_path, config_dir=config, templates_dir=templates), client=client, clock=clock
    )


REMINDER = 'before = "ends_at"\ndays = 3\nat = "10:00"\nweekdays = ["mon", "tue", "wed", "thu", "fri"]'


def test_three_days_before_the_trial_ends_at_ten_on_a_weekday(tmp_path, client, clock):
    app = trial_app(tmp_path, client, clock, REMINDER)
    app.upsert_customer({"id": "t-yuki", "name": "Yuki", "email": "yuki@example.com", "zone": "Asia/Tokyo"})
    app.upsert_customer({"id": "t-ren", "name": "Ren", "email": "ren@example.com", "zone": "Asia/Tokyo"})
    # Ends Monday 2026-03-30 09:00 in Tokyo: three days before is Friday the 27th.
    result = ingest(app, "trial.started", "t-yuki", clock.now().isoformat(),
                    data={"ends_at": "2026-03-30T09:00:00+09:00"})  # fmt: skip
    (send_id,) = result.planned
    assert app.schedule.due_of(send_id) == parse_instant("2026-03-27T10:00:00+09:00")
    # Ends Tuesday the 31st: three days before is a Saturday, so Friday the 27th again, earlier.
    result = ingest(app, "trial.started", "t-ren", clock.now().isoformat(), id="t2",
                    data={"ends_at": "2026-03-31T09:00:00+09:00"})  # fmt: skip
    (later,) = result.planned
    assert app.schedule.due_of(later) == parse_instant("2026-03-27T10:00:00+09:00")
    history = app.schedule.history(later)
    assert "counted back from data.ends_at" in history[0]["text"]
    assert [s["reason"] for s in history[0]["resolution"]["shifts"]] == ["weekday"]
    assert "moved earlier" in history[0]["resolution"]["shifts"][0]["text"]
    clock.set(parse_instant("2026-03-27T10:00:00+09:00"))
    assert sorted(o.state for o in deliver_due(app)) == ["delivered", "delivered"]


def test_a_reminder_whose_moment_has_passed_is_not_planned_and_says_why(tmp_path, client, clock):
    app = trial_app(tmp_path, client, clock, REMINDER)
    app.upsert_customer({"id": "t-yuki", "name": "Yuki", "email": "yuki@example.com", "zone": "Asia/Tokyo"})
    ends = (clock.now() + dt.timedelta(days=1)).isoformat()
    result = ingest(app, "trial.started", "t-yuki", clock.now().isoformat(), data={"ends_at": ends})
    assert result.planned == []
    assert "trial_ending.reminder not planned: 3 days before data.ends_at" in result.notes[0]


def test_a_customer_who_moves_is_re_planned_from_the_same_date(tmp_path, client, clock):
    app = trial_app(tmp_path, client, clock, REMINDER)
    app.upsert_customer({"id": "t-yuki", "name": "Yuki", "email": "yuki@example.com", "zone": "Asia/Tokyo"})
    ingest(
        app, "trial.started", "t-yuki", clock.now().isoformat(), data={"ends_at": "2026-03-30T09:00:00+09:00"}
    )
    app.upsert_customer(
        {"id": "t-yuki", "name": "Yuki", "email": "yuki@example.com", "zone": "America/New_York"}
    )
    # It ends Sunday 20:00 in New York, so the reminder is Thursday 10:00 there, which has passed
    # when the Tokyo plan comes due: the same local rule from now, Friday 10:00, still before the end.
    clock.set(parse_instant("2026-03-27T10:00:00+09:00"))
    assert [o.state for o in deliver_due(app)] == ["deferred"]
    clock.set(parse_instant("2026-03-27T10:00:00-04:00"))
    outcomes = deliver_due(app)
    assert [o.state for o in outcomes] == ["delivered"]


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ('before = "plan"', "before='plan': must name a date or datetime field of trial.started"),
        ('before = "coupon"', "before='coupon': must name a date or datetime field"),
        ('after = "ends_at"\ndelay_hours = 2', None),
    ],
)
def test_an_anchor_must_be_a_date_field_of_the_trigger(tmp_path, client, clock, step, words):
    if words is None:
        trial_app(tmp_path, client, clock, step)
        return
    with pytest.raises(ConfigError) as caught:
        trial_app(tmp_path, client, clock, step)
    assert words in str(caught.value)


def test_the_journey_file_says_where_a_bad_anchor_is(tmp_path, client, clock):
    with pytest.raises(ConfigError, match=r"trial_ending.toml: journey 'trial_ending'"):
        trial_app(tmp_path, client, clock, 'before = "plan"')


def test_a_reminder_that_would_reach_its_date_is_dropped_not_sent_late(tmp_path, client, clock):
    app = trial_app(tmp_path, client, clock, 'before = "ends_at"\ndays = 1\nat = "10:00"')
    app.upsert_customer({"id": "t-yuki", "name": "Yuki", "email": "yuki@example.com", "zone": "Asia/Tokyo"})
    # Ends 2026-04-10 00:00 in Tokyo; the day before at 10:00 is 2026-04-09 01:00Z.
    result = ingest(app, "trial.started", "t-yuki", clock.now().isoformat(),
                    data={"ends_at": "2026-04-10T00:00:00+09:00"})  # fmt: skip
    (send_id,) = result.planned
    # She moves to Auckland: there the day before at 10:00 has passed when the Tokyo plan comes due,
    # and the next 10:00 would be after the trial ended. The reminder is dropped, never sent late.
    app.upsert_customer(
        {"id": "t-yuki", "name": "Yuki", "email": "yuki@example.com", "zone": "Pacific/Auckland"}
    )
    clock.set(app.schedule.due_of(send_id))
    assert [(o.state, o.reason) for o in deliver_due(app)] == [("suppressed", "date_passed")]
    assert "not before data.ends_at" in app.schedule.history(send_id)[-1]["text"]
