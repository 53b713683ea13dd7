"""Digests and throttles under races with real processes: two ``dramatiq outreach.worker`` and two
``outreach scheduler`` processes on a real Redis, while events for the same customers keep coming
from two threads (docs/JOURNEYS.md).

The promise: every event is listed in exactly one digest that went out, no digest is empty and
none goes twice, however the events interleave with the digests being sealed and sent; a
throttle lets exactly its limit through.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from outreach import Outreach, Settings
from outreach.channels.outbox import read_outbox

from .helpers import declared, process_env, zone_at_noon
from .kinds_project import project
from .test_races import Processes

CUSTOMERS = 12
EVENTS_EACH = 15

DIGEST = """
[journey]
name = "delays"
category = "transactional"
trigger = "order.delayed"

[[journey.steps]]
name = "digest"
template = "order_digest/list"
channels = ["sms"]
digest = true
delay_minutes = 0.01
window = ""
holidays = ""
observances = ""
"""

THROTTLED = """
[journey]
name = "notices"
category = "transactional"
trigger = "order.delayed"

[journey.throttle]
max = 3
days = 1

[[journey.steps]]
name = "notice"
template = "order_delay/notice"
channels = ["sms"]
window = ""
holidays = ""
observances = ""
"""


def _setup(tmp_path, redis_server, journey: str, name: str):
    config, templates = project(tmp_path, {name: journey})
    (config / "channels.toml").write_text(declared('[sms]\ntimeout = 5\nproviders = ["outbox"]\n'))
    policy = (config / "policy.toml").read_text()
    start, end = policy.index("[caps]"), policy.index("[survey]")
    (config / "policy.toml").write_text(policy[:start] + policy[end:])
    env = process_env(redis_server, config, tmp_path, name, OUTREACH_TEMPLATES_DIR=str(templates))
    app = Outreach(Settings.from_env(env))
    zone_name = zone_at_noon()
    for c in range(CUSTOMERS):
        app.upsert_customer(
            {
                "id": f"d{c}",
                "name": f"Dana {c}",
                "phone": f"+4915300{c:06d}",
                "zone": zone_name,
                "channel": "sms",
            }
        )
    return app, Processes(env, tmp_path)


def _workers_ready(app: Outreach) -> None:
    """Wait until the workers apply events (they take seconds to start): an event for a customer of
    no journey's interest, applied."""
    app.upsert_customer({"id": "ready", "name": "Ready", "zone": "UTC"})
    app.emit("customer.activated", "ready", {}, id="ready-1")
    deadline = time.monotonic() + 60
    while app.client.get(app.keys.event("ready-1", "ready")) != b"done":
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)  # polling real processes


def _emit_from_two_threads(app: Outreach) -> list[str]:
    """Every customer's events, emitted by two threads in random order over about two seconds, once
    the workers apply events."""
    _workers_ready(app)
    orders = [(f"d{c}", f"O-{c}-{n}") for c in range(CUSTOMERS) for n in range(EVENTS_EACH)]
    random.shuffle(orders)
    halves = [orders[::2], orders[1::2]]

    def emit(part):
        for customer, order in part:
            app.emit(
                "order.delayed", customer, {"order_id": order, "new_eta": "2030-01-01"}, id=f"ev-{order}"
            )
            time.sleep(random.uniform(0, 0.04))  # events keep coming while digests are sealed and sent

    threads = [threading.Thread(target=emit, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [order for _, order in orders]


@pytest.mark.redis_server
def test_every_event_is_listed_once_in_a_digest_that_went(redis_server, tmp_path):
    app, procs = _setup(tmp_path, redis_server, DIGEST, "digest")
    try:
        for _ in range(2):
            procs.worker()
            procs.start("outreach", "scheduler")
        orders = _emit_from_two_threads(app)
        deadline = time.monotonic() + 60
        listed: list[str] = []
        while time.monotonic() < deadline:
            rows = read_outbox(app.settings.outbox_dir)
            listed = [o.strip() for r in rows for o in r["body"].split(":", 1)[1].split(",")]
            if len(listed) >= len(orders):
                break
            time.sleep(0.2)  # polling real processes
        time.sleep(1)  # anything sent twice would show up now
        rows = read_outbox(app.settings.outbox_dir)
        listed = [o.strip() for r in rows for o in r["body"].split(":", 1)[1].split(",")]
        assert Counter(listed) == Counter(orders), "an event missing or listed twice"
        assert len({r["send_id"] for r in rows}) == len(rows), "a digest went twice"
        assert all(r["body"].split()[0] != "0" for r in rows)
        # The events came over seconds and the window is 0.6 s: customers got several digests each.
        per_customer = Counter(r["customer_id"] for r in rows)
        print(
            f"\ndigest race: {len(orders)} events, {len(rows)} digests, most per customer "
            f"{max(per_customer.values())}"
        )
        assert len(rows) < len(orders) and max(per_customer.values()) > 1
    finally:
        procs.stop_all()
        app.client.close()


@pytest.mark.redis_server
def test_a_throttle_lets_exactly_its_limit_through(redis_server, tmp_path):
    app, procs = _setup(tmp_path, redis_server, THROTTLED, "throttle")
    try:
        for _ in range(2):
            procs.worker()
            procs.start("outreach", "scheduler")
        orders = _emit_from_two_threads(app)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = [app.records.get(s) for s in _planned(app, orders)]
            if all(s is not None and s.is_final for s in done):
                break
            time.sleep(0.2)  # polling real processes
        rows = read_outbox(app.settings.outbox_dir)
        assert Counter(r["customer_id"] for r in rows) == Counter({f"d{c}": 3 for c in range(CUSTOMERS)})
        reasons = Counter(s.reason for s in done if s.state == "suppressed")
        assert reasons == Counter({"throttled": CUSTOMERS * (EVENTS_EACH - 3)})
    finally:
        procs.stop_all()
        app.client.close()


def _planned(app: Outreach, orders: list[str]) -> list[str]:
    from outreach.store.keys import send_id_for

    return [send_id_for(f"ev-{o}", "notices", "notice", f"d{o.split('-')[1]}") for o in orders]
