"""Ingestion in batches applies exactly what the same events applied one by one would.

``Ingestor.ingest_many`` reads markers and profiles for a whole batch, plans the
journeys the events start with one ``start.lua`` call each in one round trip, and
applies an event with more effects (an exit, an unsubscribe, a branch) on its own,
after the starts before it. Whatever the batch boundaries, the result per event and
the schedule it leaves must be those of applying the events one at a time, in the
same order: supersedes in either order of arrival, exits right after a start in
the same batch, repeats of an id inside one batch and across batches, unknown
customers between good events.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import fakeredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach import Outreach
from outreach.journeys.events import Event

from .conftest import CUSTOMERS, make_settings

PEOPLE = ["c-amelia", "c-jonas", "c-haruto", "c-nobody"]

#: (type, data) of the events drawn: two orders (one superseding the other), a sign-up and the
#: events that end its journeys, an interaction that starts a survey.
KINDS = [
    ("order.delayed", {"order_id": "A-1", "new_eta": "2026-03-25"}),
    ("order.delayed", {"order_id": "A-1", "new_eta": "2026-03-27"}),
    ("order.delayed", {"order_id": "B-2", "new_eta": "2026-03-26"}),
    ("order.delayed", {"new_eta": "2026-03-26"}),  # refused: no order_id
    ("customer.signed_up", {}),
    ("customer.activated", {}),
    ("customer.unsubscribed", {"categories": ["lifecycle"]}),
    ("interaction.resolved", {}),
]

event = st.tuples(
    st.sampled_from(PEOPLE),
    st.integers(0, len(KINDS) - 1),
    st.integers(-120, 120),  # minutes from now: older events may arrive after newer ones
    st.integers(0, 5),  # a small id space: repeats of an id happen
)


def _apps(tmp_path, clock):
    server = fakeredis.FakeServer()
    apps = []
    for label in ("one", "batch"):
        client = fakeredis.FakeRedis(server=server)
        app = Outreach(make_settings(tmp_path / label), client=client, clock=clock)
        for data in CUSTOMERS.values():
            app.upsert_customer(data)
        apps.append(app)
    return apps


def _raw(clock, person: str, kind: int, minutes: int, tag: int) -> dict:
    type_, data = KINDS[kind]
    at = clock.now() + timedelta(minutes=minutes)
    return {"id": f"ev-{kind}-{person}-{tag}", "type": type_, "customer_id": person,
            "occurred_at": at.isoformat(), "data": data}  # fmt: skip


def _summary(result) -> object:
    if result is None:
        return None
    return (result.event_id, result.duplicate, sorted(result.planned), sorted(result.cancelled),
            sorted(s.send_id for s in result.too_late), sorted(result.notes))  # fmt: skip


def _state(app: Outreach, send_ids: set[str]) -> dict:
    out = {}
    for send_id, send in zip(sorted(send_ids), app.schedule.get_many(sorted(send_ids)), strict=True):
        out[send_id] = None if send is None else (send.state.value, send.due, send.journey, send.step)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=14), cuts=st.lists(st.integers(1, 5), max_size=6))
def test_a_batch_applies_what_one_by_one_applies(tmp_path, clock, events, cuts):
    one, batch = _apps(tmp_path, clock)
    raws = [_raw(clock, *e) for e in events]
    expected = [one.ingest(json.loads(json.dumps(raw))) for raw in raws]
    got = []
    rest = list(raws)
    for size in [*cuts, len(rest)]:
        chunk, rest = rest[:size], rest[size:]
        if chunk:
            got += batch.ingest_many(chunk)
    assert [_summary(r) for r in got] == [_summary(r) for r in expected]
    planned = {s for r in expected if r for s in r.planned}
    assert _state(batch, planned) == _state(one, planned)
    for person in PEOPLE[:3]:
        assert sorted(s.id for s in batch.schedule.open_sends(person)) == sorted(
            s.id for s in one.schedule.open_sends(person)
        )
    assert len(batch.deadletters.list()) == len(one.deadletters.list())
    assert batch.inbox.depth() == one.inbox.depth() == 0


def test_a_newer_delay_notice_in_the_same_batch_supersedes_the_older_one(app, customers, clock):
    older = _raw(clock, "c-jonas", 0, -30, 1)
    newer = _raw(clock, "c-jonas", 1, -10, 2)
    first, second = app.ingest_many([older, newer])
    assert first.planned and second.planned
    assert second.cancelled == first.planned  # the older event's notice, cancelled in time
    # Arriving in the other order, the older event plans nothing.
    late_older = _raw(clock, "c-jonas", 0, -60, 3)
    [third] = app.ingest_many([late_older])
    assert third.planned == [] and third.notes == ["superseded on arrival by event ev-1-c-jonas-2"]


def test_an_exit_right_after_a_start_in_one_batch_ends_what_the_start_planned(app, customers, clock):
    signed_up = _raw(clock, "c-amelia", 4, 0, 1)
    activated = _raw(clock, "c-amelia", 5, 1, 2)
    start, exit_ = app.ingest_many([signed_up, activated])
    onboarding = [s for s in start.planned if app.schedule.get(s).journey == "onboarding"]
    assert onboarding and set(onboarding) <= set(exit_.cancelled)


def test_a_bad_event_in_a_batch_is_dead_lettered_alone(app, customers, clock):
    good = _raw(clock, "c-haruto", 2, 0, 1)
    unknown = _raw(clock, "c-nobody", 2, 0, 2)
    no_order = _raw(clock, "c-haruto", 3, 0, 3)
    results = app.ingest_many([good, unknown, no_order, _raw(clock, "c-haruto", 2, 0, 4)])
    assert [r is None for r in results] == [False, True, True, False]
    assert len(app.deadletters.list()) == 2
    assert app.inbox.depth() == 0
    # A repeat of the refused id in a later batch is refused again, not taken for done.
    assert app.ingest_many([unknown]) == [None]


def test_a_repeat_inside_one_batch_is_a_duplicate(app, customers, clock):
    raw = _raw(clock, "c-haruto", 2, 0, 1)
    first, again = app.ingest_many([raw, dict(raw)])
    assert first.planned and not first.duplicate
    assert again.duplicate and again.planned == []
    assert app.ingest_many([raw])[0].duplicate


#: A worker process of the race below: waits for the start line, then applies its batches.
RACER = """
import json, os, sys, time
from outreach import Outreach, Settings
app = Outreach(Settings.from_env())
work = json.load(open(sys.argv[1]))
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)  # every racer starts at once
for k in range(0, len(work), 25):
    app.ingest_many(work[k : k + 25])
