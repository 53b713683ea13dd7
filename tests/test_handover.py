"""The hand-over gate: a cancellation or an opt-out stops every send not yet at its provider.

A deliver batch is decided and rendered first, then handed over send by send. A
scripted transport plays the provider: each hand-over takes 100 ms of simulated
time, and a hook runs *during* a chosen hand-over — a cancellation, a consent
withdrawal, a do-not-contact entry or an erasure from "another process". The
promise checked here (docs/DELIVERY.md):

* a send whose stop answered ``cancelled`` never reaches the provider afterwards;
* a ``too_late`` answer names a hand-over the provider really received, at its time;
* retries count from the moment the error came back, never earlier than Retry-After.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from datetime import timedelta

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach import InputError, Outreach, SimulatedClock, TransientChannelError
from outreach.channels.base import Delivery
from outreach.clock import from_ms, to_ms
from outreach.schedule import FINAL_STATES, Intent, Send
from outreach.store.keys import send_id_for

from .conftest import STARTER, T0, make_settings
from .helpers import adhoc_journey, at, deliver_due

#: 15:00 in Tokyo at T0: inside every category's send window.
ZONE = "Asia/Tokyo"
#: Simulated time one hand-over takes at the provider.
LATENCY = timedelta(milliseconds=100)


class Provider:
    """Takes every message after LATENCY; ``hooks[n]`` runs during the n-th hand-over."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        #: (send id, channel, when the provider had it) per hand-over, in order.
        self.received: list[tuple[str, str, object]] = []
        self.hooks: dict[int, list[Callable[[], object]]] = {}
        #: Exceptions to raise instead of accepting, by hand-over number.
        self.errors: dict[int, Exception] = {}
        self.latency = LATENCY

    def during(self, n: int, hook: Callable[[], object]) -> None:
        self.hooks.setdefault(n, []).append(hook)

    def send(self, delivery: Delivery) -> str:
        n = len(self.received)
        self.received.append((delivery.send_id, delivery.channel, self.clock.now()))
        for hook in self.hooks.get(n, []):
            hook()
        self.clock.advance(self.latency)
        if n in self.errors:
            raise self.errors[n]
        return f"ref-{n}"

    def ids(self, after: int = 0) -> list[str]:
        return [send_id for send_id, _, _ in self.received[after:]]


def build(client, tmp_path, **overrides) -> tuple[Outreach, Provider, SimulatedClock]:
    clock = SimulatedClock(at(T0))
    provider = Provider(clock)
    # The shipped policy without frequency caps: a batch here holds several sends per customer.
    config = tmp_path / f"config-{uuid.uuid4().hex[:6]}"
    shutil.copytree(STARTER / "config", config)
    policy = (config / "policy.toml").read_text()
    (config / "policy.toml").write_text(re.sub(r"(?ms)^\[caps\].*?(?=^\[survey\])", "", policy))
    app = Outreach(
        make_settings(tmp_path, config_dir=config, **overrides),
        client=client,
        clock=clock,
        transports={"email": provider, "sms": provider},
    )
    return app, provider, clock


def customer(app: Outreach, n: int, **extra) -> str:
    customer_id = f"c{n}"
    app.upsert_customer(
        {"id": customer_id, "name": f"Kim {n}", "email": f"kim{n}@example.com", "phone": f"+8190000{n:04d}",
         "locale": "en_US", "zone": ZONE, "country": "JP", **extra}
    )  # fmt: skip
    return customer_id


def plan(app: Outreach, label: str, customer_id: str, category: str = "lifecycle",
         channels: str = '["email"]') -> str:  # fmt: skip
    intent = Intent(
        journey="j", step="s", category=category, template="order_delay/notice", channels=channels,
        rule="{}", survey="", event_type="order.delayed", zone=ZONE, country="JP",
    )  # fmt: skip
    adhoc_journey(app)
    send_id = send_id_for(label, "j", "s", customer_id)
    due = app.clock.now()
    data = {"order_id": label, "new_eta": "2026-03-25"}
    assert app.schedule.plan(send_id, due, intent, event_id=label, start=due, data=data)
    return send_id


