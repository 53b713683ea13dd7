"""The ``outreach`` command, on the embedded store (no server) as a newcomer runs it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, time

import pytest

from outreach.cli.commands import main
from outreach.demo import DEMO_EVENTS
from outreach.timing import Window, zone


def ok(runner, *args):
    result = runner.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_demo_delivers_all_four_journeys_once_each_at_allowed_local_hours(runner, tmp_path):
    out = json.loads(ok(runner, "demo", "--json"))
    rows = out["deliveries"]
    assert {"onboarding", "order_delay", "survey", "checkin"} <= {r["journey"] for r in rows}
    assert all(n == 1 for n in Counter(r["send_id"] for r in rows).values())
    windows = {
        "onboarding": Window.parse("07:00-22:00"),
        "order_delay": Window.parse("07:00-22:00"),
        "survey": Window.parse("10:00-19:00"),
        "ces": Window.parse("10:00-19:00"),
        "checkin": Window.parse("09:00-20:00"),
    }
    for r in rows:
        local = datetime.fromisoformat(r["local"])
        window = windows[r["journey"]]
        assert window.open <= local.time() < window.close, r
        assert local.utcoffset() == datetime.fromisoformat(r["utc"]).astimezone(local.tzinfo).utcoffset()
    # Stepped steps land on their configured local hour, but for the customer who keeps Eid al-Fitr.
    tips = {r["customer_id"]: datetime.fromisoformat(r["local"]) for r in rows if r["step"] == "tips"}
    assert {t.time() for c, t in tips.items() if c != "c-omar"} <= {time(10, 0)}
    # Eid al-Fitr ends at nightfall in Cairo (18:44) + 90 min, past the window: the next morning.
    assert tips["c-omar"] == datetime.fromisoformat("2026-03-23T09:00:00+02:00")
    [moved] = out["calendar_shifts"]
    assert moved["customer_id"] == "c-omar" and "Eid al-Fitr (observed by this customer)" in moved["text"]
    # The superseded first delay notice never went out; activation cancelled check-ins.
    assert [
        r["body"].count("March 26")
        for r in rows
        if r["journey"] == "order_delay" and r["customer_id"] == "c-amelia"
    ] == [1]
    activated = {c for _, t, c, _ in DEMO_EVENTS if t == "customer.activated"}
    assert not [
        r
        for r in rows
        if r["customer_id"] in activated and r["step"] == "checkin" and r["journey"] == "onboarding"
    ]
    assert len({r["locale"] for r in rows}) >= 10
    assert [d["kind"] for d in out["dead_letters"]] == ["event"]
    assert (tmp_path / "outbox" / "deliveries.jsonl").exists()


def test_demo_table(runner):
    out = ok(runner, "demo")
    assert "customer local time" in out and "Send ids delivered twice: 0" in out
    assert "Moved for a customer's own calendar" in out and "c-omar onboarding.tips: Eid al-Fitr" in out


def test_import_emit_run_list_explain_on_the_embedded_store(runner, tmp_path):
    (tmp_path / "people.csv").write_text(
        "id,name,email,locale,zone,country,consent.marketing,attributes.plan\n"
        "c1,Ana,ana@example.com,pt-BR,America/Sao_Paulo,BR,false,pro\n"
        "c2,Bob,bob@example.com,en_US,Not/AZone,US,,\n"
        "c3,Chie,chie@example.jp,ja_JP,Asia/Tokyo,JP,,\n"
    )
    out = ok(runner, "customers", "import", "people.csv")
    assert "imported 2 customers, 1 rejected" in out
    shown = json.loads(ok(runner, "customers", "show", "c1"))
    assert shown["locale"] == "pt_BR" and shown["consent"] == {"marketing": False}
    assert shown["attributes"] == {"plan": "pro"}
    (tmp_path / "more.jsonl").write_text('{"id": "c4", "name": "Dee", "email": "dee@example.com"}\n{oops\n')
    assert "imported 1 customers, 1 rejected" in ok(runner, "customers", "import", "more.jsonl")
    letters = ok(runner, "dead-letters", "list")
    assert "zone='Not/AZone'" in letters and "more.jsonl:2" in letters

    out = ok(
        runner,
        "emit",
        "order.delayed",
        "--customer",
        "c3",
        "--id",
        "ev1",
        "--data",
        '{"order_id": "J-7", "new_eta": "2030-01-02"}',
    )
    assert "queued event ev1" in out
    ok(runner, "run", "--until-idle")
    listing = json.loads(ok(runner, "schedule", "list", "--json"))
    assert listing["due"] == [] or listing["due"][0]["journey"] == "order_delay"
    rows = (
        [json.loads(x) for x in (tmp_path / "outbox" / "deliveries.jsonl").read_text().splitlines()]
        if (tmp_path / "outbox" / "deliveries.jsonl").exists()
        else []
    )
    send_id = rows[0]["send_id"] if rows else listing["due"][0]["send_id"]
    explained = ok(runner, "explain", send_id)
    assert "order_delay.notice for c3" in explained and "planned" in explained
    if rows:
        assert "handed over at " in explained and ", answered at " in explained


def test_consent_and_dnc_say_what_they_stopped(runner, tmp_path):
    (tmp_path / "people.jsonl").write_text(
        '{"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Lisbon"}\n'
    )
    ok(runner, "customers", "import", "people.jsonl")
    ok(runner, "emit", "customer.signed_up", "--customer", "c1", "--id", "su1")
    ok(runner, "run", "--until-idle")
    change = json.loads(ok(runner, "customers", "consent", "c1", "--category", "lifecycle", "--deny"))
    assert change["consent"] == {"lifecycle": False}
    # The tips and the check-in are days away: both are stopped in time.
    stopped = [s for s in change["sends"] if s["outcome"] == "cancelled"]
    assert len(stopped) >= 2 and all(s["state"] == "scheduled" for s in stopped)
    out = ok(runner, "customers", "dnc", "c1")
    assert "c1 is on the do-not-contact list" in out and ": cancelled" in out


def test_emit_rejects_malformed_json_and_unknown_types(runner):
    result = runner.invoke(main, ["emit", "order.delayed", "--customer", "c1", "--data", "{nope"])
    assert result.exit_code != 0 and "--data='{nope'" in result.output
    result = runner.invoke(main, ["emit", "order.lost", "--customer", "c1"])
    assert result.exit_code != 0 and "type='order.lost'" in result.output


def test_explain_unknown_send(runner):
    result = runner.invoke(main, ["explain", "s_nope"])
    assert result.exit_code != 0 and "send_id='s_nope'" in result.output


def test_when_prints_json(runner):
    out = json.loads(
        ok(
            runner,
            "when",
            "--zone",
            "America/New_York",
            "--from",
            "2026-03-20T07:30:00Z",
            "--window",
            "09:00-17:00",
            "--json",
        )
    )
    assert out["utc"] == "2026-03-20T13:00:00Z"
    assert out["local"] == "2026-03-20T09:00:00-04:00"
    assert out["shifts"]


@pytest.mark.parametrize(
    ("args", "bad"),
    [
        (["--zone", "Nowhere/Land", "--from", "2026-03-20T07:30:00Z"], "Nowhere/Land"),
        (["--zone", "UTC", "--from", "2026-03-20T07:30:00"], "2026-03-20T07:30:00"),
        (["--zone", "UTC", "--from", "2026-03-20T07:30:00Z", "--at", "7pm"], "7pm"),
        (["--zone", "UTC", "--from", "2026-03-20T07:30:00Z", "--holidays", "XX"], "XX"),
    ],
)
def test_when_rejects_bad_values_by_name(runner, args, bad):
    result = runner.invoke(main, ["when", *args, "--json"])
    assert result.exit_code != 0 and bad in result.output


def test_zone_helper_is_cached():
    assert zone("Europe/Berlin") is zone("Europe/Berlin")


def test_demo_sends_its_email_through_smtp(runner):
    from email import message_from_bytes, policy

    from .test_channel_smtp import Recorder, start

    recorder = Recorder()
    controller = start(recorder)
    try:
        out = json.loads(ok(runner, "demo", "--json", "--smtp", f"smtp://127.0.0.1:{controller.port}"))
    finally:
        controller.stop()
    emails = [r for r in out["deliveries"] if r["channel"] == "email"]
    assert emails and len(recorder.messages) == len(emails)
    received = [message_from_bytes(m["raw"], policy=policy.default) for m in recorder.messages]
    assert sorted(str(m["Subject"]) for m in received) == sorted(r["subject"] for r in emails)
    assert {m["Message-ID"] for m in received} == {f"<{r['send_id']}@outreach.example>" for r in emails}


def test_a_redis_that_does_not_answer_is_a_one_line_error(runner, monkeypatch):
    from .conftest import _free_port

    monkeypatch.setenv("OUTREACH_REDIS_URL", f"redis://127.0.0.1:{_free_port()}/0")
    result = runner.invoke(main, ["emit", "order.delayed", "--customer", "c1", "--data", '{"order_id": "A"}'])
    assert result.exit_code == 1
    assert "is not reachable" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_events_import_queues_the_good_lines_in_batches_and_names_the_bad_ones(runner, tmp_path):
    (tmp_path / "people.jsonl").write_text(
        '{"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Asia/Tokyo", "country": "JP"}\n'
    )
    ok(runner, "customers", "import", "people.jsonl")
    good = [
        {"id": f"imp-{i}", "type": "order.delayed", "customer_id": "c1",
         "data": {"order_id": f"O-{i}", "new_eta": "2030-01-02"}}
        for i in range(7)
    ]  # fmt: skip
    lines = [json.dumps(e) for e in good]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps({"type": "order.delayed", "customer_id": "c-none",
                                "data": {"order_id": "X", "new_eta": "2030-01-02"}}))  # fmt: skip
    lines.insert(6, json.dumps({**good[0], "id": "imp-x", "extra": True}))
    lines.insert(7, "")
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    out = ok(runner, "events", "import", "events.jsonl", "--batch", "3")
    assert "queued 7 events, 3 rejected" in out
    assert "events.jsonl:3: line=" in out and "events.jsonl:5: customer_id='c-none'" in out
    assert "events.jsonl:7: extra=True: unknown event field" in out
    letters = ok(runner, "dead-letters", "list")
    assert letters.count("events.jsonl:") == 3
    ok(runner, "run", "--until-idle")
    listing = json.loads(ok(runner, "schedule", "list", "--json", "--limit", "100"))
    outbox = tmp_path / "outbox" / "deliveries.jsonl"
    sent = [json.loads(x) for x in outbox.read_text().splitlines()] if outbox.exists() else []
    # Every good line planned its notice once: waiting for Tokyo's send window, or sent.
    assert len(listing["due"]) + len(sent) == 7
    # The same file again queues the same ids: nothing is planned twice.
    ok(runner, "events", "import", "events.jsonl")
    ok(runner, "run", "--until-idle")
    again = json.loads(ok(runner, "schedule", "list", "--json", "--limit", "100"))
    sent_again = [json.loads(x) for x in outbox.read_text().splitlines()] if outbox.exists() else []
    assert len(again["due"]) + len(sent_again) == 7
