"""The scheduler's ticks and the recurring check-in index."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis

from outreach.clock import from_ms, to_ms
from outreach.ticks import _safe, build_scheduler
from outreach.timing import zone

from .helpers import at, deliver_due, ingest, outbox


def test_ticks_are_configured_not_to_drop_or_overlap(app):
    scheduler = build_scheduler(app, blocking=False)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"pump", "sweep", "broadcasts"}
    for job in jobs.values():
        assert job.coalesce is True
        assert job.max_instances == 1
        assert job.misfire_grace_time is None
    assert jobs["pump"].trigger.interval == timedelta(seconds=app.settings.pump_interval)


def test_a_tick_says_once_that_redis_is_unreachable_and_again_when_it_answers(caplog):
    answers = [redis.ConnectionError("refused")] * 5 + [None, ValueError("bug"), None]

    def work() -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    tick = _safe("pump", work)
    with caplog.at_level(logging.WARNING, logger="outreach.ticks"):
        for _ in range(8):
            tick()  # never raises
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("pump tick: Redis unreachable (refused)")
    assert lines[1].startswith("pump tick: Redis answers again after ")
    assert lines[2] == "pump tick failed"  # any other failure keeps its traceback
    assert caplog.records[2].exc_info is not None
    assert len(lines) == 3


def checkin_score(app, customer_id: str) -> float | None:
    """The customer's entry in the check-in index (in the customer's shard)."""
    return app.client.zscore(app.keys.recurring(app.keys.shard_of(customer_id), "checkin"), customer_id)


def checkin_index_size(app) -> int:
    return sum(app.client.zcard(app.keys.recurring(s, "checkin")) for s in range(app.keys.shards))


def test_recurring_checkin_reads_only_due_entries_of_the_index(app, clock):
    for i in range(50):
        last = clock.now() - timedelta(days=10 + i)  # due 20 days from now down to 29 days ago
        app.upsert_customer(
            {"id": f"c{i}", "name": f"N{i}", "email": f"n{i}@example.com", "zone": "Europe/Rome",
             "attributes": {"last_contact_at": last.isoformat()}}
        )  # fmt: skip
    assert checkin_index_size(app) == 50
    events = app.recurring.due_events(limit=500)
    # every_days = 30: those last contacted 30+ days ago are due, i.e. i >= 20.
    assert sorted(e.customer_id for e in events) == sorted(f"c{i}" for i in range(20, 50))
    assert app.recurring.due_events(limit=500) == []  # claimed under a lease: not twice
    for event in events:
        app.ingest(event.to_mapping())
    # Re-scheduled 30 days on; the not-yet-due keep their place.
    assert checkin_score(app, "c25") == to_ms(clock.now() + timedelta(days=30))
    assert checkin_score(app, "c3") == to_ms(clock.now() - timedelta(days=13) + timedelta(days=30))
    clock.set(at("2026-03-20T09:30:00Z"))
    deliver_due(app)
    rows = outbox(app)
    assert len(rows) == 30 and {r["journey"] for r in rows} == {"checkin"}
    # The events came at 07:00 in Rome: the check-in goes out at 10:30 the same day.
    assert {r["local"] for r in rows} == {"2026-03-20T10:30:00+01:00"}


def test_a_delivered_message_pushes_the_next_checkin(app, customers, clock):
    ingest(app, "order.delayed", "c-haruto", "2026-03-20T06:00:00Z", id="x",
           data={"order_id": "1", "new_eta": "2026-03-24"})  # fmt: skip
    deliver_due(app)
    assert from_ms(checkin_score(app, "c-haruto")) == clock.now() + timedelta(days=30)
    assert zone("Asia/Tokyo")  # the customer's zone did not matter for the index


def test_unsubscribed_customers_leave_the_index(app, customers):
    ingest(app, "customer.unsubscribed", "c-jonas", "2026-03-20T06:00:00Z", id="u")
    assert checkin_score(app, "c-jonas") is None
