"""Nothing is delivered silently: a journey channel without a provider is refused at start-up and by
``outreach config check``; the outbox is a provider named in the config, said at start-up, in each
send's history and in the demo's output."""

from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from outreach import Outreach
from outreach.cli.commands import main
from outreach.errors import ConfigError

from .conftest import make_settings
from .helpers import declared, deliver_due, ingest, starter_project

WITHOUT_SMS_PROVIDER = declared('[sms]\naddress = "phone"\n')  # the others write to the outbox


def test_a_journey_channel_without_a_provider_is_refused_at_start_up(tmp_path, client, clock):
    config, templates = starter_project(tmp_path / "p", files={"config/channels.toml": WITHOUT_SMS_PROVIDER})
    with pytest.raises(ConfigError, match=r"a journey sends on sms, which has no provider.*providers = "):
        Outreach(
            make_settings(tmp_path, config_dir=config, templates_dir=templates), client=client, clock=clock
        )


def test_config_check_names_the_channel_without_a_provider(tmp_path, monkeypatch):
    starter_project(tmp_path / "p", files={"config/channels.toml": WITHOUT_SMS_PROVIDER})
    monkeypatch.chdir(tmp_path / "p")
    for name in ("OUTREACH_CONFIG_DIR", "OUTREACH_TEMPLATES_DIR", "OUTREACH_PROJECT", "OUTREACH_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["config", "check", "--json"])
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    assert not found["ok"] and "sms, which has no provider" in found["project"][0]


def test_the_outbox_is_said_at_start_up_and_in_each_history(app, customers, caplog):
    # ``app`` builds its transports from the starter's channels.toml, which names the outbox.
    with caplog.at_level(logging.WARNING, logger="outreach.channels.config"):
        Outreach(app.settings, client=app.client, clock=app.clock).close()
    assert "email, sms, whatsapp, webhook write to the outbox" in caplog.text
    assert "no customer receives" in caplog.text
    result = ingest(app, "order.delayed", "c-amelia", "2026-03-20T06:00:00Z",
                    {"order_id": "A-1", "new_eta": "2026-03-25"})  # fmt: skip
    for _ in range(3):
        deliver_due(app)
        app.clock.set(app.schedule.next_due() or app.clock.now())
    [send_id] = result.planned
    [delivered] = [e for e in app.schedule.history(send_id) if e["what"] == "delivered"]
    assert "(outbox)" in delivered["text"] and delivered["provider"] == "outbox"


def test_the_demo_says_its_messages_reached_no_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("OUTREACH_REDIS_URL", "OUTREACH_PREFIX", "OUTREACH_OUTBOX_DIR", "OUTREACH_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    out = CliRunner().invoke(main, ["demo"], catch_exceptions=False).output
    assert "Provider: the outbox" in out and "No customer receives these messages" in out
    data = json.loads(CliRunner().invoke(main, ["demo", "--json"], catch_exceptions=False).output)
    assert data["outbox_channels"] == ["email", "sms", "whatsapp", "webhook"]
