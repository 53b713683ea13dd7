"""Time travel over one's own data: ``outreach simulate`` and the demo's not-sent table."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from outreach.cli.commands import main
from outreach.simulate import copy_store, simulate

from .conftest import CUSTOMERS


def dump(client, prefix: str) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in sorted(client.scan_iter(match=f"*{prefix}*"))}


def test_a_simulation_tells_what_would_be_sent_and_what_would_not_and_touches_nothing(app, clock, customers):
    app.emit("customer.signed_up", "c-amelia", id="s-amelia")
    app.emit("customer.signed_up", "c-jonas", id="s-jonas")
    app.emit("order.delayed", "c-haruto", {"order_id": "H-1", "new_eta": "2026-03-28"}, id="o-haruto")
    app.set_consent("c-jonas", category="lifecycle", allowed=False, source="test")
    before = dump(app.client, app.settings.prefix)

    result = simulate(app.settings, app.client, start=clock.now(), until=clock.now() + timedelta(days=20))

    assert dump(app.client, app.settings.prefix) == before  # the real store is as it was
    # Three events and the unsubscribe the consent change made, none applied for real.
    assert app.inbox.depth() == 4 and app.schedule.depth() == (0, 0)
    sent = {(r["customer_id"], r["journey"], r["step"]) for r in result.sent}
    assert ("c-amelia", "onboarding", "welcome") in sent and ("c-haruto", "order_delay", "notice") in sent
    welcome = next(r for r in result.sent if r["customer_id"] == "c-amelia" and r["step"] == "welcome")
    assert welcome["zone"] == "America/New_York" and welcome["local"].endswith("-04:00")
    # Jonas withdrew consent for lifecycle messages: none of his onboarding goes out, and each says
    # why (stopped by the unsubscribe, or at the hand-over, depending on which came first).
    jonas = [r for r in result.not_sent if r["customer_id"] == "c-jonas"]
    assert jonas and all(r["reason"] in ("no_consent", "journey_exit") for r in jonas), jonas
    assert all("consent" in r["why"] or "unsubscribed" in r["why"] for r in jonas), jonas
    assert not any(r["customer_id"] == "c-jonas" and r["journey"] == "onboarding" for r in result.sent)
    # The nps survey of Amelia is weeks away: still waiting at the end, with its local time.
    assert any(r["journey"] == "nps" for r in result.waiting)


def test_what_waits_at_the_end_says_what_held_it(app, clock, customers):
    # Two lifecycle messages on one local day: the daily cap holds the second past the end.
    app.emit("customer.signed_up", "c-amelia", id="s-1")
    app.emit("customer.signed_up", "c-amelia", id="s-2", occurred_at=clock.now() + timedelta(seconds=1))
    result = simulate(app.settings, app.client, start=clock.now(), until=clock.now() + timedelta(hours=12))
    held = [r for r in result.waiting if r["step"] == "welcome"]
    assert held and held[0]["reason"] == "cap_day" and "1 per local day" in held[0]["why"]


def test_a_simulation_never_asks_a_provider(app, clock, customers):
    class Refusing:
        def send(self, delivery):
            raise AssertionError("a provider was asked during a simulation")

    app.transports.update(dict.fromkeys(app.transports, Refusing()))
    app.emit("order.delayed", "c-jonas", {"order_id": "J-1", "new_eta": "2026-03-28"})
    result = simulate(app.settings, app.client, start=clock.now(), until=clock.now() + timedelta(days=2))
    assert [r["channel"] for r in result.sent] == ["sms"]


def contents(client, prefix: str) -> dict:
    """Every state key's type and value, read by type (comparable across servers, unlike DUMP); the
    broker's queues (``{prefix…dramatiq}``) are not state: a simulation queues its own."""
    out = {}
    for key in sorted(client.scan_iter(match=f"{prefix}*")):
        kind = client.type(key)
        read = {b"string": client.get, b"hash": client.hgetall, b"set": client.smembers,
                b"list": lambda k: client.lrange(k, 0, -1),
                b"zset": lambda k: client.zrange(k, 0, -1, withscores=True)}[kind]  # fmt: skip
        out[key] = (kind, read(key))
    return out


def test_the_copy_keeps_every_key_and_its_time_to_live(app, customers, clock):
    app.emit("customer.signed_up", "c-amelia")
    app.ingest(app.inbox.pending()[0])
    app.client.set(app.settings.prefix + "probe", "x", ex=600)
    copy = copy_store(app.client, app.settings.prefix)
    assert contents(copy, app.settings.prefix) == contents(app.client, app.settings.prefix)
    assert 590 <= copy.ttl(app.settings.prefix + "probe") <= 600


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name in ("OUTREACH_REDIS_URL", "OUTREACH_PROJECT", "OUTREACH_CONFIG_DIR", "OUTREACH_TEMPLATES_DIR",
                 "OUTREACH_PREFIX"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "shop")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "shop")
    return tmp_path / "shop"


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_simulates_the_project_and_leaves_its_schedule_alone(project):
    (project / "people.jsonl").write_text(json.dumps(CUSTOMERS["c-amelia"]) + "\n")
    run("customers", "import", "people.jsonl")
    run("emit", "customer.signed_up", "--customer", "c-amelia")
    out = json.loads(run("simulate", "--days", "20", "--json"))
    assert {r["step"] for r in out["sent"]} >= {"welcome", "tips"}
    assert "0 waiting, 0 in flight" in run("schedule", "list")  # nothing was applied for real
    text = run("simulate", "--days", "3")
    assert "Sent" in text and "onboarding.welcome" in text and "America/New_York" in text
    bad = CliRunner().invoke(main, ["simulate", "--days", "2", "--until", "2030-01-01T00:00:00Z"])
    assert bad.exit_code == 2 and "not both" in bad.output
    past = CliRunner().invoke(main, ["simulate", "--until", "2001-01-01T00:00:00Z"])
    assert past.exit_code == 2 and "is not after now" in past.output


def test_the_demo_tells_what_it_did_not_send_and_keeps_its_state(project):
    out = run("demo")
    assert "Not sent" in out and "superseded" in out and "journey_exit" in out and "no_consent" in out
    assert "Still waiting at the end" in out
    command = out.strip().splitlines()[-1].split(": ", 1)[1]
    assert command.startswith("OUTREACH_PREFIX=outreach-demo: outreach explain ")
    send_id = command.rsplit(" ", 1)[1]
    shown = CliRunner(env={"OUTREACH_PREFIX": "outreach-demo:"}).invoke(main, ["explain", send_id])
    assert shown.exit_code == 0 and "delivered" in shown.output, shown.output
    # The project's own schedule is not the demo's.
    assert "0 waiting, 0 in flight" in run("schedule", "list")
    # A second demo starts from nothing.
    again = run("demo", "--json")
    assert json.loads(again)["not_sent"]
