"""The archive of record: finished sends leave Redis for SQL (SQLite and a real PostgreSQL) and
every reader finds them there as they were; what reaches them later (receipts, answers, notes)
is kept by the same rules as in Redis; the move survives repeats, races and erasure."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach import Outreach, SimulatedClock
from outreach.archive import Database, open_database
from outreach.archive.migrations import current_version, migrate, migrations
from outreach.delivery.receipts import RANK
from outreach.errors import InputError, PermanentChannelError
from outreach.report import build_report
from outreach.store.keys import done_field
from outreach.timing import parse_instant

from .conftest import CUSTOMERS, T0, make_settings
from .helpers import deliver_due, ingest
from .helpers import plan_send as plan_one

ORDER = {"order_id": "B-2002", "new_eta": "2026-03-27", "original_eta": "2026-03-24"}


def plan_send(app: Outreach, label: str, due, customer_id: str = "c-amelia", **intent) -> str:
    """One send planned straight into the schedule: an order-delay notice (its template's data given),
    or a survey (an ad hoc journey of its own: a journey's step has one template)."""
    intent.setdefault("journey", "js" if intent.get("survey") else "j")
    return plan_one(app, label, due, customer_id, data=ORDER, **intent)


STATUSES = list(RANK)


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request, tmp_path) -> str:
    """A fresh, empty archive database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    import psycopg

    server = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


class Refusing:
    """A provider that refuses every message for good."""

    def send(self, delivery):
        raise PermanentChannelError("the provider refuses this address")


def make_app(tmp_path, archive_url: str, clock: SimulatedClock | None = None, client=None,
             transports=None) -> Outreach:  # fmt: skip
    app = Outreach(
        make_settings(tmp_path, archive_url=archive_url, archive_after_seconds=0),
        client=client if client is not None else fakeredis.FakeRedis(server=fakeredis.FakeServer()),
        clock=clock or SimulatedClock(parse_instant(T0)),
        transports=transports,
    )
    for profile in CUSTOMERS.values():
        app.upsert_customer(profile)
    return app


def redis_keys_naming(app: Outreach, send_id: str) -> list[str]:
    """Every Redis key that names the send, or holds it as a member or field."""
    holds = {
        "zset": lambda key: app.client.zscore(key, send_id) is not None,
        "set": lambda key: app.client.sismember(key, send_id),
        "hash": lambda key: app.client.hexists(key, send_id),
    }
    found = []
    for key in app.client.scan_iter(match=f"{app.keys.prefix}*", count=1000):
        check = holds.get(app.client.type(key).decode())
        if send_id in key.decode() or (check is not None and check(key)):
            found.append(key.decode())
    return found


def snapshot(app: Outreach, send_id: str) -> dict:
    send = app.records.get(send_id)
    answer = app.surveys.get(send_id)
    return {
        "send": send.as_stored() if send else None,
        "state": send.state.value if send else None,
        "receipt": send.receipt if send else None,
        "history": app.records.history(send_id),
        "answer": answer.to_mapping() if answer else None,
    }


def deliver_all(app: Outreach, ids: list[str]) -> None:
    """Deliver, moving the clock to the next due time while quiet hours or rates hold sends back."""
    for _ in range(200):
        deliver_due(app)
        waiting = [app.schedule.due_of(i) for i in ids]
        if not any(waiting):
            return
        app.clock.set(max(min(w for w in waiting if w), app.clock.now() + timedelta(minutes=1)))


def delivered_sends(app: Outreach, count: int, customer_id: str = "c-amelia") -> list[str]:
    now = app.clock.now()
    ids = [plan_send(app, f"e{i}-{uuid.uuid4().hex[:6]}", now, customer_id) for i in range(count)]
    deliver_all(app, ids)
    assert all(app.records.get(i).state.value == "delivered" for i in ids)
    return ids


def test_a_finished_send_reads_the_same_from_the_archive_and_leaves_only_its_mark(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    [delivered] = delivered_sends(app, 1)
    cancelled = plan_send(app, "later", app.clock.now() + timedelta(days=2))
    app.schedule.cancel(cancelled, "test", "cancelled by the test")
    app.receipts.record("email", delivered, "delivered")
    before = {s: snapshot(app, s) for s in (delivered, cancelled)}

    assert app.archive_finished() == 2

    for send_id, seen in before.items():
        assert snapshot(app, send_id) == seen
        assert app.schedule.get(send_id) is None, "the send left Redis"
        assert redis_keys_naming(app, send_id) == []
        send = app.records.get(send_id)
        mark = app.client.hget(app.schedule.done_keys(send_id)[0], done_field(send_id))
        assert mark == send.state.value[:1].encode()
    rows = app.archive.database.rows("SELECT id, state, reason, provider, receipt FROM sends ORDER BY state")
    assert rows == [
        (cancelled, "cancelled", "test", "", ""),
        (delivered, "delivered", "ok", "outbox", "delivered"),
    ]
    attempts = app.archive.database.rows("SELECT send_id, outcome, channel FROM attempts")
    assert attempts == [(delivered, "delivered", "email")]


def test_the_same_event_again_plans_nothing_once_its_sends_are_archived(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    result = ingest(app, "customer.signed_up", "c-amelia", T0, id="signup-1")
    first = sorted(result.planned)
    app.clock.advance(timedelta(days=40))
    deliver_all(app, first)
    finished = [i for i in first if app.records.get(i).is_final]
    waiting = sorted(i for i, _ in app.schedule.due_between(None, None))
    assert finished and app.archive_finished() == len(finished)
    # The event's marker is gone (expired, or lost): only the archived sends' marks stop a repeat.
    app.client.delete(app.keys.event("signup-1", "c-amelia"))
    again = ingest(app, "customer.signed_up", "c-amelia", T0, id="signup-1")
    assert again is None or again.planned == []
    assert sorted(i for i, _ in app.schedule.due_between(None, None)) == waiting


def test_a_move_that_ran_twice_or_crashed_halfway_writes_each_row_once(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    ids = delivered_sends(app, 3)
    for send_id in ids:
        app.receipts.record("email", send_id, "delivered")
    entries = {send_id: len(app.records.history(send_id)) - 1 for send_id in ids}  # less the planned one
    # A mover that wrote its batch and died before Redis let the sends go: the next one writes again.
    captures = app.mover.capture(ids)
    app.archive.write(captures, 1)
    app.archive.write(captures, 2)
    assert app.archive_finished() == 3
    assert app.archive_finished() == 0
    counts = {
        t: app.archive.database.rows(f"SELECT COUNT(*) FROM {t}")[0][0]
        for t in ("sends", "receipts", "attempts")
    }
    assert counts == {"sends": 3, "receipts": 3, "attempts": 3}
    events = app.archive.database.rows(
        "SELECT send_id, COUNT(*), COUNT(DISTINCT seq) FROM events GROUP BY send_id"
    )
    assert {send_id: (n, distinct) for send_id, n, distinct in events} == {
        send_id: (n, n) for send_id, n in entries.items()
    }


def test_a_receipt_between_the_read_and_the_release_is_archived_next_round(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    [send_id] = delivered_sends(app, 1)
    captures = app.mover.capture([send_id])
    app.archive.write(captures, 1)
    app.receipts.record("email", send_id, "read")  # lands in Redis after the mover read the send
    shard = app.keys.shard_of_send(send_id)
    assert app.mover.release(shard, [send_id], captures) == 0, "changed since it was read: kept"
    assert app.schedule.get(send_id).receipt == "read"
    assert app.archive_finished() == 1
    assert app.records.get(send_id).receipt == "read"
    assert [e["what"] for e in app.records.history(send_id)][-1] == "receipt"


def test_a_customer_erased_during_a_move_leaves_no_row(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    ids = delivered_sends(app, 2)
    captures = app.mover.capture(ids)
    app.erase_customer("c-amelia")
    # The mover read the sends before the erasure and writes them after it.
    app.archive.write(captures, 1)
    assert app.mover.release(app.keys.shard_of_send(ids[0]), ids, captures) == 0
    assert app.archive.database.rows("SELECT COUNT(*) FROM sends")[0][0] == 0
    assert all(app.records.get(i) is None for i in ids)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statuses=st.lists(st.sampled_from(STATUSES), min_size=1, max_size=8), split=st.integers(0, 8))
def test_receipts_after_the_move_follow_the_rules_they_follow_in_redis(tmp_path_factory, statuses, split):
    """Once, never backwards: the same answers ('new', 'repeat', 'stale') and the same furthest
    receipt whether the send is still in Redis or archived part-way through."""
    folder = tmp_path_factory.mktemp("receipts")
    live = make_app(folder / "live", f"sqlite:///{folder / 'live.sqlite3'}")
    moved = make_app(folder / "moved", f"sqlite:///{folder / 'moved.sqlite3'}")
    [in_redis] = delivered_sends(live, 1)
    [archived] = delivered_sends(moved, 1)
    answers = {"live": [], "moved": []}
    for n, status in enumerate(statuses):
        if n == split:
            assert moved.archive_finished() == 1
        for name, app, send_id in (("live", live, in_redis), ("moved", moved, archived)):
            result = app.receipts.record("email", send_id, status, permanent=False)
            answers[name].append(result["recorded"])
    assert answers["live"] == answers["moved"]
    moved.archive_finished()
    assert live.records.get(in_redis).receipt == moved.records.get(archived).receipt
    kinds = lambda app, s: [(e["what"], e.get("status")) for e in app.records.history(s)]  # noqa: E731
    assert kinds(live, in_redis) == kinds(moved, archived)
    assert live.stats().get("receipts:email:delivered", 0) == moved.stats().get("receipts:email:delivered", 0)


def test_a_survey_answered_after_its_send_was_archived_keeps_one_answer(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    send_id = plan_send(app, "survey", app.clock.now(), survey="csat", template="survey/csat")
    deliver_all(app, [send_id])
    first = app.answer_survey(send_id, "c-amelia", "csat", 2)
    app.archive_finished()
    assert app.surveys.get(send_id) == first, "the answer moved with its send"
    app.clock.advance(timedelta(hours=3))
    second = app.answer_survey(send_id, "c-amelia", "csat", 5)
    assert (second.score, second.version, second.answered_at) == (5, 2, first.answered_at)
    commented = app.surveys.comment(send_id, "  quick and kind  ")
    assert (commented.comment, commented.score) == ("quick and kind", 5)
    assert app.archive.database.rows("SELECT COUNT(*) FROM answers")[0][0] == 1
    report = build_report(app, since=app.clock.now() - timedelta(days=1), until=app.clock.now())
    assert report.overall.answers["csat"] == 1 and report.overall.csat == 100.0
    with pytest.raises(Exception, match="no such survey send"):
        app.answer_survey(send_id, "c-jonas", "csat", 4)


def test_explain_the_api_and_the_webhooks_find_an_archived_send(tmp_path, archive_url):
    from .test_web_pages import TOKEN, web_client

    app = make_app(tmp_path, archive_url)
    [send_id] = delivered_sends(app, 1)
    before = app.records.history(send_id)
    app.archive_finished()
    reference = next(e["reference"] for e in before if e["what"] == "delivered")
    assert app.records.find_send("email", "outbox", reference) == send_id
    assert app.client.get(app.keys.reference("email", "outbox", reference)) is None
    with web_client(app) as web:
        got = web.get(f"/v1/sends/{send_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["send"]["state"] == "delivered" and len(body["history"]) == len(before)


def test_export_and_erase_cover_the_archive(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    ids = delivered_sends(app, 2)
    app.archive_finished()
    exported = app.export_customer("c-amelia")
    assert sorted(s["send"]["id"] for s in exported["sends"]) == sorted(ids)
    assert all(s["history"][-1]["what"] == "delivered" for s in exported["sends"])
    erased = app.erase_customer("c-amelia")
    assert erased["sends"] == 2
    for table in ("sends", "events", "attempts", "refs"):
        assert app.archive.database.rows(f"SELECT COUNT(*) FROM {table}")[0][0] == 0, table
    for send_id in ids:
        assert redis_keys_naming(app, send_id) == []
        assert not any(
            app.client.hexists(k, done_field(send_id)) for k in app.client.scan_iter(match="*done:*")
        )


def test_a_failed_send_replayed_from_the_dead_letters_after_it_was_archived(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url, transports={"email": Refusing()})
    send_id = plan_send(app, "fail", app.clock.now(), "c-amelia")
    deliver_all(app, [send_id])  # the provider refuses it: the send fails, and is dead-lettered
    assert app.records.get(send_id).state.value == "failed"
    app.archive_finished()
    assert app.schedule.get(send_id) is None
    [letter] = [d for d in app.deadletters.list() if d.payload.get("send_id") == send_id]
    app.replay(letter.id)
    send = app.schedule.get(send_id)
    assert send is not None and send.state.value == "scheduled"
    assert [e["what"] for e in app.records.history(send_id)][-1] == "replayed"


def test_retention_forgets_archived_sends_past_their_days(tmp_path, archive_url):
    clock = SimulatedClock(parse_instant(T0))
    app = make_app(tmp_path, archive_url, clock)
    old = delivered_sends(app, 2)
    app.archive_finished()
    clock.advance(timedelta(days=300))
    new = delivered_sends(app, 1)
    app.archive_finished()
    clock.advance(timedelta(days=101))  # the first two are now 401 days old, the last 101
    app.sweep()
    assert app.records.get(old[0]) is None and app.records.get(old[1]) is None
    assert app.records.get(new[0]) is not None


def test_the_report_is_the_same_before_and_after_the_move(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    for customer in ("c-amelia", "c-jonas", "c-haruto"):
        delivered_sends(app, 2, customer)
    survey = plan_send(app, "s1", app.clock.now(), survey="nps", template="nps/nps")
    deliver_all(app, [survey])
    app.answer_survey(survey, "c-amelia", "nps", 9)
    cancelled = plan_send(app, "c1", app.clock.now() + timedelta(days=1), "c-jonas")
    app.schedule.cancel(cancelled, "test", "cancelled")
    since, until = parse_instant(T0) - timedelta(days=1), app.clock.now() + timedelta(minutes=1)
    groupings = (None, "locale", "journey", "channel", "country")
    before = {by: build_report(app, since, until, by).to_mapping() for by in groupings}
    assert before[None]["overall"]["outcomes"]["sends"] == 8
    assert before[None]["overall"]["answers"]["nps"] == 1
    assert app.archive_finished() == 8
    for by in groupings:
        after = build_report(app, since, until, by).to_mapping()
        assert after == before[by], by


def test_migrations_run_once_and_refuse_a_newer_schema(tmp_path, archive_url):
    database = open_database(archive_url)
    assert current_version(database) == len(migrations())
    assert migrate(Database(archive_url)) == []
    with database.transaction() as cursor:
        cursor.run(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)", (99, "future", 0)
        )
    with pytest.raises(Exception, match="newer than this"):
        migrate(Database(archive_url))


def test_redis_keeps_under_100_bytes_per_archived_send(tmp_path, redis_server):
    """The promise of the archive, measured on a real Redis: what stays per finished send. An
    event's own markers (its de-duplication, its journey's supersede key) are the event's, kept
    for the event window whether it planned one send or none: they are counted apart."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_server)
    app = make_app(tmp_path, f"sqlite:///{tmp_path / 'a.sqlite3'}", client=client)
    count = 400
    for i in range(count):
        app.upsert_customer({"id": f"c-m{i}", "name": f"M {i}", "email": f"m{i}@example.com",
                             "locale": "en_GB", "zone": "Europe/London", "country": "GB"})  # fmt: skip
    events = [{"id": f"o-{i}", "type": "order.delayed", "customer_id": f"c-m{i}", "occurred_at": T0,
               "data": {"order_id": f"A-{i}", "new_eta": "2026-03-27", "original_eta": "2026-03-24"}}
              for i in range(count)]  # fmt: skip

    def used() -> tuple[int, int]:
        """(bytes of the keys that are the events', bytes of every other key under the prefix)"""
        of_events = rest = 0
        for key in client.scan_iter(match=f"{app.keys.prefix}*", count=1000):
            size = client.memory_usage(key) or 0
            name = key.decode()
            if ":event:" in name or ":supersede:" in name or name.endswith(":keys"):
                of_events += size
            else:
                rest += size
        return of_events, rest

    _, before = used()
    planned = [send_id for result in app.ingest_many(events) for send_id in result.planned]
    deliver_all(app, planned)
    assert app.mover.backlog() == len(planned) == count
    _, finished = used()
    assert app.archive_finished() == count
    of_events, archived = used()
    per_send = (archived - before) / count
    assert per_send <= 100, f"{per_send:.0f} B per archived send"
    assert (finished - before) / count > 1000, "a finished send held over 1 KB before it was archived"
    assert of_events / count < 600
    client.close()


