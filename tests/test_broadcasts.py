"""Broadcasts: a one-off message to an audience, each customer at a local moment (docs/JOURNEYS.md).

On fakeredis and on a real Redis (the ``app`` fixture runs both): segments and uploaded lists,
consent skipped at planning, the local moment per zone (DST included), idempotent and resumable
planning, cancellation as a whole (before, during planning, and for sends already claimed), the
rate's spread, the counts of ``status`` and the command line.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from outreach import InputError, Outreach
from outreach.broadcasts import Broadcast, Moment
from outreach.clock import from_ms, to_ms
from outreach.customers.profile import Customer
from outreach.store.keys import send_id_for
from outreach.timing import zone

from .conftest import CUSTOMERS, T0, make_settings
from .helpers import at, deliver_due, outbox

STRIKE = {"reason": "strike", "new_eta": "2026-03-27", "order_id": "-"}


def people(app, count: int = 12) -> list[str]:
    """Customers spread over zones, countries and locales; every third has no consent for lifecycle."""
    places = [
        ("America/New_York", "US", "en_US"), ("Asia/Tokyo", "JP", "ja_JP"),
        ("Europe/Berlin", "DE", "de_DE"), ("Europe/Paris", "FR", "fr_FR"),
    ]  # fmt: skip
    ids = []
    for i in range(count):
        zone_name, country, locale = places[i % len(places)]
        consent = {"lifecycle": False} if i % 3 == 2 else {"lifecycle": True}
        app.upsert_customer({
            "id": f"p{i:03}", "name": f"P {i}", "email": f"p{i}@example.com", "zone": zone_name,
            "country": country, "locale": locale, "consent": consent,
            "attributes": {"tier": "gold" if i % 2 else "basic", "warehouse": "north" if i < 8 else "south"},
        })  # fmt: skip
        ids.append(f"p{i:03}")
    return ids


def make(app, id="strike", audience=None, moment="tomorrow 10:00", category="transactional", **more):
    return app.broadcasts.create(
        Broadcast(
            id=id, name=more.pop("name", id), category=category, channels=("email",),
            template="order_delay/notice", moment=Moment.parse(moment),
            audience=audience or {"kind": "segment"}, data=more.pop("data", STRIKE), **more,
        )
    )  # fmt: skip


def planned_ids(app, broadcast) -> set[str]:
    """The broadcast's sends in the schedule (any state), by customer."""
    found = set()
    for shard in range(app.keys.shards):
        for member in app.client.zrange(app.keys.due(shard), 0, -1):
            send_id = member.decode()
            if send_id.startswith("s" + broadcast.digest):
                found.add(send_id.split(".", 1)[1])
    return found


# -- audience ---------------------------------------------------------------------------------


def test_a_segment_plans_the_customers_whose_profile_matches_every_filter(app):
    ids = people(app)
    b = make(app, audience={"kind": "segment", "country": ["jp", "DE"], "attributes": {"warehouse": "north"}})
    run = app.broadcasts.plan(b.id, batch=2)
    expected = {c for i, c in enumerate(ids) if i < 8 and i % 4 in (1, 2)}
    assert planned_ids(app, b) == expected
    assert run.finished and run.planned == len(expected)
    status = app.broadcasts.status(b.id)
    assert (status.state, status.seen, status.planned, status.skipped) == ("planned", len(expected), 4, {})


def test_locale_filter_matches_a_language_and_attributes_any_of_their_values(app):
    ids = people(app)
    b = make(app, audience={"kind": "segment", "locale": ["fr", "en_US"], "attributes": {"tier": ["gold"]}})
    app.broadcasts.plan(b.id)
    assert planned_ids(app, b) == {c for i, c in enumerate(ids) if i % 4 in (0, 3) and i % 2}


