"""Journey throttles: at most N messages of a journey to one customer per period, the overflow
dropped or listed in the journey's next digest (docs/JOURNEYS.md, "Throttle")."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from outreach import ConfigError
from outreach.journeys.config import load_journeys
from outreach.policy.throttles import Throttles

from .helpers import deliver_due, ingest, outbox
from .kinds_project import kinds_app, project

NOTICES = """
[journey]
name = "notices"
category = "transactional"
trigger = "order.delayed"

[journey.throttle]
max = 2
days = 1

[[journey.steps]]
name = "notice"
template = "order_delay/notice"
window = ""
"""

MERGED = (
    NOTICES.replace("days = 1", 'days = 1\noverflow = "digest"')
    + """
[[journey.steps]]
name = "later"
template = "order_digest/list"
digest = true
days = 1
at = "18:00"
"""
)


def delayed(app, clock, n: int):
    data = {"order_id": f"A-{n}", "new_eta": "2026-03-26"}
    return ingest(app, "order.delayed", "c1", clock.now().isoformat(), data=data, id=f"e{n}")


def make(tmp_path, client, clock, journey=NOTICES):
    app = kinds_app(tmp_path, client, clock, {"notices": journey})
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin"})
    return app


def test_the_third_message_in_a_day_is_dropped_and_says_why(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    sends = [delayed(app, clock, n).planned[0] for n in range(3)]
    deliver_due(app)
    states = [(app.records.get(s).state, app.records.get(s).reason) for s in sends]
    assert sorted(states).count(("delivered", "")) + sorted(states).count(("delivered", "ok")) == 2
    dropped = [s for s in sends if app.records.get(s).state == "suppressed"]
    assert len(dropped) == 1 and app.records.get(dropped[0]).reason == "throttled"
    assert "at most 2 in 1 days per customer reached" in app.records.history(dropped[0])[-1]["text"]
    # A day later the period has room again.
    clock.advance(timedelta(days=1, minutes=1))
    later = delayed(app, clock, 9).planned[0]
    deliver_due(app)
    assert app.records.get(later).state == "delivered"


def test_a_send_that_does_not_reach_a_provider_gives_its_slot_back(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    throttles = Throttles(app.client, app.keys)
    assert throttles.take("c1", "notices", "x", 1, timedelta(days=1), clock.now()) is None
    assert throttles.take("c1", "notices", "x", 1, timedelta(days=1), clock.now()) is None  # held already
    assert throttles.take("c1", "notices", "y", 1, timedelta(days=1), clock.now()) is not None
    throttles.release("c1", "notices", "x")
    assert throttles.take("c1", "notices", "y", 1, timedelta(days=1), clock.now()) is None


def test_the_overflow_is_listed_in_the_next_digest(tmp_path, client, clock):
    app = make(tmp_path, client, clock, MERGED)
    for n in range(4):
        delayed(app, clock, n)
    deliver_due(app)
    clock.advance(timedelta(days=1, hours=14))
    deliver_due(app)
    rows = outbox(app)
    notices = [r for r in rows if r["step"] == "notice"]
    digests = [r for r in rows if r["step"] == "later"]
    assert len(notices) == 2
    assert len(digests) == 1 and "2 in all" in digests[0]["body"]


def test_two_workers_never_take_the_last_slot_both(tmp_path, client, clock):
    app = make(tmp_path, client, clock)
    throttles = Throttles(app.client, app.keys)
    won: list[str] = []
    barrier = threading.Barrier(8)

    def take(n: int) -> None:
        barrier.wait()
        if throttles.take("c1", "notices", f"s{n}", 3, timedelta(hours=1), clock.now()) is None:
            won.append(f"s{n}")

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 3


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("max = 0\ndays = 1", "throttle.max=0"),
        ("max = 2", "in days or in hours"),
        ("max = 2\ndays = 1\nhours = 3", "in days or in hours"),
        ('max = 2\ndays = 1\noverflow = "queue"', "throttle.overflow='queue'"),
        ('max = 2\ndays = 1\noverflow = "digest"', "no digest step"),
        ("max = 2\nweeks = 1", "unknown field"),
    ],
)
def test_a_throttle_is_checked(tmp_path, table, problem):
    config, templates = project(tmp_path, {"notices": NOTICES.replace("max = 2\ndays = 1", table)})
    with pytest.raises(ConfigError, match=problem):
        load_journeys(config, templates)


def test_a_slot_held_by_a_send_cancelled_while_it_waited_for_a_retry_is_freed(tmp_path, client, clock):
    from outreach.errors import TransientChannelError

    one = NOTICES.replace("max = 2", "max = 1").replace(
        'trigger = "order.delayed"', 'trigger = "order.delayed"\nexit_on = ["customer.activated"]'
    )
    app = make(tmp_path, client, clock, one)
    transport = app.deliverer.transports["email"]
    real = transport.send_many
    transport.send_many = lambda messages: [TransientChannelError("HTTP 503") for _ in messages]
    [first] = delayed(app, clock, 0).planned
    deliver_due(app)
    assert app.records.get(first).state == "retry_scheduled"
    ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="exit")
    assert app.records.get(first).state == "cancelled"
    transport.send_many = real
    clock.advance(timedelta(hours=1))
    [second] = delayed(app, clock, 1).planned
    deliver_due(app)
    assert app.records.get(second).state == "delivered"


def test_the_overflow_digest_counts_its_window_from_when_the_throttle_held_back(tmp_path, client, clock):
    journey = (
        NOTICES.replace("max = 2", "max = 1")
        .replace("days = 1", 'days = 1\noverflow = "digest"')
        .replace('window = ""', 'window = ""\ndelay_hours = 6')
        + '\n[[journey.steps]]\nname = "later"\ntemplate = "order_digest/list"\ndigest = true\n'
        + 'delay_hours = 4\nwindow = ""\n'
    )
    app = make(tmp_path, client, clock, journey)
    for n in range(4):  # a delayed order an hour; each notice is due six hours later
        delayed(app, clock, n)
        clock.advance(timedelta(hours=1))
    for _ in range(12):
        deliver_due(app)
        clock.advance(timedelta(hours=1))
    rows = outbox(app)
    assert [r["step"] for r in rows] == ["notice", "later"]
    assert "3 in all" in rows[1]["body"]


# -- a category's throttle: its journeys together ---------------------------------------------------

SIGNUP = """
[journey]
name = "welcome"
category = "lifecycle"
trigger = "customer.signed_up"

