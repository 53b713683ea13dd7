"""``outreach bounces ingest``: an email sent over SMTP bounces back as an RFC 3464 report in the
sender's mailbox; the command finds the send by the Message-ID the report quotes, records the
bounce once, and suppresses the address."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from outreach import Outreach, Settings
from outreach.cli.commands import main

from .helpers import declared, deliver_due, plan_send, starter_project
from .test_channel_smtp import Recorder, start


def dsn(message_id: str, recipient: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification as a Postfix-like mailer writes it."""
    return f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: hello@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <{uuid.uuid4().hex}@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net. I'm sorry to have to inform you
that your message could not be delivered to one or more recipients.

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Fri, 20 Mar 2026 06:00:01 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown

--B0UND
Content-Type: text/rfc822-headers

From: Outreach <hello@example.com>
To: {recipient}
Subject: Your order
Message-ID: {message_id}

--B0UND--
""".encode()


@pytest.fixture
def project(tmp_path, redis_server, monkeypatch):
    recorder = Recorder()
    controller = start(recorder)
    channels = declared(f"""
[email]
address = "email"
providers = ["smtp"]
[email.smtp]
url = "smtp://127.0.0.1:{controller.port}"
from = "Outreach <hello@example.com>"
""")
    config, templates = starter_project(tmp_path / "shop", files={"config/channels.toml": channels})
    env = {
        "OUTREACH_REDIS_URL": redis_server,
        "OUTREACH_PREFIX": f"b{uuid.uuid4().hex[:8]}:",
        "OUTREACH_CONFIG_DIR": str(config),
        "OUTREACH_TEMPLATES_DIR": str(templates),
        "OUTREACH_OUTBOX_DIR": str(tmp_path / "outbox"),
        "OUTREACH_PROJECT": str(tmp_path / "shop"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = Outreach(Settings.from_env())
    yield app, recorder
    app.close()
    controller.stop()


def test_a_bounce_in_the_mailbox_is_recorded_once_and_suppresses_the_address(project, tmp_path):
    app, recorder = project
    app.upsert_customer({"id": "c-kim", "name": "Kim", "email": "kim@example.org", "zone": "UTC"})
    data = {"order_id": "K-7", "new_eta": "2026-03-27"}
    send_id = plan_send(app, "bounce", app.clock.now(), "c-kim", data=data, category="transactional")
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    [sent] = recorder.messages
    message_id = next(line.split(":", 1)[1].strip() for line in sent["raw"].decode().splitlines()
                      if line.lower().startswith("message-id:"))  # fmt: skip

    mbox = tmp_path / "bounces.mbox"
    other = dsn("<not-ours@example.com>", "someone@example.org")
    mbox.write_bytes(b"From MAILER-DAEMON Fri Mar 20 06:00:00 2026\n" + dsn(message_id, "kim@example.org")
                     + b"\nFrom MAILER-DAEMON Fri Mar 20 06:01:00 2026\n" + other + b"\n")  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(main, ["bounces", "ingest", str(mbox), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"reports": 2, "results": {"new": 1, "unknown": 1}}
    again = runner.invoke(main, ["bounces", "ingest", "-"], input=dsn(message_id, "kim@example.org"))
    assert again.exit_code == 0 and again.output.strip() == "1 reports: 1 repeat"

    receipts = [e for e in app.schedule.history(send_id) if e["what"] == "receipt"]
    assert [(r["status"], r["provider"]) for r in receipts] == [("bounced", "smtp")]
    assert "5.1.1" in receipts[0]["detail"]
    assert app.policy.is_suppressed("email", "kim@example.org")


def test_a_mailbox_of_no_reports_records_nothing(project, tmp_path):
    path = Path(tmp_path / "inbox.eml")
    path.write_bytes(b"From: a@example.com\nSubject: hello\n\nnot a report\n")
    result = CliRunner().invoke(main, ["bounces", "ingest", str(path)])
    assert result.exit_code == 0 and result.output.strip() == "0 reports: nothing"


def test_a_report_about_another_address_suppresses_nothing(project, tmp_path):
    app, recorder = project
    app.upsert_customer({"id": "c-lee", "name": "Lee", "email": "lee@example.org", "zone": "UTC"})
    data = {"order_id": "L-1", "new_eta": "2026-03-27"}
    send_id = plan_send(app, "forged", app.clock.now(), "c-lee", data=data, category="transactional")
    deliver_due(app)
    raw = recorder.messages[0]["raw"].decode()
    message_id = next(line.split(":", 1)[1].strip() for line in raw.splitlines()
                      if line.lower().startswith("message-id:"))  # fmt: skip
    path = tmp_path / "forged.eml"
    path.write_bytes(dsn(message_id, "someone-else@example.org"))
    result = CliRunner().invoke(main, ["bounces", "ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert not app.policy.is_suppressed("email", "lee@example.org")
    ignored = [e for e in app.schedule.history(send_id) if e["what"] == "receipt_ignored"]
    assert ignored and "someone-else@example.org" in ignored[0]["text"]
