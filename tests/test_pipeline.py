"""The core path on fakeredis and on a real Redis: events in, sends planned, claimed, delivered once."""

from __future__ import annotations

import threading
from datetime import timedelta

import redis

from outreach.clock import from_ms, to_ms
from outreach.schedule import Schedule
from outreach.timing import zone

from .conftest import CUSTOMERS
from .helpers import at, by_step, deliver_due, ingest, outbox, plan_send, sent_ids


def test_signup_plans_three_onboarding_steps_at_local_hours(app, customers, clock):
    result = ingest(app, "customer.signed_up", "c-amelia", "2026-03-20T07:30:00Z", id="e1")
    assert len(result.planned) == 4  # three onboarding steps and the NPS survey on day 28
    steps = {app.schedule.get(s).step: app.schedule.get(s) for s in result.planned}
    ny = zone("America/New_York")
    welcome, tips, checkin = (to_ms(steps[s].due) for s in ("welcome", "tips", "checkin"))
    # Signed up at 03:30 in New York: the welcome waits for the 07:00 window.
    assert from_ms(welcome).astimezone(ny).isoformat() == "2026-03-20T07:00:00-04:00"
    assert from_ms(tips).astimezone(ny).isoformat() == "2026-03-22T10:00:00-04:00"
    assert from_ms(checkin).astimezone(ny).isoformat() == "2026-04-03T11:00:00-04:00"


def test_ingestion_is_idempotent(app, customers, clock):
    first = ingest(app, "customer.signed_up", "c-jonas", "2026-03-20T09:00:00Z", id="dup")
    again = ingest(app, "customer.signed_up", "c-jonas", "2026-03-20T09:00:00Z", id="dup")
    assert len(first.planned) == 4 and not first.duplicate
    assert again.duplicate and again.planned == []
    clock.set(at("2026-03-20T10:00:00Z"))
    deliver_due(app)
    assert list(sent_ids(app).values()) == [1]


def test_event_processed_again_after_a_crash_plans_nothing_twice(app, customers, clock):
    first = ingest(app, "customer.signed_up", "c-jonas", "2026-03-20T09:00:00Z", id="crash")
    # As if the worker died before marking the event done: the marker is still 'pending'.
    app.client.set(app.keys.event("crash", "c-jonas"), "pending")
    again = ingest(app, "customer.signed_up", "c-jonas", "2026-03-20T09:00:00Z", id="crash")
    assert not again.duplicate and again.planned == []
    assert app.schedule.depth() == (len(first.planned), 0)


def test_exit_cancels_remaining_steps_even_a_claimed_one(app, customers, clock):
    planned = by_step(
        app, ingest(app, "customer.signed_up", "c-jonas", "2026-03-20T09:00:00Z", id="s1").planned
    )
    clock.set(at("2026-03-20T09:01:00Z"))
    assert [o.state for o in deliver_due(app)] == ["delivered"]  # the welcome
    # Day 2: the tips send is claimed by a worker ...
    clock.set(at("2026-03-22T09:00:30Z"))
    claims = app.schedule.claim(10)
    assert len(claims) == 1
    # ... and then the customer activates: tips (claimed) and check-in (waiting) are cancelled.
    result = ingest(app, "customer.activated", "c-jonas", "2026-03-22T09:00:40Z", id="a1")
    assert sorted(result.cancelled) == sorted([planned["tips"], planned["checkin"]])  # not the NPS
    assert [o.state for o in app.deliver(claims)] == ["cancelled"]
    clock.set(at("2026-04-10T00:00:00Z"))
    # Only the CES survey that activation started is due; Germany needs opt-in for surveys.
    assert [(o.state, o.reason) for o in deliver_due(app)] == [("suppressed", "no_consent")]
    assert [r["step"] for r in outbox(app)] == ["welcome"]
    tips = app.schedule.get(claims[0].send_id)
    assert tips.state == "cancelled" and tips.cancelled == "journey_exit"


def test_newer_delay_notice_supersedes_a_pending_one_even_claimed(app, customers, clock):
    # 22:00 in New York: the window is closed, so the first notice waits for 07:00.
    old = ingest(
        app,
        "order.delayed",
        "c-amelia",
        "2026-03-21T02:00:00Z",
        id="d1",
        data={"order_id": "A-1", "new_eta": "2026-03-24"},
    ).planned
    clock.set(at("2026-03-21T11:00:01Z"))
    claims = app.schedule.claim(10)
    assert [c.send_id for c in claims] == old
    new = ingest(
        app,
        "order.delayed",
        "c-amelia",
        "2026-03-21T10:59:00Z",
        id="d2",
        data={"order_id": "A-1", "new_eta": "2026-03-26"},
    )
    assert new.cancelled == old
    assert [o.state for o in app.deliver(claims)] == ["cancelled"]
    deliver_due(app)
    rows = outbox(app)
    assert len(rows) == 1 and "March 26" in rows[0]["body"]