[[journey.steps]]
name = "hello"
template = "onboarding/welcome"
window = ""
"""
TIPS = (
    SIGNUP.replace('name = "welcome"', 'name = "tips"')
    .replace('name = "hello"', 'name = "tip"')
    .replace("onboarding/welcome", "onboarding/tips")
)


def with_category_throttle(tmp_path, client, clock, table: str):
    from outreach import Outreach

    from .conftest import make_settings
    from .kinds_project import project

    config, templates = project(tmp_path, {"welcome": SIGNUP, "tips": TIPS})
    categories = config / "categories.toml"
    categories.write_text(
        categories.read_text().replace("[lifecycle]", f"[lifecycle]\nthrottle = {table}", 1)
    )
    policy = (config / "policy.toml").read_text()  # the daily caps would hold the second first
    (config / "policy.toml").write_text(policy[: policy.index("[caps]")] + policy[policy.index("[survey]") :])
    app = Outreach(
        make_settings(tmp_path, config_dir=config, templates_dir=templates), client=client, clock=clock
    )
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Berlin"})
    return app


def test_a_category_throttle_holds_its_journeys_together(tmp_path, client, clock):
    app = with_category_throttle(tmp_path, client, clock, "{ max = 1, days = 1 }")
    assert app.journeys["welcome"].category_throttle.max == 1
    sent = ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su").planned
    clock.advance(timedelta(hours=1))
    deliver_due(app)
    states = sorted((app.records.get(s).state.value, app.records.get(s).reason) for s in sent)
    assert states == [("delivered", ""), ("suppressed", "throttled")]
    held = next(s for s in sent if app.records.get(s).state == "suppressed")
    assert (
        "category lifecycle: at most 1 in 1 days per customer reached"
        in app.records.history(held)[-1]["text"]
    )
    assert len(outbox(app)) == 1


def test_a_category_throttle_drops_its_overflow(tmp_path):
    from .kinds_project import project

    config, templates = project(tmp_path, {"welcome": SIGNUP})
    categories = config / "categories.toml"
    table = '{ max = 1, days = 1, overflow = "digest" }'
    categories.write_text(
        categories.read_text().replace("[lifecycle]", f"[lifecycle]\nthrottle = {table}", 1)
    )
    with pytest.raises(ConfigError, match="a category's overflow is dropped"):
        load_journeys(config, templates)
