"""A simulated month of the new step kinds together: a digest of delays, a throttled notice with its
overflow digested, a branch on an earlier outcome and a learned send time, for customers in several
zones, with events at random moments (docs/JOURNEYS.md)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import timedelta

from outreach.timing import zone

from .helpers import deliver_due, ingest, outbox
from .kinds_project import kinds_app

DELAYS = """
[journey]
name = "delays"
category = "transactional"
trigger = "order.delayed"

[journey.throttle]
max = 2
days = 7
overflow = "digest"

[[journey.steps]]
name = "notice"
template = "order_delay/notice"
window = "08:00-21:00"

[[journey.steps]]
name = "weekly"
template = "order_digest/list"
digest = true
days = 1
at = "18:00"
window = "08:00-21:00"
"""

CARE = """
[journey]
name = "care"
category = "lifecycle"
trigger = "customer.signed_up"

[[journey.steps]]
name = "checkin"
template = "onboarding/checkin"
days = 3
at = "10:00"
window = "08:00-21:00"
send_time = "learned"

[[journey.steps]]
name = "nudge"
template = "onboarding/tips"
days = 6
at = "10:00"
if = ["not steps.checkin.clicked"]
"""

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]


def test_a_month_of_digests_throttles_branches_and_learned_hours(tmp_path, client, clock):
    rng = random.Random(7)
    app = kinds_app(tmp_path, client, clock, {"delays": DELAYS, "care": CARE})
    clicked: set[str] = set()
    app.deliverer.facts.clicked = lambda send_id: clock.now() if send_id in clicked else None
    customers = [f"m{c}" for c in range(8)]
    for n, customer in enumerate(customers):
        app.upsert_customer(
            {"id": customer, "name": f"Mia {n}", "email": f"m{n}@example.com", "zone": ZONES[n % len(ZONES)]}
        )
        # Half of them answer in the evening, their own evening.
        if n % 2 == 0:
            for day in range(4):
                local = clock.now().astimezone(zone(ZONES[n % len(ZONES)])).replace(hour=19, minute=10)
                app.ingestor.engagement.record(
                    customer, ZONES[n % len(ZONES)], "answer", local - timedelta(days=day)
                )
    orders: dict[str, list[str]] = defaultdict(list)
    signed: dict[str, dict[str, str]] = {}
    end = clock.now() + timedelta(days=30)
    n = 0
    while clock.now() < end:
        clock.advance(timedelta(minutes=10))
        deliver_due(app)
        if rng.random() > 0.06:  # an event about every three hours
            continue
        customer = rng.choice(customers)
        if rng.random() < 0.8:
            order = f"O{n}"
            data = {"order_id": order, "new_eta": "2026-05-01"}
            ingest(app, "order.delayed", customer, clock.now().isoformat(), data, id=f"e{n}")
            orders[customer].append(order)
        elif customer not in signed:
            planned = ingest(app, "customer.signed_up", customer, clock.now().isoformat(), id=f"s{n}").planned
            signed[customer] = {
                app.schedule.get(s).step: s for s in planned if app.schedule.get(s).journey == "care"
            }
            if rng.random() < 0.5:
                clicked.add(signed[customer]["checkin"])
        n += 1
    for _ in range(20):
        clock.advance(timedelta(hours=12))
        deliver_due(app)
    rows = outbox(app)
    # The month exercised every kind: notices, digests of the overflow, both branches, both hours.
    steps = Counter(r["step"] for r in rows)
    assert steps["notice"] > 10 and steps["weekly"] > 3 and steps["checkin"] >= 4, steps
    assert {k % 2 for k, c in enumerate(customers) if c in signed} == {0, 1}
    assert 0 < len(clicked) < len(signed)
    # Every delayed order was told: in its own notice, or listed in a digest; never both, never twice.
    for customer, mine in orders.items():
        told = [r["body"].split()[0] for r in rows if r["customer_id"] == customer and r["step"] == "weekly"]
        digested = [
            line.split()[0]
            for r in rows
            if r["customer_id"] == customer and r["step"] == "weekly"
            for line in r["body"].splitlines()
            if line.startswith("O")
        ]
        noticed = [r for r in rows if r["customer_id"] == customer and r["step"] == "notice"]
        assert len(noticed) + len(digested) == len(mine), (customer, len(noticed), digested, told)
        assert len(set(digested)) == len(digested)
        # Never more than two notices in any seven days.
        times = sorted(r["utc"] for r in noticed)
        for i in range(len(times) - 2):
            assert _days(times[i], times[i + 2]) >= 7
    # Every message went inside its window, in the customer's own time.
    for row in rows:
        hour = int(row["local"][11:13])
        assert 8 <= hour < 21, row
    # The learned hour for the evening answerers; the step's own for the rest.
    for k, customer in enumerate(customers):
        if customer not in signed:
            continue
        checkin = [r for r in rows if r["send_id"] == signed[customer]["checkin"]]
        assert len(checkin) == 1
        assert checkin[0]["local"][11:16] == ("19:00" if k % 2 == 0 else "10:00")
        nudge = app.records.get(signed[customer]["nudge"])
        assert (nudge.state == "delivered") == (signed[customer]["checkin"] not in clicked)
    assert Counter(r["send_id"] for r in rows).most_common(1)[0][1] == 1


def _days(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 86400