def test_consent_is_read_at_planning_and_the_skipped_are_counted(app):
    ids = people(app, 9)
    b = make(app, category="lifecycle", data={})
    app.broadcasts.plan(b.id)
    assert planned_ids(app, b) == {c for i, c in enumerate(ids) if i % 3 != 2}
    status = app.broadcasts.status(b.id)
    assert (status.seen, status.planned, status.skipped) == (9, 6, {"no_consent": 3})


def test_an_uploaded_list_carries_data_per_customer_and_bad_lines_are_reported_not_fatal(app, tmp_path):
    people(app, 4)
    upload = tmp_path / "affected.jsonl"
    upload.write_text(
        '{"customer_id": "p000", "data": {"order_id": "A-1"}}\n'
        "not json at all\n"
        '"p001"\n'
        '{"customer_id": "nobody", "order_id": "A-9"}\n'
        '{"data": {"order_id": "A-2"}}\n'
        '{"customer_id": "p003", "order_id": "A-3"}\n'
    )
    b = make(app, audience={"kind": "list", "path": str(upload)})
    run = app.broadcasts.plan(b.id, batch=1)
    assert [line for line, _ in run.bad_lines] == [2, 5]
    assert "customer_id" in run.bad_lines[1][1]
    assert planned_ids(app, b) == {"p000", "p001", "p003"}
    assert app.schedule.get(b.send_id("p000")).data == {**STRIKE, "order_id": "A-1"}
    assert app.schedule.get(b.send_id("p003")).data["order_id"] == "A-3"
    assert app.schedule.get(b.send_id("p001")).data == STRIKE
    status = app.broadcasts.status(b.id)
    assert status.skipped == {"bad_line": 2, "unknown_customer": 1}
    assert (status.seen, status.planned) == (4, 3)


def test_a_csv_list_takes_its_other_columns_as_data(app, tmp_path):
    people(app, 3)
    upload = tmp_path / "affected.csv"
    upload.write_text("customer_id,order_id\np000,B-1\n,B-2\np002,B-3\n")
    b = make(app, audience={"kind": "list", "path": str(upload)})
    run = app.broadcasts.plan(b.id)
    assert planned_ids(app, b) == {"p000", "p002"}
    assert app.schedule.get(b.send_id("p002")).data["order_id"] == "B-3"
    assert [line for line, _ in run.bad_lines] == [3]


def test_a_csv_list_without_a_customer_id_column_is_refused_when_created(app, tmp_path):
    upload = tmp_path / "affected.csv"
    upload.write_text("customer,order_id\np000,B-1\n")
    with pytest.raises(InputError, match="customer_id column"):
        make(app, audience={"kind": "list", "path": str(upload)})


def test_a_list_changed_after_it_was_uploaded_is_refused(app, tmp_path):
    people(app, 2)
    upload = tmp_path / "list.jsonl"
    upload.write_text('"p000"\n')
    b = make(app, audience={"kind": "list", "path": str(upload)})
    upload.write_text('"p000"\n"p001"\n')
    with pytest.raises(InputError, match="audience.path"):
        app.broadcasts.plan(b.id)


# -- the local moment -------------------------------------------------------------------------


def test_each_customer_gets_ten_oclock_in_their_own_zone(app, customers):
    b = make(app, moment="tomorrow 10:00")
    app.broadcasts.plan(b.id)
    for customer_id, data in CUSTOMERS.items():
        send = app.schedule.get(b.send_id(customer_id))
        local = send.due.astimezone(zone(data["zone"]))
        # T0 is 2026-03-20 06:00 UTC: already the 20th everywhere here, so tomorrow is the 21st.
        assert (local.date().isoformat(), local.hour, local.minute) == ("2026-03-21", 10, 0), customer_id
    tokyo, new_york = (app.schedule.get(b.send_id(c)).due for c in ("c-haruto", "c-amelia"))
    assert new_york - tokyo == timedelta(hours=13)  # New York is on summer time since March 8


