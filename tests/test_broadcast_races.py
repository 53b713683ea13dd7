"""Broadcast races with real processes on a real Redis.

* Planners: one ``outreach broadcast plan`` is killed (SIGKILL) mid-way, then two more run at once.
  Every recipient is planned once and counted once: a batch that does not start at its shard's
  stored cursor plans nothing (``broadcasts/lua/plan.lua``).
* Cancel during delivery: two worker processes and two scheduler processes deliver a broadcast
  spread as its rate spreads it; the test cancels it mid-way. No send is handed over after the
  cancel returned (the gate's hand-over time of every delivered send is before it), every other
  send ends cancelled, and the counts of ``status`` add up.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from outreach import Outreach, Settings
from outreach.broadcasts import Broadcast, Moment
from outreach.channels.outbox import read_outbox
from outreach.customers.profile import Customer
from outreach.timing import zone

from .conftest import STARTER
from .helpers import process_env, zone_at_noon
from .test_races import Processes

SETTLE_SECONDS = 90


def _customers(app: Outreach, count: int, zone_name: str) -> list[str]:
    """Profiles written straight to Redis (quick), spread over the shards."""
    pipe = app.client.pipeline(transaction=False)
    ids = [f"w{i:05}" for i in range(count)]
    for customer_id in ids:
        customer = Customer.from_mapping(
            {"id": customer_id, "name": "W", "email": f"{customer_id}@example.com", "zone": zone_name}
        )
        pipe.set(app.keys.customer(customer_id), customer.to_json())
        pipe.sadd(app.keys.customers(app.keys.shard_of(customer_id)), customer_id)
    pipe.execute()
    return ids


def _due_count(app: Outreach, broadcast: Broadcast) -> int:
    found = 0
    for shard in range(app.keys.shards):
        found += sum(
            1
            for m in app.client.zrange(app.keys.due(shard), 0, -1)
            if m.decode().startswith("s" + broadcast.digest)
        )
    return found


@pytest.mark.redis_server
def test_planners_killed_and_running_at_once_plan_and_count_every_recipient_once(redis_server, tmp_path):
    env = process_env(redis_server, STARTER / "config", tmp_path, "bplan")
    app = Outreach(Settings.from_env(env))
    count = 6000  # ~375 a shard: Redis scans such sets in batches
    _customers(app, count, "Europe/Berlin")
    b = app.broadcasts.create(
        Broadcast(id="strike", name="strike", category="transactional", channels=("email",),
                  template="order_delay/notice", moment=Moment.parse("tomorrow 10:00"),
                  audience={"kind": "segment"}, data={"order_id": "-", "new_eta": "2030-01-01"})
    )  # fmt: skip
    procs = Processes(env, tmp_path)
    try:
        doomed = procs.start("outreach", "broadcast", "plan", b.id, "--batch", "5")
        started = time.monotonic()
        while app.broadcasts.status(b.id).planned < 200:
            assert time.monotonic() - started < SETTLE_SECONDS and doomed.poll() is None
            time.sleep(0.01)  # polling a real process
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        before = app.broadcasts.status(b.id)
        assert 0 < before.planned < count and before.state == "planning"
        outputs = [tmp_path / "a.out", tmp_path / "b.out"]
        files = [out.open("wb") for out in outputs]
        pair = [
            procs.start("outreach", "broadcast", "resume", "--batch", size, stdout=f)
            for size, f in zip(("20", "7"), files, strict=True)
        ]
        for proc, file in zip(pair, files, strict=True):
            assert proc.wait(timeout=SETTLE_SECONDS) == 0
            file.close()
        planned = [int(re.search(r"planned (\d+) sends", out.read_text())[1]) for out in outputs]
        status = app.broadcasts.status(b.id)
        print(f"\nplanners: killed after {before.planned}, then {planned[0]} + {planned[1]} at once")
        assert (status.state, status.seen, status.planned) == ("planned", count, count)
        assert before.planned + sum(planned) == count
        # Which of the two did how much is up to the processes' start: one that started late may find
        # nothing left. Every recipient planned and counted once is the promise, checked above.
        assert _due_count(app, b) == count
    finally:
        procs.stop_all()


@pytest.mark.redis_server
def test_two_planners_of_one_uploaded_list_plan_each_line_once(redis_server, tmp_path):
    env = process_env(redis_server, STARTER / "config", tmp_path, "blist")
    app = Outreach(Settings.from_env(env))
    ids = _customers(app, 4000, "Europe/Berlin")
    upload = tmp_path / "affected.jsonl"
    lines = [f'{{"customer_id": "{c}", "order_id": "O-{i}"}}' for i, c in enumerate(ids)]
    lines[100:100] = ["not json", '{"customer_id": "nobody"}']
    upload.write_text("\n".join(lines) + "\n")
    b = app.broadcasts.create(
        Broadcast(id="strike", name="strike", category="transactional", channels=("email",),
                  template="order_delay/notice", moment=Moment.parse("tomorrow 10:00"),
                  audience={"kind": "list", "path": str(upload)}, data={"new_eta": "2030-01-01"})
    )  # fmt: skip
    procs = Processes(env, tmp_path)
    try:
        # Batches of another size each: their rounds end at other lines of the list.
        pair = [procs.start("outreach", "broadcast", "plan", b.id, "--batch", size) for size in ("3", "7")]
        for proc in pair:
            assert proc.wait(timeout=SETTLE_SECONDS) == 0
        status = app.broadcasts.status(b.id)
        assert (status.state, status.planned, status.seen) == ("planned", 4000, 4001)
        assert status.skipped == {"bad_line": 1, "unknown_customer": 1}
        assert _due_count(app, b) == 4000
        assert app.schedule.get(b.send_id(ids[3999])).data["order_id"] == "O-3999"
    finally:
        procs.stop_all()


@pytest.mark.redis_server
def test_a_cancel_during_delivery_stops_every_send_not_yet_handed_over(redis_server, tmp_path):
    env = process_env(redis_server, STARTER / "config", tmp_path, "bcancel")
    app = Outreach(Settings.from_env(env))
    count = 3000
    zone_name = zone_at_noon()
    ids = _customers(app, count, zone_name)
    # Due an hour ago in each zone (the broadcast was created two hours ago).
    now = datetime.now(UTC)
    wall = (now - timedelta(hours=1)).astimezone(zone(zone_name)).strftime("%H:%M")
    b = app.broadcasts.create(
        Broadcast(id="strike", name="strike", category="transactional", channels=("email",),
                  template="order_delay/notice", moment=Moment.parse(f"today {wall}"),
                  audience={"kind": "segment"}, data={"order_id": "-", "new_eta": "2030-01-01"},
                  created_ms=int((now - timedelta(hours=2)).timestamp() * 1000))
    )  # fmt: skip
    assert app.broadcasts.plan(b.id).planned == count
    order = [b.send_id(c) for c in sorted(ids)]

    def due_from(first: int, start_ms: int, every_ms: int) -> None:
        pipe = app.client.pipeline(transaction=False)
        for i, send_id in enumerate(order[first:]):
            pipe.zadd(app.keys.due(app.keys.shard_of_send(send_id)), {send_id: start_ms + i * every_ms})
        pipe.execute()

    # Held back a day while the processes start; the first hundred due now.
    due_from(0, int(time.time() * 1000) + 86_400_000, 0)
    pipe = app.client.pipeline(transaction=False)
    for send_id in order[:100]:
        pipe.zadd(app.keys.due(app.keys.shard_of_send(send_id)), {send_id: int(time.time() * 1000)})
    pipe.execute()
    procs = Processes(env, tmp_path)
    outbox_dir = tmp_path / "outbox"
    try:
        for _ in range(2):
            procs.worker()
            procs.start("outreach", "scheduler")
        started = time.monotonic()
        while len(read_outbox(outbox_dir)) < 50:
            assert time.monotonic() - started < SETTLE_SECONDS, "no deliveries"
            time.sleep(0.02)  # polling real processes
        # The worker runs: the rest from now on, 50 a second (as the broadcast's rate spreads them).
        due_from(100, int(time.time() * 1000), 20)
        while len(read_outbox(outbox_dir)) < 300:
            assert time.monotonic() - started < SETTLE_SECONDS, "no deliveries"
            time.sleep(0.02)
        done = app.broadcasts.cancel(b.id, "strike called off")
        returned_ms = int(time.time() * 1000)
        while app.broadcasts.status(b.id).waiting:
            assert time.monotonic() - started < SETTLE_SECONDS, app.broadcasts.status(b.id)
            time.sleep(0.05)
        time.sleep(0.5)  # a last outbox line written after its outcome would show here
        rows = read_outbox(outbox_dir)
        delivered = {row["send_id"] for row in rows}
        status = app.broadcasts.status(b.id)
        pipe = app.client.pipeline(transaction=False)
        for send_id in delivered:
            pipe.hget(app.keys.send(send_id), "handed_ms")
        handed = [int(ms) for ms in pipe.execute()]
        cancelled = status.outcomes.get("cancelled")
        print(
            f"\ncancel during delivery: {len(delivered)} delivered, {cancelled} cancelled "
            f"({done.cancelled} by the sweep, the rest at the gates), {done.too_late} too late; last "
            f"hand-over {returned_ms - max(handed)} ms before the cancel returned"
        )
        assert 300 <= len(delivered) < count
        assert done.cancelled > 0, "planned sends were cancelled by the sweep, claimed ones at the gates"
        assert len(rows) == len(delivered), "no send went out twice"
        assert max(handed) <= returned_ms, "a send was handed over after the cancel returned"
        assert status.outcomes == {"delivered": len(delivered), "cancelled": count - len(delivered)}
        for send_id in [b.send_id(c) for c in sorted({s.split(".", 1)[1] for s in delivered})][:5]:
            assert app.schedule.get(send_id).state == "delivered"
    finally:
        procs.stop_all()
