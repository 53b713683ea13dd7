"""The durable inbox: an accepted event is applied even when its Dramatiq message is lost.

A worker that dies holding messages (prefetched or in progress) gives them back
only after Dramatiq's 60 s heartbeat timeout, at some later queue maintenance.
Here a message is lost outright (the queue is flushed, as a dead worker's
messages are gone for the moment); the pump must queue the event again once
its lease ran out, and only then. ``tests/test_races.py`` does the same with a
real worker process killed by SIGKILL.
"""

from __future__ import annotations

import json
from datetime import timedelta

from outreach.app import INGEST_QUEUE
from outreach.store.connections import queued

from .helpers import at


def lose_queued_messages(app) -> None:
    """What a dead worker does to the messages it held: they are gone for now."""
    app.broker.flush(INGEST_QUEUE)


def lease(app) -> timedelta:
    return timedelta(seconds=app.settings.ingest_lease_seconds)


def test_an_accepted_event_is_kept_until_it_is_applied(app, customers):
    event_id = app.emit("order.delayed", "c-jonas", {"order_id": "A-1", "new_eta": "2026-03-25"})
    assert app.inbox.depth() == 1
    assert queued(app.broker, INGEST_QUEUE) == 1
    event = app.client.hget(app.keys.inbox_events(app.keys.shard_of("c-jonas")), event_id)
    result = app.ingest(json.loads(event))
    assert result is not None and len(result.planned) == 1
    assert app.inbox.depth() == 0
    # Nothing is overdue: the message that is still queued is a harmless duplicate.
    app.clock.advance(lease(app) * 3)
    assert app.requeue_overdue_events() == 0
    assert app.ingest(json.loads(event)).duplicate


def test_a_lost_event_is_queued_again_one_lease_after_it_was_accepted(app, customers, clock):
    accepted = clock.now()
    app.emit("order.delayed", "c-jonas", {"order_id": "A-1", "new_eta": "2026-03-25"}, id="ev-1")
    lose_queued_messages(app)
    clock.set(accepted + lease(app) - timedelta(milliseconds=1))
    assert app.requeue_overdue_events() == 0
    clock.set(accepted + lease(app))
    assert app.requeue_overdue_events() == 1
    # A worker only now: none could take the message before it was lost.
    worker = app.worker(threads=2)
    try:
        app.drain(worker)
    finally:
        worker.stop()
    assert app.inbox.depth() == 0
    sends = app.schedule.open_sends("c-jonas")
    assert [s.event_id for s in sends] == ["ev-1"]
    # Queued again, it gets a new lease: not overdue again before that one runs out.
    assert app.requeue_overdue_events() == 0


def test_behind_a_backlog_an_event_is_not_queued_again(tmp_path, client, clock, customers):
    from outreach import Outreach

    from .conftest import make_settings

    app = Outreach(make_settings(tmp_path, ingest_backlog=3), client=client, clock=clock)
    for data in customers.values():
        app.upsert_customer(data)
    for i in range(3):
        app.emit("order.delayed", "c-jonas", {"order_id": f"A-{i}", "new_eta": "2026-03-25"})
    clock.advance(lease(app) * 2)
    # Three messages still wait in the queue: the events are late because of it, not lost.
    assert app.requeue_overdue_events() == 0
    lose_queued_messages(app)
    assert app.requeue_overdue_events() == 3


def test_an_event_never_applied_is_given_up_to_the_dead_letters(app, customers, clock):
    app.emit("order.delayed", "c-jonas", {"order_id": "A-1", "new_eta": "2026-03-25"}, id="ev-poison")
    wait = lease(app)
    for times in range(1, app.settings.ingest_dispatches + 1):
        lose_queued_messages(app)
        clock.advance(wait - timedelta(milliseconds=1))
        assert app.requeue_overdue_events() == 0
        clock.advance(timedelta(milliseconds=1))
        assert app.requeue_overdue_events() == 1
        # Each time it waits twice as long: an event that is only slow is not queued again and again.
        wait = lease(app) * 2**times
    lose_queued_messages(app)
    clock.advance(wait)
    assert app.requeue_overdue_events() == 0
    assert app.inbox.depth() == 0
    [letter] = app.deadletters.list()
    assert letter.kind == "event" and letter.payload["id"] == "ev-poison"
    assert f"queued {app.settings.ingest_dispatches + 1} times" in letter.reason
    # Replayed, it is accepted into the inbox again and applied.
    app.replay(letter.id)
    assert app.inbox.depth() == 1


def test_an_event_a_worker_began_is_overdue_one_lease_after_it_began(app, customers, clock):
    app.emit("order.delayed", "c-jonas", {"order_id": "A-1", "new_eta": "2026-03-25"}, id="ev-slow")
    clock.advance(lease(app) - timedelta(seconds=1))
    # A worker begins it (the marker and the new deadline in one round trip) and dies midway.
    app.inbox.take([("ev-slow", "c-jonas")])
    lose_queued_messages(app)
    clock.advance(timedelta(seconds=1))
    assert app.requeue_overdue_events() == 0
    clock.advance(lease(app) - timedelta(seconds=1))
    assert app.requeue_overdue_events() == 1


def test_the_same_event_accepted_twice_keeps_its_first_deadline(app, customers, clock):
    first = clock.now()
    app.emit("order.delayed", "c-jonas", {"order_id": "A-1", "new_eta": "2026-03-25"}, id="ev-2")
    clock.set(at("2026-03-20T06:00:05Z"))
    app.emit("order.delayed", "c-jonas", {"order_id": "A-1", "new_eta": "2026-03-25"}, id="ev-2")
    assert app.inbox.depth() == 1
    deadline = app.client.zscore(app.keys.inbox(app.keys.shard_of("c-jonas")), "ev-2")
    assert deadline == int((first + lease(app)).timestamp() * 1000)


def test_a_dead_lettered_event_leaves_the_inbox(app, customers):
    app.emit("order.delayed", "c-jonas", {"order_id": "A-1", "new_eta": "2026-03-25"}, id="ev-3")
    app.erase_customer("c-jonas")
    payload = {"id": "ev-3", "type": "order.delayed", "customer_id": "c-jonas", "data": {"order_id": "A-1"}}
    assert app.ingest(payload) is None
    assert app.inbox.depth() == 0