def test_the_entries_of_an_archived_history_are_valid_json_with_their_order(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    [send_id] = delivered_sends(app, 1)
    for status in ("accepted", "delivered", "read"):
        app.receipts.record("email", send_id, status)
    app.archive_finished()
    rows = app.archive.database.rows(
        "SELECT seq, entry FROM events WHERE send_id = ? ORDER BY seq", (send_id,)
    )
    assert [r[0] for r in rows] == list(range(len(rows)))
    assert [json.loads(r[1])["what"] for r in rows][-3:] == ["receipt"] * 3


def test_an_archive_that_is_away_delays_archiving_and_nothing_else(tmp_path, caplog):
    from .conftest import _free_port

    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    clock = SimulatedClock(parse_instant(T0))
    away = f"postgresql://postgres@127.0.0.1:{_free_port()}/outreach?connect_timeout=2"
    app = make_app(tmp_path, away, clock, client=client)  # starts: nothing is connected yet
    ids = delivered_sends(app, 2)
    app.sweep()  # the mover fails; the sweep goes on
    assert "archiving finished sends failed" in caplog.text
    assert app.mover.backlog() == 2 and all(app.records.get(i) for i in ids)
    # The archive is back (here: another one; the same keys in Redis).
    settings = replace(app.settings, archive_url=f"sqlite:///{tmp_path / 'back.sqlite3'}")
    back = Outreach(settings, client=client, clock=clock)
    assert back.mover.backlog() == 2
    back.sweep()
    assert back.mover.backlog() == 0
    assert [back.records.get(i).state.value for i in ids] == ["delivered", "delivered"]


def test_the_command_shows_moves_and_migrates_the_archive(runner, tmp_path, monkeypatch):
    from outreach.cli import main

    monkeypatch.setenv("OUTREACH_ARCHIVE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("OUTREACH_ARCHIVE_AFTER_SECONDS", "0")
    assert runner.invoke(main, ["archive", "migrate"]).output.endswith(
        f"schema version {len(migrations())}\n"
    )
    status = json.loads(runner.invoke(main, ["archive", "status", "--json"]).output)
    assert (status["database"], status["sends"], status["waiting_in_redis"]) == ("sqlite", 0, 0)
    assert status["schema_version"] == status["schema_latest"] == len(migrations())
    moved = runner.invoke(main, ["archive", "move"])
    assert moved.exit_code == 0 and moved.output == "archived 0 sends; 0 finished sends wait in Redis\n"
    text = runner.invoke(main, ["archive", "status"]).output
    latest = len(migrations())
    assert (
        f"cli.sqlite3 (sqlite, schema {latest}/{latest})" in text and "0 sends, 0 answers, 0 clicks" in text
    )
    assert "0 finished sends not archived yet" in text


OPERATIONS = st.one_of(
    st.tuples(st.just("receipt"), st.integers(0, 2), st.sampled_from(STATUSES)),
    st.tuples(st.just("answer"), st.integers(0, 2), st.integers(1, 5)),
    st.tuples(st.just("comment"), st.integers(0, 2), st.sampled_from(["", "fine", "  slow  "])),
    st.tuples(st.just("cancel"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("move"), st.just(0), st.just(0)),
    st.tuples(st.just("later"), st.just(0), st.integers(1, 90)),
)


def observed(app: Outreach, ids: list[str]) -> list:
    """What readers see of the sends: record, history, answer, and the report's figures."""
    out = []
    for send_id in ids:
        send = app.records.get(send_id)
        answer = app.surveys.get(send_id)
        history = [(e["what"], e.get("status"), e.get("text")) for e in app.records.history(send_id)]
        kept = answer and (answer.score, answer.version, answer.comment, answer.answered_at)
        out.append((send.state.value, send.receipt, send.reason, history, kept))
    report = build_report(app, parse_instant(T0) - timedelta(days=1), app.clock.now())
    out.append(report.to_mapping()["overall"])
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATIONS, max_size=12))
def test_what_happens_to_a_send_reads_the_same_whether_or_when_it_was_archived(tmp_path_factory, operations):
    """Two twins get the same receipts, answers, comments, cancellations and time; one archives
    whenever the operations say so, the other never: every reader sees the same."""
    folder = tmp_path_factory.mktemp("twins")
    twins = [make_app(folder / name, "sqlite://") for name in ("kept", "moved")]
    ids = []
    for app in twins:
        ids = [
            plan_send(app, f"t{i}", app.clock.now(), survey="csat", template="survey/csat") for i in range(3)
        ]
        deliver_all(app, ids)
    assert twins[0].clock.now() == twins[1].clock.now()
    for what, n, value in operations:
        results = []
        for index, app in enumerate(twins):
            send_id = ids[n]
            try:
                if what == "receipt":
                    results.append(app.receipts.record("email", send_id, value, permanent=False)["recorded"])
                elif what == "answer":
                    results.append(app.answer_survey(send_id, "c-amelia", "csat", value).to_mapping())
                elif what == "comment":
                    results.append(app.surveys.comment(send_id, value).to_mapping())
                elif what == "cancel":
                    results.append(app.records.cancel(send_id, "test", "cancelled").outcome)
                elif what == "move" and index == 1:
                    app.archive_finished()
                elif what == "later":
                    app.clock.advance(timedelta(minutes=value))
            except InputError as exc:
                results.append(str(exc))
        if len(results) == 2:
            assert results[0] == results[1], what
    twins[1].archive_finished()
    assert observed(twins[0], ids) == observed(twins[1], ids)


# -- the ways a move can race what reaches a send -----------------------------------------------


def test_a_step_waiting_for_an_event_is_not_planned_again_once_archived(tmp_path):
    """A branch step's send id comes from the journey's start; its moment from the awaited event.
    The same awaited event again on another day, after the send was archived, plans nothing."""
    import shutil

    from outreach.settings import STARTER

    from .test_branches import JOURNEY

    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    (config / "journeys" / "activation.toml").write_text(JOURNEY)
    (config / "journeys" / "onboarding.toml").unlink()
    clock = SimulatedClock(parse_instant(T0))
    settings = make_settings(tmp_path, config_dir=config, archive_after_seconds=0)
    app = Outreach(settings, client=fakeredis.FakeRedis(server=fakeredis.FakeServer()), clock=clock)
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Lisbon"})
    ingest(app, "customer.signed_up", "c1", clock.now().isoformat(), id="su")
    clock.advance(timedelta(days=1))
    came = ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="act").planned
    [step] = [s for s in came if app.records.get(s).journey == "activation"]
    for _ in range(5):
        clock.advance(timedelta(hours=6))
        deliver_due(app)
    assert app.archive_finished() >= 1 and app.schedule.get(step) is None
    assert app.records.get(step).state.value == "delivered"
    clock.advance(timedelta(hours=2))  # another UTC day, still within the step's days
    again = ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="act2")
    assert step not in again.planned
    assert [s for s in again.planned if app.records.get(s).journey == "activation"] == []