def state(app: Outreach, send_id: str) -> Send:
    send = app.schedule.get(send_id)
    assert send is not None
    return send


def deliver_one_batch(app: Outreach) -> list:
    """Claim every due send and deliver them as one batch (one deliver message)."""
    claims = app.schedule.claim(1000)
    return app.deliver(claims)


def claim_batch(app: Outreach) -> tuple[list, list[str]]:
    """Claim every due send as one batch; the claims and their send ids, in hand-over order."""
    claims = app.schedule.claim(1000)
    return claims, [c.send_id for c in claims]


def owner(send_id: str) -> str:
    return send_id.split(".", 1)[1]


# -- cancellations ---------------------------------------------------------------------------


def test_a_send_cancelled_while_its_batch_is_handed_over_never_reaches_the_provider(client, tmp_path):
    app, provider, _ = build(client, tmp_path)
    for i in range(4):
        plan(app, f"e{i}", customer(app, i))
    claims, sends = claim_batch(app)
    stops = {}
    # While the first message is with the provider, the third is cancelled.
    provider.during(0, lambda: stops.setdefault("third", app.schedule.cancel(sends[2], "journey_exit", "x")))
    outcomes = {o.send_id: o.state for o in app.deliver(claims)}

    assert stops["third"].outcome == "cancelled" and stops["third"].state == "sending"
    assert sends[2] not in provider.ids()
    assert provider.ids() == [sends[0], sends[1], sends[3]]
    assert outcomes[sends[2]] == "cancelled"
    assert state(app, sends[2]).state == "cancelled"
    assert app.schedule.inflight() == [] and app.schedule.due_between(None, None) == []


def test_a_cancel_during_the_hand_over_says_too_late_with_the_hand_over_time(client, tmp_path):
    app, provider, _ = build(client, tmp_path)
    for i in range(3):
        plan(app, f"e{i}", customer(app, i))
    claims, sends = claim_batch(app)
    stops = {}
    provider.during(1, lambda: stops.setdefault("second", app.schedule.cancel(sends[1], "journey_exit", "x")))
    app.deliver(claims)

    stop = stops["second"]
    _, _, received_at = provider.received[1]
    assert (stop.outcome, stop.state, stop.handed_at) == ("too_late", "sending", received_at)
    send = state(app, sends[1])
    assert send.state == "delivered"
    history = app.schedule.history(sends[1])
    delivered = next(e for e in history if e["what"] == "delivered")
    # The history shows the real times: handed over at the gate, answered after the provider's latency.
    assert delivered["handed_ms"] == to_ms(received_at)
    assert delivered["at_ms"] == to_ms(received_at + LATENCY)
    assert [e["what"] for e in history].count("cancel_too_late") == 1


def test_a_too_late_cancel_still_stops_the_retry(client, tmp_path):
    app, provider, clock = build(client, tmp_path)
    [send_id] = [plan(app, "e0", customer(app, 0))]
    stops = []
    provider.during(0, lambda: stops.append(app.schedule.cancel(send_id, "journey_exit", "x")))
    provider.errors[0] = TransientChannelError("HTTP 503", retry_after=1)
    [outcome] = deliver_one_batch(app)

    assert stops[0].outcome == "too_late"
    assert outcome.state == "retry_scheduled"
    assert state(app, send_id).state == "cancelled"
    clock.advance(timedelta(hours=1))
    assert deliver_due(app) == []
    assert provider.ids() == [send_id]
    # Once the failed hand-over has its answer, a cancel is in time again: nothing is handing.
    assert app.schedule.cancel(send_id, "journey_exit", "again").outcome == "final"


