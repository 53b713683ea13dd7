"""The send policy: one decision per send, its order and reason codes, caps, consent, data rights."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest

from outreach import CustomerErased, Outreach, SimulatedClock
from outreach.clock import to_ms
from outreach.demo import fast_forward
from outreach.schedule import Intent, Send
from outreach.store.keys import send_id_for
from outreach.timing import zone

from .conftest import STARTER, make_settings
from .helpers import at, by_step, deliver_due, ingest, outbox

TRANSPORTS = frozenset({"email", "sms", "whatsapp", "webhook"})


def make_send(label: str, customer_id: str, category: str, start: str, *, rule=None, zone_name="UTC",
              channels=("email",), event_type="", **extra) -> Send:  # fmt: skip
    """A send as the policy reads it; ``label`` names it (the same label is the same send)."""
    due = to_ms(at(start))
    intent = Intent(
        journey="j", step="s", category=category, template="", channels=json.dumps(list(channels)),
        rule=json.dumps(rule or {}), survey="", event_type=event_type, zone=zone_name, country="",
    )  # fmt: skip
    fields = {
        **intent.fields, "id": send_id_for(label, "j", "s", customer_id), "customer_id": customer_id,
        "event_id": label, "start": at(start).isoformat(), "created_ms": str(due), "state": "sending",
        "due_ms": str(due), "resolved_ms": str(due), "attempts": "1", **extra,
    }  # fmt: skip
    return Send.from_fields(fields, intent)


def customer(app, cid="c1", **values):
    return app.upsert_customer({"id": cid, "name": "Ana", "email": f"{cid}@example.com", **values})


# -- the order and every reason code ---------------------------------------------------------


def test_unknown_and_erased_customers(app, clock):
    send = make_send("s1", "ghost", "transactional", "2026-03-20T06:00:00Z")
    assert app.policy.decide(send, None, clock.now(), TRANSPORTS).reason == "customer_unknown"
    customer(app, "gone")
    app.erase_customer("gone")
    send = make_send("s2", "gone", "transactional", "2026-03-20T06:00:00Z")
    assert app.policy.decide(send, None, clock.now(), TRANSPORTS).reason == "customer_erased"


def test_do_not_contact_stops_even_transactional(app, clock):
    ana = customer(app)
    app.set_do_not_contact("c1")
    decision = app.policy.decide(make_send("s", "c1", "transactional", "2026-03-20T06:00:00Z"), ana,
                                 clock.now(), TRANSPORTS)  # fmt: skip
    assert (decision.action, decision.reason) == ("suppress", "do_not_contact")


@pytest.mark.parametrize(
    ("country", "category", "consent", "allowed"),
    [
        (None, "lifecycle", {}, True),  # opt-out by default
        (None, "marketing", {}, False),  # opt-in by default
        (None, "marketing", {"marketing": True}, True),
        ("DE", "survey", {}, False),  # Germany: surveys need a yes
        ("US", "survey", {}, True),
        ("US", "lifecycle", {"lifecycle": False}, False),
        ("DE", "transactional", {"lifecycle": False}, True),  # transactional needs no consent
    ],
)
def test_consent_per_category_and_country(app, clock, country, category, consent, allowed):
    ana = customer(app, country=country, consent=consent)
    decision = app.policy.decide(make_send("s", "c1", category, "2026-03-20T06:00:00Z"), ana, clock.now(),
                                 TRANSPORTS)  # fmt: skip
    assert (decision.reason == "no_consent") is (not allowed)


def test_channels_fall_through_and_no_usable_channel(app, clock):
    ana = customer(app, phone="+4915205550102", channel="sms", channel_consent={"sms": False})
    send = make_send(
        "s", "c1", "transactional", "2026-03-20T06:00:00Z", channels=("email", "sms", "whatsapp")
    )
    decision = app.policy.decide(send, ana, clock.now(), TRANSPORTS - {"whatsapp"})
    assert [c for c, _ in decision.channels] == ["email"]
    assert decision.skipped == (
        "sms: the customer opted out of this channel",
        "whatsapp: no provider configured",
    )
    app.policy.suppress_address("email", "C1@example.com")
    decision = app.policy.decide(send, ana, clock.now(), TRANSPORTS - {"whatsapp"})
    assert (decision.action, decision.reason) == ("suppress", "no_usable_channel")
    assert "c1@example.com is on the suppression list" in decision.text


def test_tombstone_and_window(app, clock):
    ana = customer(app, zone="Asia/Tokyo")
    cancelled = make_send("s", "c1", "lifecycle", "2026-03-20T06:00:00Z", cancelled="journey_exit")
    assert app.policy.decide(cancelled, ana, clock.now(), TRANSPORTS).reason == "cancelled"
    # 06:00Z is 15:00 in Tokyo; the rule says 18:00-20:00.
    send = make_send("w", "c1", "lifecycle", "2026-03-20T06:00:00Z", rule={"window": "18:00-20:00"},
                     zone_name="Asia/Tokyo")  # fmt: skip
    decision = app.policy.decide(send, ana, clock.now(), TRANSPORTS)
    assert (decision.action, decision.reason) == ("defer", "window")
    assert decision.until.astimezone(zone("Asia/Tokyo")).isoformat() == "2026-03-20T18:00:00+09:00"


def test_stale_survey_is_dropped_not_sent_late(app, clock):
    ana = customer(app)
    old = make_send(
        "s", "c1", "survey", "2026-03-16T05:00:00Z", event_type="interaction.resolved"
    )  # 97 h ago
    decision = app.policy.decide(old, ana, clock.now(), TRANSPORTS)
    assert (decision.action, decision.reason) == ("suppress", "survey_stale")


# -- caps in the customer's local calendar --------------------------------------------------


def decide_at(app, clock, when: str, send_id: str, category="lifecycle", cid="c1", zone_name="UTC"):
    clock.set(at(when))
    send = make_send(send_id, cid, category, when, zone_name=zone_name)
    return app.policy.decide(send, app.customers.get(cid), clock.now(), TRANSPORTS)


def test_day_cap_counts_local_days_around_midnight_and_the_dst_change(app, clock):
    customer(app, zone="America/New_York")
    ny = "America/New_York"
    # Sat 2026-10-31 23:30 EDT and Sun 2026-11-01 00:30 EDT: two local days, both allowed.
    assert decide_at(app, clock, "2026-11-01T03:30:00Z", "a", zone_name=ny).reason == "ok"
    assert decide_at(app, clock, "2026-11-01T04:30:00Z", "b", zone_name=ny).reason == "ok"
    # Sunday 2026-11-01 lasts 25 hours in New York: 00:30 EDT and 23:30 EST are one local day.
    second = decide_at(app, clock, "2026-11-02T04:30:00Z", "c", zone_name=ny)
    assert (second.action, second.reason) == ("defer", "cap_day")
    # Deferred to the next local day; the lifecycle rule here has no window, so 00:00 EST.
    assert second.until.astimezone(zone(ny)).isoformat() == "2026-11-02T00:00:00-05:00"
    assert decide_at(app, clock, "2026-11-02T05:00:00Z", "c", zone_name=ny).reason == "ok"


def test_cap_deferral_skips_a_missing_midnight(app, clock):
    customer(app, zone="America/Santiago")
    santiago = "America/Santiago"
    assert decide_at(app, clock, "2026-09-05T18:00:00Z", "a", zone_name=santiago).reason == "ok"
    capped = decide_at(app, clock, "2026-09-05T19:00:00Z", "b", zone_name=santiago)
    # 2026-09-06 starts at 01:00 in Santiago (clocks jump from 00:00 to 01:00).
    assert capped.until.astimezone(zone(santiago)).isoformat() == "2026-09-06T01:00:00-03:00"


def test_week_cap_uses_local_iso_weeks(app, clock):
    customer(app, zone="Asia/Tokyo")
    tokyo = "Asia/Tokyo"
    days = ["2026-03-23T01:00:00Z", "2026-03-24T01:00:00Z", "2026-03-25T01:00:00Z"]  # Mon-Wed 10:00 JST
    for i, when in enumerate(days):
        assert decide_at(app, clock, when, f"s{i}", zone_name=tokyo).reason == "ok"
    capped = decide_at(app, clock, "2026-03-26T01:00:00Z", "s3", zone_name=tokyo)
    assert capped.reason == "cap_week"
    assert capped.until.astimezone(zone(tokyo)).isoformat() == "2026-03-30T00:00:00+09:00"
    # Sunday 23:30 JST is still that week; Monday 00:30 JST is the next.
    assert decide_at(app, clock, "2026-03-29T14:30:00Z", "s4", zone_name=tokyo).reason == "cap_week"
    assert decide_at(app, clock, "2026-03-29T15:30:00Z", "s5", zone_name=tokyo).reason == "ok"


def test_all_categories_cap_and_survey_cap_suppresses(app, clock):
    customer(app)
    assert decide_at(app, clock, "2026-03-20T09:00:00Z", "l1").reason == "ok"
    assert decide_at(app, clock, "2026-03-20T09:01:00Z", "m1", category="marketing").reason == "no_consent"
    app.set_consent("c1", category="marketing", allowed=True)
    assert decide_at(app, clock, "2026-03-20T09:02:00Z", "m2", category="marketing").reason == "ok"
    # Two capped messages today already: the all-categories cap (2/day) is reached.
    survey = decide_at(app, clock, "2026-03-20T09:03:00Z", "v1", category="survey")
    assert (survey.action, survey.reason) == ("suppress", "cap_day")  # surveys are dropped, not deferred
    assert "all capped categories" in survey.text


def test_a_retry_keeps_its_cap_slot(app, clock):
    customer(app)
    assert decide_at(app, clock, "2026-03-20T09:00:00Z", "same").reason == "ok"
    assert decide_at(app, clock, "2026-03-20T09:30:00Z", "same").reason == "ok"  # same send again
    assert decide_at(app, clock, "2026-03-20T10:00:00Z", "other").reason == "cap_day"


def test_a_slot_a_send_never_used_is_given_back(app, clock):
    customer(app)
    assert decide_at(app, clock, "2026-03-20T09:00:00Z", "failed").reason == "ok"
    assert decide_at(app, clock, "2026-03-20T10:00:00Z", "next").reason == "cap_day"
    # The first send ended without reaching a provider (a template error, a gate stop).
    first = make_send("failed", "c1", "lifecycle", "2026-03-20T09:00:00Z")
    assert app.policy.release_cap(first.id, "c1") is True
    assert app.policy.release_cap(first.id, "c1") is False  # given back once
    assert decide_at(app, clock, "2026-03-20T10:30:00Z", "next").reason == "ok"


def test_a_survey_that_never_went_out_gives_back_its_fatigue_lock(app, clock):
    customer(app)
    assert decide_at(app, clock, "2026-03-20T09:00:00Z", "v1", category="survey").reason == "ok"
    assert decide_at(app, clock, "2026-03-21T09:00:00Z", "v2", category="survey").reason == "survey_fatigue"
    app.policy.release_cap(make_send("v1", "c1", "survey", "2026-03-20T09:00:00Z").id, "c1")
    assert decide_at(app, clock, "2026-03-21T10:00:00Z", "v3", category="survey").reason == "ok"


def test_a_send_that_fails_before_its_provider_frees_its_slot(app, clock, tmp_path):
    """End to end: the decision takes the slot, a template error ends the send, the slot is free."""
    import shutil

    from outreach import Outreach

    from .conftest import make_settings
    from .helpers import deliver_due, ingest

    templates = tmp_path / "templates"
    shutil.copytree(STARTER / "templates", templates)
    (templates / "onboarding/welcome/subject.txt").write_text("{{ 1 // 0 }}")
    broken = Outreach(make_settings(tmp_path, templates_dir=templates), client=app.client, clock=clock)
    broken.upsert_customer({"id": "c9", "name": "Ana", "email": "ana@example.com", "zone": "UTC"})
    ingest(broken, "customer.signed_up", "c9", clock.now().isoformat(), id="su-9")
    clock.set(broken.schedule.next_due())
    assert [(o.state, o.reason) for o in deliver_due(broken)] == [("failed", "template_error")]
    counters = [k for k in broken.client.scan_iter(match=broken.settings.prefix + "*cap:c9:*")]
    assert counters and all(int(broken.client.get(k) or 0) == 0 for k in counters)


def test_two_workers_racing_for_the_last_slot(app, clock):
    winners = Counter()
    for round_ in range(30):
        cid = f"r{round_}"
        customer(app, cid)
        sends = [make_send(f"{cid}-{i}", cid, "lifecycle", "2026-03-20T09:00:00Z") for i in range(2)]
        clock.set(at("2026-03-20T09:00:00Z"))
        ana = app.customers.get(cid)
        barrier = threading.Barrier(2)
        results: list[str] = []

        def work(send, barrier=barrier, results=results, ana=ana):
            barrier.wait()
            results.append(app.policy.decide(send, ana, clock.now(), TRANSPORTS).reason)

        threads = [threading.Thread(target=work, args=(s,)) for s in sends]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["cap_day", "ok"], results
        winners[results[0]] += 1
    assert sum(winners.values()) == 30


def test_survey_fatigue(app, clock):
    customer(app, country="US")
    assert decide_at(app, clock, "2026-03-20T09:00:00Z", "v1", category="survey").reason == "ok"
    tired = decide_at(app, clock, "2026-03-27T09:00:00Z", "v2", category="survey")
    assert (tired.action, tired.reason) == ("suppress", "survey_fatigue")
    assert decide_at(app, clock, "2026-04-20T09:00:00Z", "v3", category="survey").reason == "ok"


# -- consent changes, through the pipeline ------------------------------------------------------


def test_consent_withdrawn_while_a_send_is_claimed(app, worker, customers, clock):
    planned = by_step(
        app, ingest(app, "customer.signed_up", "c-amelia", "2026-03-20T12:00:00Z", id="e").planned
    )
    clock.set(at("2026-03-20T12:00:01Z"))
    assert [o.state for o in deliver_due(app)] == ["delivered"]  # the welcome
    clock.set(at("2026-03-22T14:00:01Z"))  # day 2, 10:00 in New York: the tips are claimed ...
    claims = app.schedule.claim(10)
    assert [c.send_id for c in claims] == [planned["tips"]]
    # ... when the customer withdraws consent for lifecycle messages.
    app.set_consent("c-amelia", category="lifecycle", allowed=False, source="preference page")
    assert [o.reason for o in app.deliver(claims)] == ["no_consent"]
    app.drain(worker)  # the customer.unsubscribed event reaches the journeys
    assert app.schedule.get(planned["checkin"]).state == "cancelled"
    assert app.schedule.get(planned["nps"]).state == "scheduled"  # a survey, not a lifecycle message
    history = app.customers.consent_history("c-amelia")
    assert history[-1]["key"] == "lifecycle" and history[-1]["allowed"] is False
    assert history[-1]["source"] == "preference page" and history[-1]["at_ms"] == to_ms(clock.now())


def test_weeks_of_lifecycle_messages_respect_local_caps(tmp_path, client):
    clock = SimulatedClock(at("2026-03-23T00:00:00Z"))
    app = Outreach(make_settings(tmp_path), client=client, clock=clock)
    zones = {"c-tokyo": "Asia/Tokyo", "c-berlin": "Europe/Berlin", "c-ny": "America/New_York"}
    for cid, name in zones.items():
        app.upsert_customer({"id": cid, "name": cid, "email": f"{cid}@example.com", "zone": name})
    worker = app.worker(threads=2)
    timeline = []
    for day in range(6):
        for cid in zones:
            when = at("2026-03-23T12:00:00Z") + timedelta(days=day)
            timeline.append((when, lambda cid=cid, when=when, day=day: app.emit(
                "customer.signed_up", cid, id=f"{cid}-{day}", occurred_at=when)))  # fmt: skip
            timeline.append((when, lambda cid=cid, when=when, day=day: app.emit(
                "order.delayed", cid, {"order_id": f"O{day}", "new_eta": "2026-04-30"}, id=f"o-{cid}-{day}",
                occurred_at=when)))  # fmt: skip
    try:
        fast_forward(app, worker, at("2026-04-20T00:00:00Z"), timeline)
    finally:
        worker.stop()
    rows = outbox(app)
    lifecycle = [r for r in rows if r["journey"] == "onboarding"]
    per_day = Counter((r["customer_id"], r["local"][:10]) for r in lifecycle)
    per_week = Counter(
        (r["customer_id"], datetime.fromisoformat(r["local"]).isocalendar()[:2]) for r in lifecycle
    )
    assert max(per_day.values()) == 1
    assert max(per_week.values()) == 3
    # Delay notices are transactional: never capped, each out within the hour it became due.
    notices = [r for r in rows if r["journey"] == "order_delay"]
    assert len(notices) == 18
    # 18 sign-ups x 3 steps = 54 lifecycle sends, at most 3 per customer-week: not all fit in 4 weeks.
    assert 30 <= len(lifecycle) <= 54


# -- data rights ---------------------------------------------------------------------------


def test_export_has_everything(app, customers, clock):
    ingest(app, "customer.signed_up", "c-jonas", "2026-03-20T09:00:00Z", id="x")
    app.set_consent("c-jonas", channel="sms", allowed=False, source="support call")
    clock.set(at("2026-03-20T09:10:00Z"))
    deliver_due(app)
    data = app.export_customer("c-jonas")
    assert data["profile"]["id"] == "c-jonas"
    assert data["consent"]["channels"] == {"sms": False}
    assert data["consent"]["history"][-1]["source"] == "support call"
    assert {s["send"]["step"] for s in data["sends"]} == {"welcome", "tips", "checkin", "nps"}
    assert any(e["what"] == "delivered" for s in data["sends"] for e in s["history"])
    assert data["survey_answers"] == []
    json.dumps(data)


def test_erase_while_sends_are_in_flight(app, customers, clock):
    ingest(app, "customer.signed_up", "c-haruto", "2026-03-20T06:00:00Z", id="e1")
    ingest(app, "order.delayed", "c-haruto", "2026-03-20T06:00:00Z", id="e2",
           data={"order_id": "Z-1", "new_eta": "2026-03-24"})  # fmt: skip
    clock.set(at("2026-03-20T07:00:00Z"))  # 16:00 in Tokyo
    claims = app.schedule.claim(10)
    assert len(claims) == 2  # welcome and the delay notice, claimed by a worker ...
    summary = app.erase_customer("c-haruto")  # ... when the erasure comes
    assert summary["sends"] == 5  # onboarding x3, NPS, the delay notice
    assert [o.state for o in app.deliver(claims)] == ["missing", "missing"]
    clock.set(at("2026-04-30T00:00:00Z"))
    assert deliver_due(app) == []
    assert outbox(app) == []
    # Later events for the id are refused, not turned into a new profile.
    assert ingest(app, "order.delayed", "c-haruto", "2026-04-30T00:00:00Z", id="e3",
                  data={"order_id": "Z-2", "new_eta": "2026-05-04"}) is None  # fmt: skip
    assert app.customers.get("c-haruto") is None
    with pytest.raises(CustomerErased):
        app.upsert_customer(customers["c-haruto"])
    # Nothing left that names the customer: only the hashed tombstone.
    leftovers = [k for k in app.client.scan_iter(match=app.keys.prefix + "*") if b"c-haruto" in k]
    assert leftovers == []
    for key in app.client.scan_iter(match=app.keys.prefix + "*"):
        kind = app.client.type(key)
        if kind == b"string":
            assert b"c-haruto" not in app.client.get(key), key
        elif kind == b"hash":
            assert all(b"c-haruto" not in v for v in app.client.hgetall(key).values()), key
        elif kind == b"set":
            assert not any(b"c-haruto" in m for m in app.client.smembers(key)), key
        elif kind == b"zset":
            # Send ids name their customer: none may be left in any index.
            assert not any(b"c-haruto" in m for m in app.client.zrange(key, 0, -1)), key
        elif kind == b"list":
            assert all(b"c-haruto" not in v for v in app.client.lrange(key, 0, -1)), key
    # A deliberate new profile is possible.
    app.upsert_customer(customers["c-haruto"], restore=True)
    assert app.customers.get("c-haruto") is not None