def test_an_older_event_arriving_late_does_not_supersede_a_newer_one(app, customers, clock):
    ingest(
        app,
        "order.delayed",
        "c-amelia",
        "2026-03-21T12:00:00Z",
        id="new",
        data={"order_id": "A-2", "new_eta": "2026-03-26"},
    )
    late = ingest(
        app,
        "order.delayed",
        "c-amelia",
        "2026-03-21T11:00:00Z",
        id="old",
        data={"order_id": "A-2", "new_eta": "2026-03-24"},
    )
    assert late.planned == [] and "superseded on arrival" in late.notes[0]
    clock.set(at("2026-03-21T13:00:00Z"))
    deliver_due(app)
    assert [r["body"].count("March 26") for r in outbox(app)] == [1]


def test_worker_killed_after_claim_is_recovered_by_lease_expiry_once(app, customers, clock):
    ingest(
        app,
        "order.delayed",
        "c-haruto",
        "2026-03-20T06:00:00Z",
        id="k1",
        data={"order_id": "C-1", "new_eta": "2026-03-24"},
    )
    dead = app.schedule.claim(10)  # claimed by a worker that then dies
    assert len(dead) == 1
    clock.advance(timedelta(seconds=app.settings.lease_seconds - 1))
    assert app.schedule.reap(10) == []  # lease still valid
    clock.advance(timedelta(seconds=2))
    assert app.schedule.reap(10) == [dead[0].send_id]
    outcomes = deliver_due(app)
    assert [o.state for o in outcomes] == ["delivered"]
    # The dead worker's message is redelivered by Dramatiq later: its claim is stale.
    assert [o.state for o in app.deliver(dead)] == ["delivered"]
    assert list(sent_ids(app).values()) == [1]
    assert "lease_expired" in [e["what"] for e in app.schedule.history(dead[0].send_id)]


def test_redelivered_deliver_message_does_not_send_twice(app, customers, clock):
    ingest(
        app,
        "order.delayed",
        "c-haruto",
        "2026-03-20T06:00:00Z",
        id="r1",
        data={"order_id": "C-2", "new_eta": "2026-03-24"},
    )
    claims = app.schedule.claim(10)
    assert [o.state for o in app.deliver(claims)] == ["delivered"]
    assert [o.state for o in app.deliver(claims)] == ["delivered"]  # not attempted again
    assert list(sent_ids(app).values()) == [1]