def test_a_date_is_read_in_each_zone_across_the_end_of_summer_time(app, customers):
    before, after = make(app, "b1", moment="2026-10-31 10:00"), make(app, "b2", moment="2026-11-01 10:00")
    for b in (before, after):
        app.broadcasts.plan(b.id)
    due = {b.id: app.schedule.get(b.send_id("c-amelia")).due for b in (before, after)}
    assert due["b1"] == at("2026-10-31T14:00:00Z")  # EDT, UTC-4
    assert due["b2"] == at("2026-11-01T15:00:00Z")  # EST, UTC-5
    assert app.schedule.get(after.send_id("c-haruto")).due == at("2026-11-01T01:00:00Z")


def test_a_time_already_past_today_goes_the_next_day_and_never_at_night(app, customers):
    # 06:00 UTC is 15:00 in Tokyo: "today 10:00" is past there, and 02:00 in New York.
    b = make(app, moment="today 10:00", rule={"window": "09:00-18:00"})
    app.broadcasts.plan(b.id)
    tokyo = app.schedule.get(b.send_id("c-haruto")).due.astimezone(zone("Asia/Tokyo"))
    new_york = app.schedule.get(b.send_id("c-amelia")).due.astimezone(zone("America/New_York"))
    assert (tokyo.day, tokyo.hour) == (21, 10)
    assert (new_york.day, new_york.hour) == (20, 10)


def test_the_category_quiet_hours_apply(app, customers):
    b = make(app, moment="tomorrow 06:00", category="lifecycle", data={})
    assert b.rule["window"] == "09:00-20:00"  # config/categories.toml
    app.broadcasts.plan(b.id)
    local = app.schedule.get(b.send_id("c-jonas")).due.astimezone(zone("Europe/Berlin"))
    assert (local.hour, local.minute) == (9, 0)


# -- planning: idempotent, resumable ----------------------------------------------------------


def test_planning_again_plans_nothing_twice(app):
    people(app, 10)
    b = make(app)
    first = app.broadcasts.plan(b.id, batch=3)
    # Forget the cursors, as if the planner had never written them: the sends are still there once.
    for shard in range(app.keys.shards):
        app.client.hdel(app.keys.broadcast(shard, b.digest), "cursor")
    again = app.broadcasts.plan(b.id, batch=3)
    assert (first.planned, again.planned) == (10, 0)
    assert sum(app.client.zcard(app.keys.due(s)) for s in range(app.keys.shards)) == 10
    assert app.broadcasts.status(b.id).planned == 10


def test_a_planner_that_died_is_resumed_where_it_stopped(client, clock, tmp_path):
    # One shard of 300 customers: more than Redis keeps in a compact set, so a scan goes in batches.
    app, ids = one_shard(client, clock, tmp_path, 300)
    b = make(app)
    partial = app.broadcasts.plan(b.id, batch=10, rounds=2)  # dies after two batches
    assert not partial.finished and 0 < partial.planned < 300
    assert app.broadcasts.unfinished() == [b.id]
    assert app.broadcasts.status(b.id).state == "planning"
    rest = app.broadcasts.plan(b.id, batch=10)
    assert rest.finished and partial.planned + rest.planned == 300
    status = app.broadcasts.status(b.id)
    assert (status.state, status.seen, status.planned) == ("planned", 300, 300)
    assert planned_ids(app, b) == set(ids)
    assert app.broadcasts.unfinished() == []
    # The scheduler's tick goes on with a planning that began, not with one created for later.
    later, begun = make(app, "later"), make(app, "begun")
    app.broadcasts.plan(begun.id, batch=10, rounds=1)
    assert app.broadcasts.unfinished(started=True) == ["begun"]
    assert app.broadcasts.resume() > 0 and app.broadcasts.status(begun.id).planned == 300
    assert app.broadcasts.status(later.id).planned == 0
    assert app.broadcasts.unfinished() == ["later"]
    # A list resumes from its line: some of it, then the rest.
    upload = tmp_path / "list.jsonl"
    upload.write_text("".join(f'"{c}"\n' for c in ids))
    listed = make(app, "listed", audience={"kind": "list", "path": str(upload)})
    one = app.broadcasts.plan(listed.id, batch=10, rounds=3)
    assert one.planned == 30 and app.broadcasts.status(listed.id).seen == 30
    two = app.broadcasts.plan(listed.id, batch=10)
    assert one.planned + two.planned == 300 and app.broadcasts.status(listed.id).seen == 300