def test_a_comment_or_a_stale_receipt_in_the_same_millisecond_as_the_read_is_not_lost(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    survey = plan_send(app, "survey", app.clock.now(), survey="csat", template="survey/csat")
    deliver_all(app, [survey])
    app.answer_survey(survey, "c-amelia", "csat", 5)
    captures = app.mover.capture([survey])
    app.archive.write(captures, 1)
    app.surveys.comment(survey, "kept")  # the clock has not moved: the same millisecond
    assert app.mover.release(app.keys.shard_of_send(survey), [survey], captures) == 0
    app.archive_finished()
    assert app.surveys.get(survey).comment == "kept"

    [sent] = delivered_sends(app, 1, "c-jonas")
    app.receipts.record("email", sent, "read")
    captures = app.mover.capture([sent])
    app.archive.write(captures, 1)
    assert app.receipts.record("email", sent, "delivered")["recorded"] == "stale"  # seen, not logged
    assert app.mover.release(app.keys.shard_of_send(sent), [sent], captures) == 0
    app.archive_finished()
    assert app.receipts.record("email", sent, "delivered")["recorded"] == "repeat"


def test_a_late_batch_from_a_second_mover_does_not_undo_a_later_comment(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    survey = plan_send(app, "survey", app.clock.now(), survey="csat", template="survey/csat")
    deliver_all(app, [survey])
    app.answer_survey(survey, "c-amelia", "csat", 4)
    late = app.mover.capture([survey])  # a second mover reads ...
    app.archive_finished()  # ... the first moves it ...
    app.surveys.comment(survey, "kept")  # ... a comment reaches the archive ...
    app.archive.write(late, 2)  # ... and the second writes what it read
    answer = app.surveys.get(survey)
    assert (answer.comment, answer.score, answer.version) == ("kept", 4, 1)


def test_an_erasure_the_archive_missed_is_done_again_by_the_next_mover(tmp_path, archive_url, monkeypatch):
    app = make_app(tmp_path, archive_url)
    ids = delivered_sends(app, 2)
    captures = app.mover.capture(ids)
    app.erase_customer("c-amelia")
    app.archive.write(captures, 1)  # a mover that read before the erasure writes after it ...
    real_drop = app.archive.drop

    def broken(send_ids):
        raise ConnectionError("the archive went away")

    monkeypatch.setattr(app.archive, "drop", broken)
    with pytest.raises(ConnectionError):  # ... and cannot drop what it wrote
        app.mover.release(app.keys.shard_of_send(ids[0]), ids, captures)
    monkeypatch.setattr(app.archive, "drop", real_drop)
    app.archive_finished()  # the next sweep drops it
    assert app.archive.database.rows("SELECT COUNT(*) FROM sends")[0][0] == 0
    assert app.mover.backlog() == 0


def test_an_erasure_after_the_move_leaves_no_mark(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    ids = delivered_sends(app, 2)
    app.archive_finished()
    app.erase_customer("c-amelia")
    for send_id in ids:
        assert not any(app.client.hexists(k, done_field(send_id)) for k in app.schedule.done_keys(send_id))
        assert redis_keys_naming(app, send_id) == []


def test_a_replayed_send_is_whole_in_redis_again_and_out_of_the_archive(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url, transports={"email": Refusing()})
    survey = plan_send(app, "fail", app.clock.now(), survey="csat", template="survey/csat")
    deliver_all(app, [survey])
    app.answer_survey(survey, "c-amelia", "csat", 3)
    app.archive_finished()
    [letter] = [d for d in app.deadletters.list() if d.payload.get("send_id") == survey]
    app.replay(letter.id)
    assert app.archive.sends([survey]) == {}, "live again: out of the archive"
    assert app.surveys.get(survey).score == 3 and app.schedule.get(survey).state.value == "scheduled"
    since = parse_instant(T0) - timedelta(days=1)
    report = build_report(app, since, app.clock.now())
    assert report.overall.states["failed"] == 0, "a replayed send waiting again is not counted"


def test_a_comment_does_not_move_an_archived_answer_out_of_its_period(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url)
    survey = plan_send(app, "survey", app.clock.now(), survey="csat", template="survey/csat")
    deliver_all(app, [survey])
    app.answer_survey(survey, "c-amelia", "csat", 5)
    since, until = app.clock.now() - timedelta(days=1), app.clock.now() + timedelta(hours=1)
    app.clock.advance(timedelta(days=3))
    app.surveys.comment(survey, "nice")
    before = build_report(app, since, until).to_mapping()
    assert before["overall"]["answers"]["csat"] == 1
    app.archive_finished()
    after = build_report(app, since, until).to_mapping()
    assert after == {**before, "generated_at": after["generated_at"]}


def test_processes_starting_together_on_an_empty_postgresql_migrate_it_once(postgres_url):
    import threading

    import psycopg

    name = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    errors: list[Exception] = []
    ran: list[list[int]] = []

    def start() -> None:
        try:
            ran.append(migrate(Database(url)))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(ran, key=len) == [[]] * 5 + [list(range(1, len(migrations()) + 1))]
