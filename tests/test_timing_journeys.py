"""Onboarding for customers in many zones, across both DST changes of a year, on a simulated clock."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from outreach import Outreach
from outreach.demo import fast_forward
from outreach.timing import zone

from .conftest import make_settings
from .helpers import at, outbox

ZONES = [
    "America/New_York", "America/Los_Angeles", "America/Santiago", "America/Havana",
    "America/Sao_Paulo", "America/St_Johns", "Europe/London", "Europe/Dublin", "Europe/Berlin",
    "Europe/Moscow", "Africa/Cairo", "Asia/Jerusalem", "Asia/Tehran", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Tokyo", "Australia/Sydney", "Australia/Lord_Howe", "Australia/Adelaide",
    "Pacific/Auckland", "Pacific/Chatham", "Pacific/Apia", "Pacific/Kiritimati", "America/Anchorage",
]  # fmt: skip

#: Sign-ups a few days before the spring and the autumn changes of both hemispheres.
COHORTS = ["2026-03-05T12:00:00Z", "2026-03-25T12:00:00Z", "2026-10-20T12:00:00Z"]


@pytest.mark.parametrize("signup", COHORTS)
def test_every_onboarding_message_lands_on_its_local_hour(tmp_path, client, signup):
    from outreach import SimulatedClock

    clock = SimulatedClock(at(signup) - timedelta(hours=1))
    app = Outreach(make_settings(tmp_path), client=client, clock=clock)
    for i, name in enumerate(ZONES):
        # No country: no holiday calendar, so every step keeps its hour.
        app.upsert_customer({"id": f"c{i}", "name": f"N{i}", "email": f"n{i}@example.com", "zone": name})
    worker = app.worker(threads=2)
    try:
        timeline = [
            (at(signup), lambda i=i: app.emit("customer.signed_up", f"c{i}", occurred_at=signup))
            for i in range(len(ZONES))
        ]
        fast_forward(app, worker, at(signup) + timedelta(days=16), timeline)
    finally:
        worker.stop()
    rows = outbox(app)
    assert len(rows) == 3 * len(ZONES)
    by_step: dict[str, dict[str, datetime]] = {}
    for r in rows:
        by_step.setdefault(r["step"], {})[r["customer_id"]] = datetime.fromisoformat(r["local"])
    signup_utc = at(signup)
    for i, name in enumerate(ZONES):
        cid = f"c{i}"
        local_signup = signup_utc.astimezone(by_step["welcome"][cid].tzinfo)
        welcome = by_step["welcome"][cid]
        # The welcome goes at once when 07:00-22:00 is open, else when it next opens.
        if time(7) <= local_signup.time() < time(22):
            assert welcome == local_signup, (name, welcome)
        else:
            assert welcome.time() == time(7), (name, welcome)
        tips, checkin = by_step["tips"][cid], by_step["checkin"][cid]
        assert (tips.time(), checkin.time()) == (time(10), time(11)), name
        # Calendar days in the customer's zone, whatever the UTC offset did meanwhile.
        assert (tips.date() - local_signup.date()).days == 2, name
        assert (checkin.date() - local_signup.date()).days == 14, name
    # The recorded local time is the zone's own reading of the UTC instant (no stale offset).
    for r in rows:
        name = ZONES[int(r["customer_id"][1:])]
        real = datetime.fromisoformat(r["utc"]).astimezone(zone(name))
        assert real.isoformat() == r["local"], (name, r["local"])