# -- cancelling ---------------------------------------------------------------------------------


def test_cancel_before_planning_plans_nothing(app):
    people(app, 4)
    b = make(app)
    app.broadcasts.cancel(b.id, "strike called off")
    run = app.broadcasts.plan(b.id)
    assert run.cancelled and run.planned == 0 and planned_ids(app, b) == set()
    assert app.broadcasts.status(b.id).state == "cancelled"


def test_cancel_during_planning_stops_the_planner_and_cancels_what_it_planned(app):
    ids = people(app, 12)
    b = make(app)
    partial = app.broadcasts.plan(b.id, batch=1, rounds=1)
    done = app.broadcasts.cancel(b.id, "strike called off")
    assert done.cancelled == partial.planned > 0 and not done.already
    # A planner that read its batch before the cancel plans nothing: the script reads the flag.
    assert app.broadcasts.plan(b.id, batch=1).cancelled
    assert planned_ids(app, b) == set()
    cancelled = [app.schedule.get(b.send_id(c)) for c in ids]
    stopped = [s for s in cancelled if s is not None]
    assert len(stopped) == partial.planned
    assert all(s.state == "cancelled" and s.cancelled == "broadcast_cancelled" for s in stopped)
    history = app.records.history(stopped[0].id)
    assert "broadcast strike (strike) cancelled: strike called off" in history[-1]["text"]
    status = app.broadcasts.status(b.id)
    assert status.outcomes == {"cancelled": partial.planned} and status.waiting == 0
    assert app.broadcasts.cancel(b.id).already


BERLIN = {"kind": "segment", "zone": "Europe/Berlin"}


def test_a_claimed_send_of_a_cancelled_broadcast_never_reaches_its_provider(app, clock):
    people(app, 12)
    b = make(app, moment="tomorrow 10:00", audience=BERLIN)
    app.broadcasts.plan(b.id)
    clock.set(at("2026-03-21T09:00:00Z"))
    claims = app.schedule.claim(100)
    assert len(claims) == 3
    # Only the flag (the moment between the cancel's first step and its sweep): begin.lua stops them.
    for shard in range(app.keys.shards):
        app.client.hset(app.keys.broadcast(shard, b.digest), "cancelled", '{"what":"cancelled","text":"t"}')
    outcomes = app.deliver(claims)
    assert {o.state for o in outcomes} == {"cancelled"} and outbox(app) == []
    assert app.broadcasts.status(b.id).outcomes == {"cancelled": 3}


def test_the_hand_over_gate_reads_the_broadcast_cancel(app, clock, monkeypatch):
    people(app, 12)
    b = make(app, moment="tomorrow 10:00", audience=BERLIN)
    app.broadcasts.plan(b.id)
    clock.set(at("2026-03-21T09:00:00Z"))
    claims = app.schedule.claim(100)
    render = app.renderer.render
    cancelled = []

    def render_then_cancel(*args, **kwargs):
        # The cancel comes while the batch is decided and rendered: after begin.lua, before the gate.
        if not cancelled:
            cancelled.append(app.broadcasts.cancel(b.id))
        return render(*args, **kwargs)

    monkeypatch.setattr(app.renderer, "render", render_then_cancel)
    outcomes = app.deliver(claims)
    assert {o.state for o in outcomes} == {"cancelled"} and outbox(app) == []
    # The claimed sends were not the sweep's (it cancels the planned ones): the gate stopped them.
    assert cancelled[0].cancelled == 0 and cancelled[0].too_late == 0
    assert app.broadcasts.status(b.id).outcomes == {"cancelled": 3}
    history = app.records.history(b.send_id("p002"))
    assert history[-1]["text"].startswith("broadcast strike (strike) cancelled")