def test_a_cancel_after_a_failed_hand_over_is_in_time(client, tmp_path):
    app, provider, clock = build(client, tmp_path)
    send_id = plan(app, "e0", customer(app, 0))
    provider.errors[0] = TransientChannelError("HTTP 503")
    assert [o.state for o in deliver_one_batch(app)] == ["retry_scheduled"]
    stop = app.schedule.cancel(send_id, "journey_exit", "x")
    assert stop.outcome == "cancelled" and stop.handed_at == provider.received[0][2]
    clock.advance(timedelta(hours=1))
    assert deliver_due(app) == []
    assert provider.ids() == [send_id]


# -- opt-outs -------------------------------------------------------------------------------


def test_a_consent_withdrawal_mid_batch_stops_the_customers_remaining_sends(client, tmp_path):
    app, provider, _ = build(client, tmp_path)
    ana, ben = customer(app, 1), customer(app, 2)
    for i in range(6):
        plan(app, f"e{i}", ana if i % 2 else ben)
    claims, sends = claim_batch(app)
    anas = [s for s in sends if owner(s) == ana]
    first = sends.index(anas[0])
    report = []
    # During the hand-over of Ana's first send, Ana withdraws lifecycle consent.
    provider.during(first, lambda: report.append(app.set_consent(ana, category="lifecycle", allowed=False)))
    outcomes = {o.send_id: o for o in app.deliver(claims)}

    [change] = report
    verdicts = {stop.send_id: stop for stop in change.stops}
    assert set(verdicts) == set(anas)
    assert verdicts[anas[0]].outcome == "too_late"
    assert verdicts[anas[0]].handed_at == provider.received[first][2]
    assert {verdicts[s].outcome for s in anas[1:]} == {"cancelled"}
    assert provider.ids() == [s for s in sends if s not in anas[1:]]
    for s in anas[1:]:
        assert outcomes[s].state == "suppressed" and outcomes[s].reason == "no_consent"
        assert state(app, s).reason == "no_consent"


def test_do_not_contact_and_erasure_mid_batch_stop_what_is_left(client, tmp_path):
    app, provider, _ = build(client, tmp_path)
    ana, ben, cem = customer(app, 1), customer(app, 2), customer(app, 3)
    first = plan(app, "e0", cem)
    ana_send = plan(app, "e1", ana, category="transactional")
    ben_send = plan(app, "e2", ben)
    stops = []

    def hook() -> None:
        stops.extend(app.set_do_not_contact(ana))
        app.erase_customer(ben)

    claims, _ = claim_batch(app)
    # Cem's send goes first; the others wait in the same batch.
    claims.sort(key=lambda c: c.send_id != first)
    provider.during(0, hook)
    outcomes = {o.send_id: o for o in app.deliver(claims)}
    assert provider.ids() == [first]
    assert [(s.send_id, s.outcome) for s in stops] == [(ana_send, "cancelled")]
    assert (outcomes[ana_send].state, outcomes[ana_send].reason) == ("suppressed", "do_not_contact")
    assert outcomes[ben_send].state in ("missing", "suppressed")
    assert app.client.exists(app.keys.send(ben_send)) == 0


def test_a_channel_opt_out_mid_batch_falls_through_to_the_next_channel(client, tmp_path):
    app, provider, _ = build(client, tmp_path)
    ana, ben = customer(app, 1), customer(app, 2)
    first = plan(app, "e0", ben)
    second = plan(app, "e1", ana, channels='["email", "sms"]')
    claims, _ = claim_batch(app)
    claims.sort(key=lambda c: c.send_id != first)
    provider.during(0, lambda: app.set_consent(ana, channel="email", allowed=False))
    outcomes = {o.send_id: o for o in app.deliver(claims)}
    assert outcomes[second].state == "delivered" and outcomes[second].reason == "sms"
    assert [(s, c) for s, c, _ in provider.received] == [(first, "email"), (second, "sms")]
    notes = [e["text"] for e in app.schedule.history(second) if e["what"] == "fallthrough"]
    assert notes == ["email: the customer opted out of this channel (found at the hand-over)"]


