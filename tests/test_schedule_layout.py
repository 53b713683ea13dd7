"""The schedule's layout: compact planned sends, their own hash once claimed, ids that name the shard."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outreach import ConfigError, Outreach, OutreachError
from outreach.clock import to_ms
from outreach.errors import InputError
from outreach.journeys.config import load_journeys
from outreach.schedule import Intent
from outreach.store import scripts
from outreach.store.keys import Keys, send_id_for, split_send_id
from outreach.timing import resolve

from .conftest import CUSTOMERS, STARTER, make_settings
from .helpers import at, by_step, deliver_due, ingest, plan_send


def keys_naming(app, text: str) -> list[bytes]:
    return sorted(k for k in app.client.scan_iter(match=app.keys.prefix + "*") if text.encode() in k)


def test_a_planned_send_has_no_keys_of_its_own(app, customers, clock):
    result = ingest(app, "customer.signed_up", "c-amelia", "2026-03-20T06:00:00Z", id="e1")
    assert len(result.planned) == 4  # onboarding x3 and the NPS four weeks on
    # Only the customer's profile and their one plan hash name them; no per-send keys.
    assert keys_naming(app, "c-amelia") == sorted(
        [app.keys.customer("c-amelia").encode(), app.keys.planned("c-amelia").encode()]
    )
    plan = app.client.hgetall(app.keys.planned("c-amelia"))
    # Four sends, and their event's times and id once (signed_up has no data).
    assert len(plan) == 5
    assert all(len(value) <= 64 for value in plan.values())  # small enough for a listpack
    shard = app.keys.shard_of("c-amelia")
    assert set(result.planned) == {m.decode() for m in app.client.zrange(app.keys.due(shard), 0, -1)}


def test_claim_gives_the_send_its_own_hash_and_the_event_leaves_with_its_last_send(app, customers, clock):
    result = ingest(app, "order.delayed", "c-jonas", "2026-03-20T06:00:00Z", id="o1",
                    data={"order_id": "A-1", "new_eta": "2026-03-24"})  # fmt: skip
    [send_id] = result.planned
    before = app.schedule.get(send_id)
    assert before.state == "scheduled" and dict(before.data) == {
        "order_id": "A-1",
        "new_eta": "2026-03-24",
    }
    [claim] = app.schedule.claim(10)
    assert claim.send_id == send_id
    after = app.schedule.get(send_id)
    assert after.state == "claimed" and after.token == claim.token
    # The same send read in either form: only the state and the claim differ.
    assert {k: v for k, v in after.as_stored().items() if k not in ("state", "token")} == {
        k: v for k, v in before.as_stored().items() if k != "state"
    }
    typed = ("intent", "event_id", "start", "created", "data", "due", "resolved", "attempts")
    assert [getattr(after, name) for name in typed] == [getattr(before, name) for name in typed]
    assert not app.client.exists(app.keys.planned("c-jonas"))  # its only send left: the hash is gone


def test_a_multi_step_event_keeps_its_shared_fields_until_its_last_send_is_claimed(app, customers, clock):
    steps = by_step(
        app, ingest(app, "customer.signed_up", "c-haruto", "2026-03-20T06:00:00Z", id="e1").planned
    )
    plan = app.keys.planned("c-haruto")
    clock.set(at("2026-03-20T07:00:00Z"))  # the welcome is due
    assert [c.send_id for c in app.schedule.claim(10)] == [steps["welcome"]]
    assert len(app.client.hgetall(plan)) == 4  # tips, check-in, NPS and the event
    for name in ("tips", "checkin", "nps"):
        assert app.schedule.get(steps[name]).event_id == "e1"


def test_history_starts_with_how_the_send_was_planned(app, customers, clock):
    [send_id] = ingest(app, "order.delayed", "c-jonas", "2026-03-20T06:00:00Z", id="o1",
                       data={"order_id": "A-1", "new_eta": "2026-03-24"}).planned  # fmt: skip
    send = app.schedule.get(send_id)
    [planned] = app.schedule.history(send_id)
    expected = resolve(send.intent.send_rule(), at("2026-03-20T06:00:00Z"), "Europe/Berlin")
    assert planned["what"] == "planned" and planned["at_ms"] == to_ms(send.created)
    assert planned["resolution"] == expected.to_mapping()
    assert "order_delay.notice planned for" in planned["text"] and "(Europe/Berlin)" in planned["text"]
    deliver_due(app)
    assert [e["what"] for e in app.schedule.history(send_id)] == ["planned", "delivered"]


def test_cancelling_a_planned_send_records_the_cancellation(app, customers, clock):
    steps = by_step(
        app, ingest(app, "customer.signed_up", "c-amelia", "2026-03-20T06:00:00Z", id="e1").planned
    )
    stop = app.schedule.cancel(steps["tips"], "journey_exit", "test")
    assert (stop.outcome, stop.state, stop.handed_at) == ("cancelled", "scheduled", None)
    send = app.schedule.get(steps["tips"])
    assert send.state == "cancelled" and send.cancelled == "journey_exit"
    assert app.schedule.due_of(steps["tips"]) is None
    assert [e["what"] for e in app.schedule.history(steps["tips"])] == ["planned", "cancelled"]
    assert app.stats()["sends:cancelled:journey_exit"] == 1
    again = app.schedule.cancel(steps["tips"], "journey_exit", "again")
    assert (again.outcome, again.state) == ("final", "cancelled")


def test_a_send_planned_again_is_a_no_op_in_either_form(app, customers, clock):
    due = at("2026-03-20T05:00:00Z")
    send_id = plan_send(app, "e1", due)
    intent = app.schedule.get(send_id).intent
    again = dict(event_id="e1", start=due, data={})
    assert app.schedule.plan(send_id, due, intent, **again) is False
    app.schedule.claim(10)
    assert app.schedule.plan(send_id, due, intent, **again) is False
    assert app.schedule.due_of(send_id) is None  # still claimed, not planned anew


def test_an_intent_is_kept_once_and_a_different_one_under_its_ref_is_refused(app, clock):
    fields = dict(journey="j", step="s", category="lifecycle", template="t", channels='["email"]', rule="{}",
                  survey="", event_type="order.delayed", zone="UTC", country="")  # fmt: skip
    intent = Intent(**fields)
    ref = app.schedule.store_intent(intent)
    assert app.schedule.store_intent(intent) == ref
    assert app.client.hlen(app.keys.intents) == 1
    other = Intent(**{**fields, "zone": "Asia/Tokyo"})
    app.client.hset(app.keys.intents, other.ref, intent.to_json())  # a collision, forced
    with pytest.raises(OutreachError, match="names two intents"):
        app.schedule.store_intent(other)


def test_two_steps_with_the_same_send_id_digest_are_refused(monkeypatch):
    monkeypatch.setattr("outreach.journeys.config.step_digest", lambda journey, step: "abcdef")
    with pytest.raises(ConfigError, match="send id digest"):
        load_journeys(STARTER / "config", STARTER / "templates")


@given(
    event_id=st.text(min_size=1, max_size=40),
    customer_id=st.text(min_size=1, max_size=60),
    shards=st.integers(min_value=1, max_value=64),
)
def test_a_send_id_names_its_customer_and_so_its_shard(event_id, customer_id, shards):
    keys = Keys("p:", shards)
    send_id = send_id_for(event_id, "onboarding", "welcome", customer_id)
    assert split_send_id(send_id)[2] == customer_id
    assert keys.shard_of_send(send_id) == keys.shard_of(customer_id) < shards
    assert keys.send(send_id).startswith(keys.tag(keys.shard_of(customer_id)))


@pytest.mark.parametrize(
    "bad", ["", "s", "s_0123456789abcdef0123", "sXYZ" + "0" * 15 + ".c", "s" + "0" * 18 + "c"]
)
def test_what_is_not_a_send_id_is_refused_by_name(bad, app):
    with pytest.raises(InputError, match="send_id"):
        split_send_id(bad)
    assert app.schedule.get(bad) is None


def test_a_batch_sends_again_only_the_scripts_that_met_no_script(client):
    """A script loaded in the middle of a batch (by another process): nothing runs twice."""
    text = "return redis.call('INCR', KEYS[1])"
    script = client.register_script(text)
    scripts._SOURCES[script.sha] = text
    client.script_flush()
    first, second = f"t{uuid.uuid4().hex}:{{a}}:one", f"t{uuid.uuid4().hex}:{{a}}:two"
    batch = scripts.Batch()
    batch.evalsha(script.sha, 1, first)  # the server does not have the script yet ...
    batch.script_load(text)  # ... another client loads it here ...
    batch.evalsha(script.sha, 1, second)  # ... so this one runs the first time
    scripts.execute(client, batch)
    assert (int(client.get(first)), int(client.get(second))) == (1, 1)


def test_a_finished_send_is_kept_for_the_history_days_then_forgotten(app, customers, clock):
    [send_id] = ingest(app, "order.delayed", "c-jonas", "2026-03-20T06:00:00Z", id="o1",
                       data={"order_id": "A-1", "new_eta": "2026-03-24"}).planned  # fmt: skip
    steps = by_step(
        app, ingest(app, "customer.signed_up", "c-amelia", "2026-03-20T06:00:00Z", id="e1").planned
    )
    app.schedule.cancel(steps["tips"], "journey_exit", "test")
    deliver_due(app)
    assert app.schedule.get(send_id).state == "delivered"
    kept = app.settings.history_days * 86_400_000
    for key in (app.keys.send(send_id), app.keys.send_log(send_id), app.keys.send(steps["tips"])):
        assert 0 < app.client.pttl(key) <= kept  # Redis drops them after the history days
    assert app.client.pttl(app.keys.planned("c-amelia")) == -1  # planned sends are kept as long as needed
    finished = [s for rows in app.schedule.finished_between(0, 2**62, 100) for s, _ in rows]
    assert set(finished) == {send_id, steps["tips"]}
    clock.advance(timedelta(days=app.settings.history_days, seconds=1))
    app.sweep()
    assert list(app.schedule.finished_between(0, 2**62, 100)) == []


def test_history_days_zero_keeps_finished_sends_until_they_are_archived(client, clock, tmp_path):
    app = Outreach(make_settings(tmp_path, history_days=0), client=client, clock=clock)
    app.upsert_customer(CUSTOMERS["c-jonas"])
    [send_id] = ingest(app, "order.delayed", "c-jonas", "2026-03-20T06:00:00Z", id="o1",
                       data={"order_id": "A-1", "new_eta": "2026-03-24"}).planned  # fmt: skip
    deliver_due(app)
    assert app.client.pttl(app.keys.send(send_id)) == -1
    clock.advance(timedelta(days=300))
    assert len(list(app.schedule.finished_between(0, 2**62, 100))) == 1
    app.sweep()
    assert list(app.schedule.finished_between(0, 2**62, 100)) == []
    assert app.schedule.get(send_id) is None and app.records.get(send_id).state == "delivered"


def test_the_lua_scripts_speak_of_the_same_states_as_python():
    import re

    from outreach.schedule import FINAL_STATES, SendState
    from outreach.store.scripts import source

    prelude = source("outreach.schedule", "claim").split("-- claim.lua", 1)[0]
    final = re.search(r"local FINAL = \{([^}]*)\}", prelude)
    assert final is not None
    assert set(re.findall(r"(\w+) = true", final.group(1))) == {s.value for s in FINAL_STATES}
    names = ("begin", "cancel", "claim", "finish", "handover", "reap")
    written = {
        w
        for name in names
        for w in re.findall(r"'HSET', [^,]+, 'state', '(\w+)'", source("outreach.schedule", name))
    }
    assert written and written <= {s.value for s in SendState}
    # Python's strings and the enum are the same words.
    assert "delivered" in FINAL_STATES and SendState("sending") is SendState.SENDING


def test_the_key_names_the_lua_scripts_build_are_the_ones_keys_names():
    """Scripts build some keys from the shard's tag (a send's own keys, a customer's sets): every
    such shape is the one ``Keys`` gives, so the two cannot drift apart."""
    import re
    from importlib import resources

    from outreach.store.keys import Keys

    keys = Keys("outreach:", 16)
    customer, send_id = "c-ana", "s0123456789ab012345.c-ana"
    shard = keys.shard_of(customer)
    tag = keys.tag(shard)
    names = {"customer": customer, "id": send_id, "string": customer, "event": send_id[1:13]}
    expected = {
        ("customer:", "customer", ""): keys.customer(customer),
        ("broadcast:", "event", ""): keys.broadcast(shard, send_id[1:13]),
        ("dnc", "", ""): keys.do_not_contact(customer),
        ("due", "", ""): keys.due(shard),
        ("inflight", "", ""): keys.inflight(shard),
        ("open:", "customer", ""): keys.open_sends(customer),
        ("open:", "string", ""): keys.open_sends(customer),
        ("outcomes", "", ""): keys.outcomes(shard),
        ("plan:", "customer", ""): keys.planned(customer),
        ("send:", "id", ""): keys.send(send_id),
        ("send:", "id", ":log"): keys.send_log(send_id),
        ("sends:", "customer", ""): keys.customer_sends(customer),
        ("stats", "", ""): keys.shard_stats(shard),
    }
    pattern = re.compile(r"tag \.\. '([a-z_:]+)'(?: \.\. ([a-z_]+))?(?: \.\. '([a-z_:]+)')?")
    found = set()
    for package in ("outreach.store", "outreach.schedule", "outreach.journeys", "outreach.policy",
                    "outreach.broadcasts"):  # fmt: skip
        folder = resources.files(package).joinpath("lua")
        for script in folder.iterdir():
            found |= {m.groups("") for m in pattern.finditer(script.read_text())}
    assert found and found <= set(expected), found - set(expected)
    for literal, variable, suffix in found:
        built = tag + literal + (names[variable] if variable else "") + suffix
        assert built == expected[(literal, variable, suffix)], (literal, variable, suffix)