def deliver_all(app, clock) -> list:
    """Deliver every due send at its own moment (each zone's 10:00 is another instant)."""
    outcomes = []
    while True:
        dues = [app.client.zrange(app.keys.due(s), 0, 0, withscores=True) for s in range(app.keys.shards)]
        first = min((int(d[0][1]) for d in dues if d), default=None)
        if first is None:
            return outcomes
        clock.set(max(clock.now(), from_ms(first)))
        outcomes += deliver_due(app)


def test_sends_delivered_before_the_cancel_stay_delivered_and_counted(app, customers, clock):
    b = make(app, moment="tomorrow 10:00")
    app.broadcasts.plan(b.id)
    outcomes = deliver_all(app, clock)
    assert {o.state for o in outcomes} == {"delivered"} and len(outbox(app)) == 3
    assert {row["journey"] for row in outbox(app)} == {"broadcast"}
    done = app.broadcasts.cancel(b.id)
    assert done.cancelled == 0
    status = app.broadcasts.status(b.id)
    assert status.outcomes == {"delivered": 3} and status.waiting == 0 and status.state == "cancelled"


# -- delivery, rate, status ---------------------------------------------------------------------


def test_a_broadcast_send_renders_its_template_in_the_customer_language_with_its_data(
    app, customers, clock, tmp_path
):
    upload = tmp_path / "list.jsonl"
    upload.write_text('{"customer_id": "c-jonas", "order_id": "DE-77"}\n')
    b = make(app, audience={"kind": "list", "path": str(upload)})
    app.broadcasts.plan(b.id)
    deliver_all(app, clock)
    [row] = outbox(app)
    assert row["locale"] == "de_DE" and "DE-77" in row["subject"] and "Ein Streik" in row["body"]


def one_shard(client, clock, tmp_path, count: int) -> tuple[Outreach, list[str]]:
    """An app of one shard with ``count`` customers in Berlin (written straight to Redis: quick)."""
    app = Outreach(make_settings(tmp_path, shards=1), client=client, clock=clock)
    pipe = client.pipeline(transaction=False)
    ids = [f"q{i:04}" for i in range(count)]
    for customer_id in ids:
        customer = Customer.from_mapping({"id": customer_id, "name": "Q", "email": "q@example.com",
                                          "zone": "Europe/Berlin", "country": "DE"})  # fmt: skip
        pipe.set(app.keys.customer(customer_id), customer.to_json())
        pipe.sadd(app.keys.customers(0), customer_id)
    pipe.execute()
    return app, ids


def test_a_rate_spreads_the_due_times_and_the_spread_sends_still_go(client, clock, tmp_path):
    app, ids = one_shard(client, clock, tmp_path, 6)
    b = make(app, moment="tomorrow 10:00", rate=2.0)
    app.broadcasts.plan(b.id)
    dues = sorted(to_ms(app.schedule.get(b.send_id(c)).due) for c in ids)
    base = to_ms(at("2026-03-21T09:00:00Z"))
    assert dues == [base + i * 500 for i in range(6)]  # 2 a second
    outcomes = deliver_all(app, clock)
    assert {o.state for o in outcomes} == {"delivered"} and len(outcomes) == 6
    # Each went at its own spread moment, not re-planned to the next day as a late send would be.
    assert max(row["utc"] for row in outbox(app)) < "2026-03-21T09:00:03"


def test_a_spread_past_the_quiet_hours_goes_at_the_next_local_moment_not_at_night(client, clock, tmp_path):
    app, ids = one_shard(client, clock, tmp_path, 6)
    # One every three hours from 10:00 in Berlin: 13:00, 16:00, 19:00, then 22:00 and 01:00.
    b = make(app, moment="tomorrow 10:00", rate=1 / 10_800, rule={"window": "09:00-20:00"})
    app.broadcasts.plan(b.id)
    outcomes = deliver_all(app, clock)
    assert [o.state for o in outcomes].count("delivered") == 6
    hours = sorted(
        (datetime.fromisoformat(row["utc"].replace("Z", "+00:00")).astimezone(zone("Europe/Berlin")))
        for row in outbox(app)
    )
    assert [(h.day, h.hour) for h in hours] == [(21, 10), (21, 13), (21, 16), (21, 19), (22, 10), (22, 10)]