def test_two_pumps_racing_claim_each_send_once(app, client, customers, clock, backend, request):
    due = at("2026-03-20T05:00:00Z")
    total = 3000
    # Spread over customers, so the sends fall in every shard.
    planned = {plan_send(app, f"e{i}", due + timedelta(milliseconds=i), f"c{i % 97}") for i in range(total)}
    # On a real Redis each pump has its own connection pool, as two processes would.
    if backend == "redis":
        url = request.getfixturevalue("redis_server")
        connections = [redis.Redis.from_url(url) for _ in range(2)]
    else:
        connections = [client, client]
    schedules = [Schedule(conn, app.keys, clock, lease_seconds=60) for conn in connections]
    got: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def pump(i: int) -> None:
        start.wait()
        while claims := schedules[i].claim(50):
            got[i].extend(c.send_id for c in claims)

    threads = [threading.Thread(target=pump, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got[0]) + len(got[1]) == total
    assert set(got[0]).isdisjoint(got[1])
    assert set(got[0]) | set(got[1]) == planned
    if backend == "redis":
        assert got[0] and got[1], "both pumps should have won some claims"


def test_transient_failure_retries_through_the_schedule(app, customers, clock):
    from outreach import TransientChannelError

    calls = []
    real = app.transports["email"]

    class Flaky:
        def send(self, delivery):
            calls.append(delivery.attempt)
            if len(calls) == 1:
                raise TransientChannelError("421 try later", retry_after=120)
            return real.send(delivery)

    app.transports["email"] = Flaky()
    ingest(
        app,
        "order.delayed",
        "c-haruto",
        "2026-03-20T06:00:00Z",
        id="t1",
        data={"order_id": "C-3", "new_eta": "2026-03-24"},
    )
    [outcome] = deliver_due(app)
    assert outcome.state == "retry_scheduled"
    send = app.schedule.get(outcome.send_id)
    retry_at = to_ms(send.due) / 1000 - clock.now().timestamp()
    assert 120 <= retry_at <= 121  # Retry-After wins over the shorter first backoff
    assert app.schedule.depth() == (1, 0)  # back in our schedule, not in Dramatiq's delay queue
    assert deliver_due(app) == []  # not yet due
    clock.advance(timedelta(seconds=121))
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert calls == [1, 2]


def test_permanent_failure_dead_letters_the_send(app, customers, clock):
    from outreach import PermanentChannelError

    class Rejecting:
        def send(self, delivery):
            raise PermanentChannelError("550 no such mailbox")

    app.transports["email"] = Rejecting()
    ingest(
        app,
        "order.delayed",
        "c-haruto",
        "2026-03-20T06:00:00Z",
        id="p1",
        data={"order_id": "C-4", "new_eta": "2026-03-24"},
    )
    [outcome] = deliver_due(app)
    assert outcome.state == "failed"
    [letter] = app.deadletters.list()
    assert letter.kind == "send" and "550 no such mailbox" in letter.reason
    # The address is now suppressed for email: fix the cause (a new address), replay.
    assert app.policy.is_suppressed("email", "haruto@example.jp")
    app.upsert_customer({**CUSTOMERS["c-haruto"], "email": "haruto.tanaka@example.jp"})
    app.transports["email"] = app.transports["sms"]
    app.replay(letter.id)
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert app.deadletters.count() == 0


def test_customer_who_moved_zone_is_replanned_at_fire_time(app, customers, clock):
    tips = by_step(
        app, ingest(app, "customer.signed_up", "c-amelia", "2026-03-20T12:00:00Z", id="m1").planned
    )["tips"]
    # Before day 2 the customer moves from New York to Tokyo.
    app.upsert_customer({**customers["c-amelia"], "zone": "Asia/Tokyo", "country": "JP"})
    clock.set(at("2026-03-22T14:00:01Z"))  # 10:00 New York, 23:00 Tokyo
    outcomes = {o.send_id: o.state for o in deliver_due(app)}
    assert outcomes[tips] == "deferred"
    due = to_ms(app.schedule.get(tips).due)
    # Day 2 counted from the sign-up's local date in Tokyo (03-20 21:00 JST) is 03-22; 10:00 JST
    # on 03-22 already passed (01:00Z), so the rule now resolves to the next day at 10:00.
    assert from_ms(due).astimezone(zone("Asia/Tokyo")).isoformat() == "2026-03-23T10:00:00+09:00"
    history = app.schedule.history(tips)
    assert "moved from America/New_York to Asia/Tokyo" in history[-1]["text"]


def test_unsubscribed_customer_gets_no_lifecycle_message(app, customers, clock):
    ingest(app, "customer.signed_up", "c-haruto", "2026-03-20T06:00:00Z", id="u0")
    clock.set(at("2026-03-20T06:10:00Z"))
    deliver_due(app)
    result = ingest(app, "customer.unsubscribed", "c-haruto", "2026-03-20T07:00:00Z", id="u1")
    assert len(result.cancelled) == 3  # tips, check-in and the NPS survey
    assert app.customers.get("c-haruto").consent["lifecycle"] is False
    ingest(app, "customer.signed_up", "c-haruto", "2026-03-21T06:00:00Z", id="u2")
    ingest(
        app,
        "order.delayed",
        "c-haruto",
        "2026-03-21T06:00:00Z",
        id="u3",
        data={"order_id": "C-9", "new_eta": "2026-03-24"},
    )
    clock.set(at("2026-04-30T00:00:00Z"))
    states = sorted(o.state for o in deliver_due(app))
    assert states.count("delivered") == 1  # the transactional delay notice
    assert states.count("suppressed") == 4  # the new sign-up's onboarding steps and NPS survey
    assert [r["journey"] for r in outbox(app)] == ["onboarding", "order_delay"]


def test_full_flow_through_dramatiq(app, worker, customers, clock):
    app.emit("customer.signed_up", "c-jonas", occurred_at="2026-03-20T06:00:00Z", id="f1")
    app.emit("customer.signed_up", "c-jonas", occurred_at="2026-03-20T06:00:00Z", id="f1")
    app.drain(worker)
    clock.set(at("2026-03-20T08:00:00Z"))  # 09:00 in Berlin
    assert app.pump() == 1
    app.drain(worker)
    assert [r["step"] for r in outbox(app)] == ["welcome"]
    assert app.schedule.depth() == (3, 0)  # tips, check-in, NPS
