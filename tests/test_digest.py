"""Digest steps: one message for the events of a window (docs/JOURNEYS.md, "Digest")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach import ConfigError

from .helpers import deliver_due, ingest, outbox
from .kinds_project import kinds_app, project

DIGEST = """
[journey]
name = "delays"
category = "transactional"
trigger = "order.delayed"
exit_on = ["customer.activated"]

[[journey.steps]]
name = "digest"
template = "order_digest/list"
digest = true
delay_hours = 4
window = "08:00-21:00"
"""


def delayed(app, clock, order: str, event_id: str | None = None, minutes: int = 0):
    data = {"order_id": order, "original_eta": "2026-03-20", "new_eta": "2026-03-26"}
    when = (clock.now() + timedelta(minutes=minutes)).isoformat()
    return ingest(app, "order.delayed", "c1", when, data=data, id=event_id or f"ev-{order}")


@pytest.fixture
def app(tmp_path, client, clock):
    app = kinds_app(tmp_path, client, clock, {"delays": DIGEST})
    app.upsert_customer(
        {"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin", "locale": "en"}
    )
    return app


def test_three_delayed_orders_make_one_notice_with_the_plural_form(app, clock):
    first = delayed(app, clock, "A-1")
    assert len(first.planned) == 1
    second, third = delayed(app, clock, "A-2"), delayed(app, clock, "A-3")
    assert second.planned == [] and third.planned == []
    assert any("listed in the digest" in note for note in second.notes)
    clock.advance(timedelta(hours=5))
    outcomes = deliver_due(app)
    assert [o.state for o in outcomes] == ["delivered"]
    [message] = outbox(app)
    assert message["subject"] == "3 orders are running late"
    assert [line.split()[0] for line in message["body"].splitlines()[:3]] == ["A-1", "A-2", "A-3"]


def test_one_event_reads_in_the_singular(app, clock):
    delayed(app, clock, "A-1")
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert outbox(app)[0]["subject"] == "One order is running late"


def test_an_event_after_the_digest_went_opens_the_next_one(app, clock):
    delayed(app, clock, "A-1")
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    later = delayed(app, clock, "A-2")
    assert len(later.planned) == 1
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert [m["body"].split()[0] for m in outbox(app)] == ["A-1", "A-2"]


def test_a_replayed_event_is_listed_once(app, clock):
    delayed(app, clock, "A-1", event_id="e1")
    delayed(app, clock, "A-2", event_id="e2")
    # The same event applied again (its worker died before marking it done).
    app.client.delete(app.keys.event("e2", "c1"))
    again = delayed(app, clock, "A-2", event_id="e2")
    assert any("listed already" in note for note in again.notes)
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert "2 in all" in outbox(app)[0]["body"]


def test_an_exit_cancels_the_digest_and_the_next_event_starts_afresh(app, clock):
    [send_id] = delayed(app, clock, "A-1").planned
    ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="exit")
    assert app.schedule.get(send_id).state == "cancelled"
    fresh = delayed(app, clock, "A-2")
    assert len(fresh.planned) == 1 and fresh.planned != [send_id]
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    [message] = outbox(app)
    assert message["body"].split()[0] == "A-2" and "1 in all" in message["body"]


def test_a_digest_in_flight_when_the_exit_comes_is_cancelled(app, clock):
    [send_id] = delayed(app, clock, "A-1").planned
    clock.advance(timedelta(hours=5))
    claims = app.schedule.claim(10)
    assert [c.send_id for c in claims] == [send_id]
    ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="exit")
    app.deliver(claims)
    assert outbox(app) == []
    assert app.schedule.get(send_id).state == "cancelled"


def test_an_event_while_the_digest_is_being_sent_goes_to_the_next_one(app, clock):
    delayed(app, clock, "A-1")
    clock.advance(timedelta(hours=5))
    claims = app.schedule.claim(10)
    # Sealed as it is rendered: an event that comes after waits for the next digest.
    step = app.journeys["delays"].step("digest")
    first = app.schedule.get(claims[0].send_id)
    assert [i["data"]["order_id"] for i in app.ingestor.digests.seal(first, step)] == ["A-1"]
    nxt = delayed(app, clock, "A-2")
    assert len(nxt.planned) == 1
    app.deliver(claims)
    assert [m["body"].split()[0] for m in outbox(app)] == ["A-1"]


def test_a_full_digest_opens_the_next(tmp_path, client, clock):
    app = kinds_app(
        tmp_path, client, clock, {"delays": DIGEST.replace("digest = true", "digest = { max_items = 2 }")}
    )
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin"})
    planned = [delayed(app, clock, f"A-{i}").planned for i in range(5)]
    assert [len(p) for p in planned] == [1, 0, 1, 0, 1]
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert sorted(m["body"].count("\n") for m in outbox(app)) == [1, 2, 2]  # items, then the count


def test_digest_by_keeps_one_digest_per_order(tmp_path, client, clock):
    app = kinds_app(
        tmp_path, client, clock, {"delays": DIGEST.replace("digest = true", 'digest = { by = "order_id" }')}
    )
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin"})
    assert len(delayed(app, clock, "A-1", event_id="a1").planned) == 1
    assert len(delayed(app, clock, "B-1", event_id="b1").planned) == 1
    assert delayed(app, clock, "A-1", event_id="a2").planned == []
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert sorted(m["subject"] for m in outbox(app)) == [
        "2 orders are running late",
        "One order is running late",
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ('digest = { by = "nope" }', "digest.by='nope'"),
        ("digest = { max_items = 0 }", "digest.max_items=0"),
        ("digest = { every = 3 }", "unknown field"),
        ("digest = 3", "must be true or a table"),
        ('digest = true\nsurvey = "csat"', "cannot wait for an event"),
    ],
)
def test_a_digest_step_is_checked(tmp_path, change, problem):
    config, templates = project(tmp_path, {"delays": DIGEST.replace("digest = true", change)})
    from outreach.journeys.config import load_journeys

    with pytest.raises(ConfigError, match=problem):
        load_journeys(config, templates)


def test_a_journey_that_supersedes_cannot_digest(tmp_path):
    config, templates = project(
        tmp_path, {"delays": DIGEST.replace("exit_on", 'supersede_by = "order_id"\nexit_on')}
    )
    from outreach.journeys.config import load_journeys

    with pytest.raises(ConfigError, match="supersedes"):
        load_journeys(config, templates)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(["event", "deliver", "replay"]), st.integers(0, 300)),
        min_size=1,
        max_size=25,
    )
)
def test_every_event_is_listed_in_exactly_one_digest_that_went(tmp_path_factory, clock, plan):
    """Whatever the interleaving of events, replays and deliveries: each event is listed once,
    in a digest that was delivered, and no digest is empty."""
    import fakeredis

    app = kinds_app(
        tmp_path_factory.mktemp("d"),
        fakeredis.FakeRedis(server=fakeredis.FakeServer()),
        clock,
        {"delays": DIGEST.replace('window = "08:00-21:00"', "")},
    )
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin"})
    sent = []
    for n, (what, minutes) in enumerate(plan):
        clock.advance(timedelta(minutes=minutes))
        if what == "event":
            delayed(app, clock, f"O-{n}", event_id=f"e{n}")
            sent.append(f"O-{n}")
        elif what == "replay" and sent:
            order = sent[-1]
            app.client.delete(app.keys.event(f"e{order[2:]}", "c1"))
            delayed(app, clock, order, event_id=f"e{order[2:]}")
        else:
            deliver_due(app)
    for _ in range(4):  # past the window and any deferral to the customer's hours
        clock.advance(timedelta(hours=12))
        deliver_due(app)
    listed = [
        line.split()[0] for m in outbox(app) for line in m["body"].splitlines() if line.startswith("O-")
    ]
    assert sorted(listed) == sorted(sent)
    assert all("0 in all" not in m["body"] for m in outbox(app))


def test_preview_and_the_rendering_check_render_a_digest(tmp_path, client, clock):
    from outreach.journeys.preview import preview
    from outreach.journeys.quality import rendering_report

    app = kinds_app(tmp_path, client, clock, {"delays": DIGEST})
    rendered, _ = preview(app.renderer, app.journeys, "delays.digest", locale="en")
    assert rendered.subject == "3 orders are running late"
    report = rendering_report(app.renderer, app.journeys, app.locales)
    assert not [p for problems in report.problems.values() for p in problems if "delays.digest" in p]


def test_a_digest_that_ended_without_going_lists_no_more(app, clock):
    """An open digest suppressed when it came due (no address then) is not joined by later events:
    the next event opens a digest of its own, and that one goes."""
    [first] = delayed(app, clock, "A-1").planned
    app.upsert_customer({"id": "c1", "name": "Ana", "zone": "Europe/Berlin", "locale": "en"})  # no email
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert app.records.get(first).state == "suppressed"
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin"})
    later = delayed(app, clock, "A-2")
    assert len(later.planned) == 1 and later.planned != [first]
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert [m["body"].split()[0] for m in outbox(app)] == ["A-2"]


def test_a_batch_with_many_events_of_one_customer_opens_one_digest(app, clock):
    """The ingest actor's batch: events of the same collection in one batch are collected in their
    order, the first opening the digest and the rest joining it."""
    app.upsert_customer({"id": "c2", "name": "Bo", "email": "bo@example.com", "zone": "Europe/Berlin"})
    data = {"original_eta": "2026-03-20", "new_eta": "2026-03-26"}
    events = [
        {"id": f"b{n}", "type": "order.delayed", "customer_id": ("c1", "c2")[n % 2],
         "occurred_at": clock.now().isoformat(), "data": {**data, "order_id": f"B-{n}"}}
        for n in range(10)
    ]  # fmt: skip
    results = app.ingest_many(events)
    assert sum(len(r.planned) for r in results) == 2
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    bodies = {m["customer_id"]: m["body"] for m in outbox(app)}
    assert [line.split()[0] for line in bodies["c1"].splitlines()[:-1]] == [f"B-{n}" for n in range(0, 10, 2)]
    assert "5 in all" in bodies["c2"]


# -- what a review found: no collection shared, nothing left behind, nothing sent empty ---------------


def test_two_customers_never_share_a_collection(tmp_path, client, clock):
    """Customer "a" with order "7:X" and customer "a:7" with order "X" once named one key."""
    from outreach.store.keys import Keys

    keys = Keys("x:", 16)
    other = next(f"a:{n}" for n in range(1000) if keys.shard_of(f"a:{n}") == keys.shard_of("a"))
    app = kinds_app(
        tmp_path, client, clock, {"delays": DIGEST.replace("digest = true", 'digest = { by = "order_id" }')}
    )
    for cid, name in (("a", "Ana"), (other, "Bob")):
        app.upsert_customer(
            {"id": cid, "name": name, "email": f"{name.lower()}@example.com", "zone": "Europe/Berlin"}
        )
    suffix = other.split(":", 1)[1]
    assert app.keys.digest("delays", "digest", "a", f'"{suffix}:X"') != app.keys.digest(
        "delays", "digest", other, '"X"'
    )
    data = {"original_eta": "2026-03-20", "new_eta": "2026-03-26"}
    ingest(
        app, "order.delayed", "a", clock.now().isoformat(), {**data, "order_id": f"{suffix}:X"}, id="e-ana"
    )
    clock.advance(timedelta(hours=5))
    claims = app.schedule.claim(10)
    bob = ingest(app, "order.delayed", other, clock.now().isoformat(), {**data, "order_id": "X"}, id="e-bob")
    assert len(bob.planned) == 1
    app.deliver(claims)
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    bodies = {m["customer_id"]: m["body"] for m in outbox(app)}
    assert bodies["a"].startswith(f"{suffix}:X") and "1 in all" in bodies["a"]
    assert bodies[other].startswith("X ") and "1 in all" in bodies[other]


def test_erasure_and_archiving_leave_no_list_behind(tmp_path, client, clock):
    app = kinds_app(tmp_path, client, clock, {"delays": DIGEST}, archive_after_seconds=0)
    for cid in ("c1", "c2"):
        app.upsert_customer(
            {"id": cid, "name": "Ana", "email": f"{cid}@example.com", "zone": "Europe/Berlin"}
        )
    data = {"order_id": "A-1", "new_eta": "2026-03-26"}
    sends = [
        ingest(app, "order.delayed", cid, clock.now().isoformat(), data, id=f"e-{cid}").planned[0]
        for cid in ("c1", "c2")
    ]
    delayed(app, clock, "A-2")  # c1's second event: the collection holds its mark
    clock.advance(timedelta(hours=5))
    deliver_due(app)
    assert all(client.exists(app.keys.digest_items(s)) for s in sends)
    history = app.records.history(sends[0])
    assert any(e["what"] == "digest" and e["text"] == "lists 2 events: e-c1, ev-A-2" for e in history)
    app.erase_customer("c1")
    assert not client.exists(app.keys.digest_items(sends[0]))
    assert not [
        k
        for k in client.scan_iter(match=f"{app.settings.prefix}*digest*")
        if client.sismember(app.keys.customer_keys("c1"), k)
    ]
    assert client.smembers(app.keys.customer_keys("c1")) == set()
    clock.advance(timedelta(hours=1))
    app.archive_finished()
    assert not client.exists(app.keys.send(sends[1])) and not client.exists(app.keys.digest_items(sends[1]))


@pytest.mark.parametrize("how", ["exit_between", "expired", "by_changed"])
def test_a_digest_with_nothing_to_list_is_never_sent(tmp_path, client, clock, how):
    app = kinds_app(
        tmp_path,
        client,
        clock,
        {"delays": DIGEST.replace("delay_hours = 4", "days = 40") if how == "expired" else DIGEST},
    )
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin"})
    [send_id] = delayed(app, clock, "A-1").planned
    delayed(app, clock, "A-2")
    state = app.keys.digest("delays", "digest", "c1", "")
    if how == "expired":
        assert client.ttl(state) > 40 * 86400  # the window and a month of deferrals
        client.delete(state)  # as if it had expired anyway
    clock.advance(timedelta(days=41) if how == "expired" else timedelta(hours=5))
    claims = app.schedule.claim(10)
    if how == "exit_between":
        app.ingestor.digests.forget(app.journeys["delays"], app.customers.get("c1"))
    if how == "by_changed":
        step = app.journeys["delays"].step("digest")
        from dataclasses import replace

        from outreach.journeys.kinds import Digest

        object.__setattr__(app.journeys["delays"], "steps", (replace(step, digest=Digest(by="order_id")),))
    app.deliver(claims)
    assert outbox(app) == []
    assert (app.records.get(send_id).state, app.records.get(send_id).reason) == ("suppressed", "empty_digest")


def test_a_digest_step_ends_with_its_journey(tmp_path):
    from outreach.journeys.config import load_journeys

    for extra, problem in (
        ("cancel_on_exit = false\n", "a digest step ends with its journey"),
        ('send_time = "learned"\nat = "10:00"\n', "not at a learned hour"),
    ):
        config, templates = project(tmp_path / problem[:5], {"delays": DIGEST + extra})
        with pytest.raises(ConfigError, match=problem):
            load_journeys(config, templates)