print("applied", len(work))
"""


def test_racing_batches_leave_one_notice_per_order_the_newest(redis_server, tmp_path):
    """Worker processes apply overlapping batches at once (a message delivered twice, two events for
    one order taken by two workers): every order ends with exactly the newest event's notice."""
    import subprocess
    import sys
    from datetime import UTC, datetime

    import redis as redis_py

    from outreach import Settings
    from outreach.settings import STARTER

    from .helpers import process_env

    env = process_env(redis_server, STARTER / "config", tmp_path, "race")
    app = Outreach(Settings.from_env(env), client=redis_py.Redis.from_url(redis_server))
    for data in CUSTOMERS.values():
        app.upsert_customer(data)
    orders, people, now = 150, PEOPLE[:3], datetime.now(UTC)

    def delay(i: int, version: int) -> dict:
        data = {"order_id": f"O-{i}", "new_eta": "2030-03-30"}
        at = now - timedelta(minutes=10 - version)
        return {"id": f"ev-{i}-v{version}", "type": "order.delayed", "customer_id": people[i % 3],
                "occurred_at": at.isoformat(), "data": data}  # fmt: skip

    work = [
        [delay(i, 1) for i in range(orders)],
        [delay(i, 2) for i in reversed(range(orders))],
        [delay(i, v) for i in range(orders) for v in (2, 1)],
        [delay(i, 1) for i in reversed(range(orders))],
    ]
    go = tmp_path / "go"
    racers = []
    for k, events in enumerate(work):
        path = tmp_path / f"work-{k}.json"
        path.write_text(json.dumps(events))
        argv = [sys.executable, "-c", RACER, str(path), str(go)]
        racers.append(
            subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline() == "ready\n", racer.stderr
    go.write_text("")  # every racer has loaded and waits: they start at once
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err[-2000:]
        assert out.startswith("applied"), out
    newest = {f"ev-{i}-v2" for i in range(orders)}
    for person in people:
        live = [s for s in app.schedule.open_sends(person) if s.journey == "order_delay"]
        assert {s.event_id for s in live} <= newest
        assert len(live) == len([i for i in range(orders) if people[i % 3] == person])
    app.client.close()


def _crash_at_the_nth_done(app: Outreach, n: int) -> None:
    """The n-th round trip that marks events done fails (the worker dies, Redis goes away)."""
    import redis as redis_py

    original = app.inbox.applied
    calls = [0]

    def applied(events):
        calls[0] += 1
        if calls[0] == n:
            raise redis_py.ConnectionError("connection lost")
        return original(events)

    app.inbox.applied = applied  # type: ignore[method-assign]


def test_a_batch_tried_again_after_a_crash_never_applies_an_exit_after_a_later_start(app, customers, clock):
    import pytest
    import redis as redis_py

    activated = _raw(clock, "c-amelia", 5, -5, 1)  # ends onboarding (nothing to end yet)
    signed_up = _raw(clock, "c-amelia", 4, 0, 2)  # starts it
    for crash_at in (1, 2):  # after the exit was applied; after the start ran
        fresh = {**signed_up, "id": f"{signed_up['id']}-{crash_at}"}
        again = {**activated, "id": f"{activated['id']}-{crash_at}"}
        batch = [Event.from_mapping(again, now=clock.now()), Event.from_mapping(fresh, now=clock.now())]
        _crash_at_the_nth_done(app, crash_at)
        with pytest.raises(redis_py.ConnectionError):
            app.ingestor.ingest_many(batch)
        del app.inbox.applied  # the method of the class again
        # Dramatiq tries the message again: the whole batch, in its order.
        app.ingestor.ingest_many(batch)
        live = [s for s in app.schedule.open_sends("c-amelia") if s.journey == "onboarding"]
        assert {s.event_id for s in live} >= {fresh["id"]}, crash_at


def test_a_newer_event_cancels_the_older_notice_even_after_a_crash_in_between(app, customers, clock):
    older = _raw(clock, "c-jonas", 0, -30, 1)
    newer = _raw(clock, "c-jonas", 1, -10, 2)
    [first] = app.ingest_many([older])
    original = app.ingestor._cancel_superseded

    def die(*args, **kwargs):
        raise ConnectionError("worker killed between start.lua and the cancellation")

    app.ingestor._cancel_superseded = die  # type: ignore[method-assign]
    with contextlib.suppress(ConnectionError):
        app.ingestor.ingest_many([Event.from_mapping(newer, now=clock.now())])
    app.ingestor._cancel_superseded = original  # type: ignore[method-assign]
    [second] = app.ingest_many([newer])  # tried again: the key already names it
    assert second.cancelled == first.planned
    assert [s.event_id for s in app.schedule.open_sends("c-jonas") if s.journey == "order_delay"] == [
        newer["id"]
    ]


def test_one_event_that_breaks_its_batch_does_not_hold_up_the_others(app, customers, clock):
    import pytest

    # A profile Redis holds that this version cannot read (written by hand, or by a later version).
    app.client.set(app.keys.customer("c-haruto"), b"{not json")
    good = [_raw(clock, "c-jonas", 2, 0, k) for k in range(3)]
    bad = _raw(clock, "c-haruto", 2, 0, 9)
    batch = [good[0], bad, good[1], good[2]]
    app.inbox.put(batch)
    with pytest.raises(Exception):  # noqa: B017 - whatever the broken profile raises, raised again
        app.ingest_many(batch)
    # The good events were applied one at a time; the broken one stays in the inbox for its retries.
    assert [app.client.get(app.keys.event(e["id"], e["customer_id"])) for e in good] == [b"done"] * 3
    assert [s.event_id for s in app.schedule.open_sends("c-jonas")] == [good[2]["id"]]  # the newest
    assert (
        app.client.get(app.keys.event(bad["id"], bad["customer_id"])) == b"pending" and app.inbox.depth() == 1
    )


def test_an_event_for_a_customer_erased_during_the_batch_plans_nothing(app, customers, clock):
    raw = _raw(clock, "c-jonas", 0, 0, 1)
    original = app.customers.get_many

    def then_erased(ids):
        found = original(ids)
        app.erase_customer("c-jonas")
        return found

    app.customers.get_many = then_erased  # type: ignore[method-assign]
    assert app.ingest_many([raw]) == [None]
    app.customers.get_many = original  # type: ignore[method-assign]
    # Nothing names the customer any more (the event's own marker names only the event).
    marker = app.keys.event(raw["id"], raw["customer_id"]).encode()
    left = [k for k in app.client.scan_iter(match=f"{app.keys.prefix}*") if b"c-jonas" in k and k != marker]
    assert left == []
    assert app.schedule.open_sends("c-jonas") == []


def test_behind_a_queued_batch_no_event_is_queued_again(app, customers, clock):
    from datetime import timedelta as td

    from outreach.app import INGEST_QUEUE

    # Five messages of one event each wait: each counts as a full batch (5 x 200, the backlog bound).
    messages = app.settings.ingest_backlog // app.settings.ingest_batch
    for k in range(messages):
        app.submit([_raw(clock, "c-jonas", 2, 0, k)])
    clock.advance(td(seconds=app.settings.ingest_lease_seconds * 2))
    assert app.requeue_overdue_events() == 0
    app.broker.flush(INGEST_QUEUE)
    assert app.requeue_overdue_events() == messages


def test_an_event_id_is_applied_once_per_customer(app, customers, clock):
    for_jonas = {**_raw(clock, "c-jonas", 2, 0, 1), "id": "shared-id"}
    for_haruto = {**_raw(clock, "c-haruto", 2, 0, 1), "id": "shared-id"}
    first, second = app.ingest_many([for_jonas, for_haruto])
    assert first.planned and second.planned and not second.duplicate
    assert app.ingest_many([for_jonas, for_haruto])[1].duplicate
