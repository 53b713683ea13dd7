"""Config changes are safe: ``outreach config check``, and running processes that load a change only
once the whole project checks out, keeping the old config (and saying why) when it does not."""

from __future__ import annotations

import logging
import shutil

import pytest
from click.testing import CliRunner

from outreach import Outreach
from outreach.cli.commands import main
from outreach.registry import EVENT_TYPES
from outreach.reloading import Watcher, check, reload
from outreach.settings import STARTER

from .conftest import make_settings
from .helpers import deliver_due, ingest, outbox


@pytest.fixture
def project(tmp_path):
    shutil.copytree(STARTER / "config", tmp_path / "config")
    shutil.copytree(STARTER / "templates", tmp_path / "templates")
    return tmp_path


def running(project, client, clock) -> Outreach:
    settings = make_settings(project, config_dir=project / "config", templates_dir=project / "templates")
    app = Outreach(settings, client=client, clock=clock)
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": "Europe/Lisbon"})
    return app


def notice_subject(app, clock, order: str) -> str:
    ingest(app, "order.delayed", "c1", clock.now().isoformat(), id=f"o-{order}",
           data={"order_id": order, "new_eta": "2026-03-30"})  # fmt: skip
    clock.set(clock.now() + __import__("datetime").timedelta(hours=3))
    deliver_due(app)
    return next(r["subject"] for r in outbox(app) if r["body"].count(order))


def test_a_sound_change_is_loaded_whole(project, client, clock):
    app = running(project, client, clock)
    assert "running late" in notice_subject(app, clock, "A-1")
    subject = project / "templates" / "order_delay" / "notice" / "subject.txt"
    subject.write_text("{% trans order=data.order_id %}Order {{ order }}: new date{% endtrans %}")
    with (project / "config" / "events.toml").open("a") as fh:
        fh.write('\n[event."trial.started"]\nopen = true\n')
    assert reload(app) is True
    assert "trial.started" in EVENT_TYPES
    assert notice_subject(app, clock, "A-2") == "Order A-2: new date"


@pytest.mark.parametrize(
    ("path", "text", "words"),
    [
        ("templates/order_delay/notice/subject.txt", "{{ data.coupon }}", "uses data.coupon"),
        ("templates/order_delay/notice/subject.txt", "{{ 1 // 0 }}", "ZeroDivisionError"),
        ("templates/order_delay/notice/subject.txt", "{% if %}", "subject.txt"),
        ("config/policy.toml", "fatigue_dayz = 3\n", "policy.toml"),
        ("config/channels.toml", "[sms]\nurl = 5\n", "channels.toml"),
        ("config/events.toml", '[event."order.delayed"]\ndata.order_id = "uuid"\n', "events.toml"),
    ],
)
def test_a_broken_change_is_refused_and_the_old_config_stays(
    project, client, clock, caplog, path, text, words
):
    app = running(project, client, clock)
    journeys, renderer, events = app.journeys, app.renderer, EVENT_TYPES.state()
    (project / path).write_text(text)
    assert any(words in p for part in check(app.settings).values() for p in part)
    with caplog.at_level(logging.ERROR, logger="outreach.reloading"):
        assert reload(app) is False
    assert "config change refused; the previous config stays in use" in caplog.text and words in caplog.text
    assert app.journeys is journeys and app.renderer is renderer and EVENT_TYPES.state() == events
    assert "running late" in notice_subject(app, clock, "B-1")  # still working, as before


def test_the_watcher_reloads_on_a_change_and_only_then(project, client, clock):
    app = running(project, client, clock)
    watcher = Watcher(app, interval=60)
    assert watcher.check_once() is None
    subject = project / "templates" / "order_delay" / "notice" / "subject.txt"
    subject.write_text("{% trans %}Late order{% endtrans %}")
    assert watcher.check_once() is True
    assert watcher.check_once() is None
    subject.write_text("{{ data.coupon }}")
    assert watcher.check_once() is False
    assert notice_subject(app, clock, "C-1") == "Late order"


def test_config_check_names_every_problem_and_exits_1(project, monkeypatch):
    monkeypatch.setenv("OUTREACH_PROJECT", str(project))
    for name in ("OUTREACH_CONFIG_DIR", "OUTREACH_TEMPLATES_DIR"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    good = runner.invoke(main, ["config", "check"])
    assert good.exit_code == 0, good.output
    assert "templates  ok" in good.output and "catalogs   ok" in good.output
    po = project / "templates" / "_locale" / "de" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text().replace('msgstr "Abmelden"', 'msgstr ""', 1))
    bad = runner.invoke(main, ["config", "check", "--json"])
    assert bad.exit_code == 1
    assert "de: required and incomplete ([formal] Unsubscribe)" in bad.output