def test_status_counts_outcomes_per_broadcast(app, clock):
    people(app, 9)
    b = make(app, category="lifecycle")
    app.broadcasts.plan(b.id)
    app.set_consent("p000", category="lifecycle", allowed=False)  # after planning: the gate says no
    deliver_all(app, clock)
    status = app.broadcasts.status(b.id)
    assert status.planned == 6 and status.skipped == {"no_consent": 3}
    assert status.outcomes.get("delivered") == 5
    assert status.outcomes.get("suppressed", 0) + status.outcomes.get("cancelled", 0) == 1
    assert status.waiting == 0


def test_the_send_says_which_broadcast_it_belongs_to(app, customers):
    b = make(app)
    app.broadcasts.plan(b.id)
    send = app.records.get(b.send_id("c-amelia"))
    assert (send.journey, send.step, send.event_id) == ("broadcast", "strike", "broadcast:strike")
    assert app.broadcasts.describe(send.id).startswith("broadcast strike")


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"moment": "next week"}, "at"),
        ({"moment": "2026-02-30 10:00"}, "at"),
        ({"moment": "tomorrow 25:00"}, "at"),
        ({"category": "gossip"}, "category"),
        ({"channels": ["pigeon"]}, "channels"),
        ({"id": "Bad Id"}, "id"),
        ({"audience": {"kind": "segment", "planet": "mars"}}, "audience.planet"),
        ({"rule": {"window": "25:00-26:00"}}, "rule"),
        ({"rule": {"days": 3}}, "rule.days"),
        ({"rate": -1}, "rate"),
        ({"template": "no/such/folder"}, "template"),
        ({"audience": {"kind": "list", "path": "/nonexistent.jsonl"}}, "audience.path"),
    ],
)
def test_bad_input_names_the_field_and_the_value(app, change, field):
    from outreach.broadcasts import definition

    data = {"id": "x", "name": "x", "category": "transactional", "channels": ["email"],
            "template": "order_delay/notice", "moment": "tomorrow 10:00", "audience": {"kind": "segment"},
            **change}  # fmt: skip
    with pytest.raises(InputError) as caught:
        app.broadcasts.create(definition(data))
    assert caught.value.field == field