def test_an_address_suppressed_mid_batch_is_not_used(client, tmp_path):
    app, provider, _ = build(client, tmp_path)
    ana, ben = customer(app, 1), customer(app, 2)
    first = plan(app, "e0", ben)
    second = plan(app, "e1", ana)
    claims, _ = claim_batch(app)
    claims.sort(key=lambda c: c.send_id != first)
    provider.during(0, lambda: app.policy.suppress_address("email", "KIM1@example.com"))
    outcomes = {o.send_id: o for o in app.deliver(claims)}
    assert provider.ids() == [first]
    assert (outcomes[second].state, outcomes[second].reason) == ("suppressed", "no_usable_channel")
    assert app.schedule.cancel(second, "journey_exit", "x").outcome == "final"


# -- retries count from the failure ------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [0.001, 2, 7.5, 300])
def test_retry_after_counts_from_the_failure_to_the_millisecond(client, tmp_path, retry_after):
    # Backoff below every Retry-After here, so the provider's word decides.
    app, provider, clock = build(client, tmp_path, retry_base_seconds=0, retry_max_seconds=0)
    sends = [plan(app, f"e{i}", customer(app, i)) for i in range(3)]
    provider.errors[2] = TransientChannelError("HTTP 429", retry_after=retry_after)
    deliver_one_batch(app)
    failed_send, _, received = provider.received[2]
    failed_at = received + LATENCY
    # The batch was decided 200 ms before the third hand-over even began.
    assert failed_at - at(T0) == 3 * LATENCY
    due = app.schedule.due_of(failed_send)
    assert to_ms(due) == -(-round((failed_at.timestamp() + retry_after) * 1_000_000) // 1000)
    retry = next(e for e in app.schedule.history(failed_send) if e["what"] == "retry_scheduled")
    assert retry["at_ms"] == to_ms(failed_at) and retry["handed_ms"] == to_ms(received)

    clock.set(due - timedelta(milliseconds=1))
    assert deliver_due(app) == []
    clock.set(due)
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert provider.ids(3) == [failed_send] and sends[2] == failed_send


@given(latency_ms=st.integers(0, 20_000), attempts=st.integers(1, 4))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_backoff_never_starts_before_the_failure(tmp_path, latency_ms, attempts):
    app, provider, _ = build(fakeredis.FakeRedis(server=fakeredis.FakeServer()), tmp_path, max_attempts=10)
    send_id = plan(app, "e0", customer(app, 0))
    provider.latency = timedelta(milliseconds=latency_ms)
    provider.errors[0] = TransientChannelError("HTTP 500")
    claims = app.schedule.claim(10)
    # This is attempt number `attempts` (begin.lua counts it).
    app.client.hset(app.keys.send(send_id), "attempts", attempts - 1)
    app.deliver(claims)
    failed_at = at(T0) + provider.latency
    backoff = timedelta(
        seconds=min(app.settings.retry_base_seconds * 2 ** (attempts - 1), app.settings.retry_max_seconds)
    )
    due = app.schedule.due_of(send_id)
    assert due is not None
    assert failed_at + backoff / 2 <= due <= failed_at + backoff + timedelta(milliseconds=1)


# -- the property: any stop at any point of a batch ------------------------------------------

ACTIONS = st.sampled_from(["cancel", "consent", "dnc", "erase", "channel"])


@given(
    count=st.integers(2, 9),
    owners=st.lists(st.integers(0, 3), min_size=9, max_size=9),
    categories=st.lists(st.sampled_from(["lifecycle", "transactional", "marketing"]), min_size=9, max_size=9),
    moves=st.lists(st.tuples(st.integers(0, 8), ACTIONS, st.integers(0, 8)), min_size=1, max_size=4),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_stops_a_send_mid_batch_the_answers_tell_the_truth(
    tmp_path, count, owners, categories, moves
):
    app, provider, _ = build(fakeredis.FakeRedis(server=fakeredis.FakeServer()), tmp_path)
    people = [customer(app, n, consent={"marketing": True}) for n in range(4)]
    sends = [
        plan(app, f"e{i}", people[owners[i]], category=categories[i], channels='["email", "sms"]')
        for i in range(count)
    ]
    #: (hand-over index during which it happened, send id, outcome, handed_at)
    answers: list[tuple[int, str, str, object]] = []
    #: Customers stopped by consent, do-not-contact or erasure, with the hand-over index.
    stopped: list[tuple[int, str, str]] = []

    def act(index: int, action: str, target: int) -> None:
        send_id = sends[target % count]
        who = people[owners[target % count]]
        if action != "cancel" and app.customers.get(who) is None:
            return  # erased earlier in this batch: nothing left to change
        if action == "cancel":
            stop = app.schedule.cancel(send_id, "journey_exit", "test")
            answers.append((index, send_id, stop.outcome, stop.handed_at))
        elif action == "consent" and categories[target % count] == "transactional":
            # What the customer must be told has no consent to withdraw: refused, nothing stops.
            with pytest.raises(InputError, match="opt out"):
                app.set_consent(who, category="transactional", allowed=False)
        elif action == "consent":
            change = app.set_consent(who, category=categories[target % count], allowed=False)
            answers.extend((index, s.send_id, s.outcome, s.handed_at) for s in change.stops)
            stopped.append((index, who, categories[target % count]))
        elif action == "dnc":
            answers.extend((index, s.send_id, s.outcome, s.handed_at) for s in app.set_do_not_contact(who))
            stopped.append((index, who, "*"))
        elif action == "erase":
            app.erase_customer(who)
            stopped.append((index, who, "*"))
        else:
            app.set_consent(who, channel="email", allowed=False)
            stopped.append((index, who, "email"))

    for index, action, target in moves:
        provider.during(index % count, lambda i=index % count, a=action, t=target: act(i, a, t))
    deliver_one_batch(app)

    received = provider.received
    for index, send_id, outcome, handed_at in answers:
        later = [s for s, _, _ in received[index + 1 :]]
        if outcome == "cancelled":
            assert send_id not in later, (send_id, index, received)
        elif outcome == "too_late":
            earlier = [(s, when) for s, _, when in received[: index + 1] if s == send_id]
            assert (send_id, handed_at) in earlier
    for index, who, what in stopped:
        for send_id, channel, _ in received[index + 1 :]:
            send_owner = people[owners[sends.index(send_id)]]
            category = categories[sends.index(send_id)]
            if send_owner != who:
                continue
            assert what not in ("*", category, channel), (who, what, send_id, channel)
    for send_id in sends:
        send = app.schedule.get(send_id)
        assert send is None or send.state in FINAL_STATES
    assert app.schedule.inflight() == []
    assert all(from_ms(to_ms(when)) == when for _, _, when in received)


# -- consent changes never lost to a concurrent write -------------------------------------------


def test_concurrent_profile_syncs_and_consent_changes_lose_no_opt_out(client, tmp_path):
    import threading

    app, _, _ = build(client, tmp_path)
    who = customer(app, 1)
    profile = {"id": who, "name": "Kim", "email": "kim1@example.com", "zone": ZONE}
    last: dict[str, bool] = {}
    errors: list[BaseException] = []

    def consent_changes(categories: tuple[str, ...]) -> None:
        try:
            for i in range(60):
                category = categories[i % len(categories)]
                allowed = i % 3 == 0
                app.set_consent(who, category=category, allowed=allowed)
                last[category] = allowed
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def profile_syncs() -> None:
        try:
            for i in range(120):
                app.upsert_customer({**profile, "name": f"Kim {i}"}, keep=("consent", "channel_consent"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=consent_changes, args=(("lifecycle", "survey"),)),
        threading.Thread(target=consent_changes, args=(("marketing",),)),
        threading.Thread(target=profile_syncs),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    stored = app.customers.get(who)
    assert stored is not None and stored.name == "Kim 119"
    assert stored.consent == last


def test_a_consent_change_reads_as_the_stored_profile(client, tmp_path):
    app, _, _ = build(client, tmp_path)
    who = customer(app, 1)
    change = app.set_consent(who, category="marketing", allowed=True)
    assert change.consent == {"marketing": True} and change.id == who
    assert change.customer == app.customers.get(who) and change.stops == []


# -- hand-overs that outlive their lease ---------------------------------------------------------


def _gate(app: Outreach, send_id: str, token: str):
    from outreach.schedule import HandOver
    from outreach.store.scripts import Batch

    request = HandOver(send_id, token, "lifecycle", "email", "kim0@example.com", True)
    return app.schedule.hand_over([request], Batch())


def test_a_cancel_after_the_lease_of_a_hand_over_was_reaped_ends_the_send(client, tmp_path):
    app, _, clock = build(client, tmp_path, lease_seconds=30)
    send_id = plan(app, "e0", customer(app, 0))
    [claim] = app.schedule.claim(10)
    assert app.schedule.begin([claim]) == ["go"]
    handed, statuses = _gate(app, send_id, claim.token)
    assert statuses == ["go"]
    # The worker dies in its hand-over; the reaper returns the send to the schedule.
    clock.advance(timedelta(seconds=31))
    assert app.schedule.reap(100) == [send_id]
    stop = app.schedule.cancel(send_id, "journey_exit", "x")
    # That hand-over may have reached the provider: too late; but nothing more goes out.
    assert (stop.outcome, stop.handed_at) == ("too_late", handed)
    assert state(app, send_id).state == "cancelled"
    assert app.schedule.due_of(send_id) is None and app.schedule.inflight() == []
    assert app.schedule.open_sends(owner(send_id)) == []
    assert app.schedule.claim(10) == []


def test_another_attempts_outcome_leaves_a_slow_hand_over_marked(client, tmp_path):
    app, _, clock = build(client, tmp_path, lease_seconds=30)
    send_id = plan(app, "e0", customer(app, 0))
    [first] = app.schedule.claim(10)
    app.schedule.begin([first])
    handed, _ = _gate(app, send_id, first.token)
    # The first worker is slow at the provider; its lease runs out and a second worker
    # takes the send over and defers it (say, a cap) without handing it over.
    clock.advance(timedelta(seconds=31))
    app.schedule.reap(100)
    [second] = app.schedule.claim(10)
    assert app.schedule.begin([second]) == ["go"]
    later = clock.now() + timedelta(hours=1)
    app.schedule.finish(send_id, "deferred", "{}", due=later, token=second.token)
    # The first hand-over is still under way: a cancel now is too late for it...
    stop = app.schedule.cancel(send_id, "journey_exit", "x")
    assert (stop.outcome, stop.handed_at) == ("too_late", handed)
    # ... and when it is answered, the delivery is recorded, because it happened.
    app.schedule.finish(send_id, "delivered", "{}", token=first.token)
    assert state(app, send_id).state == "delivered"


def test_a_send_found_suppressed_at_the_gate_is_not_reported_as_handed_over(client, tmp_path):
    app, provider, _ = build(client, tmp_path)
    ana, ben, cem = customer(app, 1), customer(app, 2), customer(app, 3)
    first = plan(app, "e0", ben)
    second = plan(app, "e1", ana, channels='["email", "sms"]')
    third = plan(app, "e2", cem)
    claims, _ = claim_batch(app)
    order = {first: 0, second: 1, third: 2}
    claims.sort(key=lambda c: order[c.send_id])
    stops = []
    # During the first hand-over Ana's email address is suppressed: her send's gate marks
    # it, finds the address suppressed in the same round trip and takes the mark back.
    provider.during(0, lambda: app.policy.suppress_address("email", "kim1@example.com"))
    # During the next hand-over (Cem's), Ana's send waits for its next channel: in time.
    provider.during(1, lambda: stops.append(app.schedule.cancel(second, "journey_exit", "x")))
    outcomes = {o.send_id: o for o in app.deliver(claims)}
    assert [(s.outcome, s.handed_at) for s in stops] == [("cancelled", None)]
    assert provider.ids() == [first, third]
    assert outcomes[second].state == "cancelled"