def test_the_command_line(runner, tmp_path):
    from outreach.cli.commands import main

    profiles = tmp_path / "customers.jsonl"
    profiles.write_text("".join(json.dumps(c) + "\n" for c in CUSTOMERS.values()))
    assert runner.invoke(main, ["customers", "import", str(profiles)]).exit_code == 0
    result = runner.invoke(main, [
        "broadcast", "create", "strike", "--category", "transactional", "--channel", "email",
        "--template", "order_delay/notice", "--at", "tomorrow 10:00", "--country", "DE", "--country", "JP",
        "--data", json.dumps(STRIKE),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "planned 2 sends" in result.output and "audience seen 2, planned 2" in result.output
    result = runner.invoke(main, ["broadcast", "status", "strike", "--json"])
    assert json.loads(result.output)["planned"] == 2
    result = runner.invoke(main, ["broadcast", "cancel", "strike", "--reason", "called off"])
    assert result.exit_code == 0 and "2 sends stopped" in result.output, result.output
    send_id = send_id_for("broadcast:strike", "broadcast", "strike", "c-jonas")
    result = runner.invoke(main, ["explain", send_id])
    assert "broadcast.strike for c-jonas" in result.output, result.output
    assert "(event broadcast broadcast:strike)" in result.output
    assert "tombstone broadcast_cancelled" in result.output
    assert "broadcast strike (strike) cancelled: called off" in result.output
    result = runner.invoke(main, ["broadcast", "list"])
    assert "strike" in result.output and "cancelled" in result.output
    result = runner.invoke(main, ["broadcast", "create", "x", "--category", "transactional", "--channel",
                                  "email", "--template", "order_delay/notice", "--at", "soon"])  # fmt: skip
    assert result.exit_code == 1 and "at='soon'" in result.output
    assert T0  # the runner's clock is the system's: only relative moments are used above


def test_a_customer_export_shows_their_broadcast_sends_and_an_erasure_leaves_no_trace(app, customers, clock):
    b = make(app)
    app.broadcasts.plan(b.id)
    send_id = b.send_id("c-jonas")
    exported = app.export_customer("c-jonas")
    assert [s["send"]["id"] for s in exported["sends"]] == [send_id]
    app.erase_customer("c-jonas")
    shard = app.keys.shard_of("c-jonas")
    assert not app.client.hexists(app.keys.broadcast(shard, b.digest), ">c-jonas")
    assert app.client.zscore(app.keys.due(shard), send_id) is None
    assert app.schedule.get(send_id) is None
    # The others still go.
    clock.set(at("2026-03-21T14:00:00Z"))
    outcomes = {o.send_id: o.state for o in deliver_due(app)}
    assert outcomes[b.send_id("c-amelia")] == "delivered" and send_id not in outcomes


def test_the_report_shows_each_broadcast(app, customers, clock):
    from outreach.report import build_report, render_html, render_text

    b = make(app)
    app.broadcasts.plan(b.id)
    clock.set(at("2026-03-21T14:00:00Z"))
    deliver_due(app)
    report = build_report(app)
    [line] = report.to_mapping()["broadcasts"]
    assert (line["id"], line["recipients"], line["delivered"]) == ("strike", 3, 2)
    assert line["waiting"] == 1  # 23:00 in Tokyo: late, it waits for the morning
    assert "strike (strike, planned, at +1d 10:00): recipients 3, delivered 2" in render_text(report)
    assert '<h2 id="h-broadcasts">Broadcasts</h2>' in render_html(report)


def test_the_http_api(app, customers):
    from .test_web_api import AUTH
    from .test_web_pages import web_client

    with web_client(app) as web:
        body = {"id": "strike", "category": "transactional", "channels": ["email"],
                "template": "order_delay/notice", "at": "tomorrow 10:00", "audience": {"country": ["JP"]},
                "data": STRIKE}  # fmt: skip
        created = web.post("/v1/broadcasts", json=body, headers=AUTH)
        assert created.status_code == 202, created.json()
        assert (created.json()["planned"], created.json()["state"]) == (1, "planned")
        assert web.post("/v1/broadcasts", json=body, headers=AUTH).status_code == 409
        bad = web.post("/v1/broadcasts", json={**body, "id": "x", "at": "soon"}, headers=AUTH)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "at"
        assert web.post("/v1/broadcasts", json={**body, "colour": 1}, headers=AUTH).status_code == 422
        assert [b["id"] for b in web.get("/v1/broadcasts", headers=AUTH).json()] == ["strike"]
        assert web.get("/v1/broadcasts/strike", headers=AUTH).json()["seen"] == 1
        assert web.get("/v1/broadcasts/nope", headers=AUTH).status_code == 404
        assert web.get("/v1/broadcasts", headers={}).status_code == 401
        cancelled = web.post("/v1/broadcasts/strike/cancel", json={"reason": "called off"}, headers=AUTH)
        assert cancelled.json()["cancelled"] == 1 and cancelled.json()["status"]["state"] == "cancelled"


@pytest.mark.parametrize("backend", ["cluster"])
def test_on_a_redis_cluster(app, clock):
    """Every script of a broadcast keeps to one shard's hash slot: the same code runs on a cluster."""
    people(app, 12)
    b = make(app, audience=BERLIN)
    assert app.broadcasts.plan(b.id, batch=1).planned == 3
    late = make(app, "late")
    app.broadcasts.plan(late.id, batch=1, rounds=1)
    clock.set(at("2026-03-21T09:00:00Z"))
    claims = app.schedule.claim(100)
    assert app.broadcasts.cancel(late.id).cancelled > 0
    app.broadcasts.cancel(b.id)  # after the claims: the gates stop them
    assert {o.state for o in app.deliver(claims)} == {"cancelled"}
    status = app.broadcasts.status(b.id)
    assert (status.planned, status.outcomes, status.waiting) == (3, {"cancelled": 3}, 0)


def test_the_command_creates_a_broadcast_in_a_new_process_of_a_project_of_its_own(tmp_path):
    """A fresh process knows no category until the project is read: the command reads it first."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    outreach = str(Path(sys.executable).parent / "outreach")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    subprocess.run([outreach, "init", "shop"], cwd=tmp_path, env=env, check=True, capture_output=True)
    shop = tmp_path / "shop"
    imported = [outreach, "customers", "import", "customers.example.jsonl"]
    subprocess.run(imported, cwd=shop, env=env, check=True, capture_output=True)
    done = subprocess.run(
        [outreach, "broadcast", "create", "strike", "--category", "transactional", "--channel", "email",
         "--template", "order_delay/notice", "--data", '{"order_id": "A-1", "new_eta": "2026-12-09"}',
         "--country", "DE", "--at", "tomorrow 10:00"],
        cwd=shop, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "planned 1 sends" in done.stdout


# -- what a review found ----------------------------------------------------------------------------


def test_no_event_from_outside_may_carry_a_broadcast_event_id(app, customers):
    """A broadcast's sends are told apart by their event: an event called "broadcast:strike" would
    have been stopped by broadcast strike's cancel."""
    with pytest.raises(InputError, match="reserved for broadcasts"):
        app.event_from({"id": "broadcast:strike", "type": "order.delayed", "customer_id": "c-amelia",
                    "data": {"order_id": "A-1", "new_eta": "2026-03-26"}})  # fmt: skip


def test_a_journey_cannot_be_called_broadcast(tmp_path):
    import shutil

    from outreach import ConfigError
    from outreach.journeys.config import load_journeys
    from outreach.settings import STARTER

    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    text = (
        (config / "journeys" / "order_delay.toml")
        .read_text()
        .replace('name = "order_delay"', 'name = "broadcast"')
    )
    (config / "journeys" / "order_delay.toml").write_text(text)
    with pytest.raises(ConfigError, match="every broadcast's sends"):
        load_journeys(config, STARTER / "templates")


def test_one_broadcast_that_cannot_go_on_does_not_hold_back_the_others(app, tmp_path):
    people(app, 40)
    upload = tmp_path / "list.jsonl"
    upload.write_text("".join(f'"p{i:03}"\n' for i in range(40)))
    first = make(app, id="a-list", audience={"kind": "list", "path": str(upload)})
    app.broadcasts.plan(first.id, batch=1, rounds=1)  # its planner died after one round
    second = make(app, id="b-segment")
    app.clock.advance(timedelta(seconds=1))
    app.broadcasts.plan(second.id, batch=1, rounds=1)  # and so did this one's
    upload.write_text(upload.read_text() + '"p999"\n')  # the list changed since
    app.broadcasts.resume()
    assert app.broadcasts.status(second.id).state == "planned"


@pytest.mark.parametrize("rate", [1e-12, -1, True, "10", float("nan"), 1e9])
def test_a_rate_is_a_sane_number(rate):
    from outreach.broadcasts.broadcasts import definition

    with pytest.raises(InputError, match="rate"):
        definition({"id": "b", "name": "b", "category": "transactional", "channels": ["email"],
                    "template": "order_delay/notice", "moment": "tomorrow 10:00",
                    "audience": {"kind": "segment"}, "rate": rate})  # fmt: skip
