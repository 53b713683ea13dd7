"""The delivery pipeline against a real local HTTP provider (docs/DELIVERY.md).

A ``ThreadingHTTPServer`` on 127.0.0.1 plays the SMS provider: it verifies every
signature, answers from a per-test script (503, 429 with Retry-After, 4xx, a reply
slower than the transport's timeout) and, as a real provider does, accepts each
``Idempotency-Key`` once and counts repeats separately. Email goes to a recording
mailbox that de-duplicates on the Message-ID derived from the send id. Time only
moves when the simulated clock is told to; sends are delivered with ``deliver_due``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from outreach import Outreach, PermanentChannelError
from outreach.channels.base import Delivery
from outreach.channels.email_message import message_id
from outreach.channels.http import HttpBatchTransport, HttpTransport
from outreach.channels.signed_json import verify_signature
from outreach.cli import commands as outreach_cli
from outreach.cli import common as cli_common
from outreach.clock import from_ms, to_ms
from outreach.timing import zone

from .conftest import STARTER, T0, make_settings
from .helpers import at, declared, deliver_due, ingest

SECRET = "whsec-delivery-test-4f1c"
T0_AT = at(T0)  # Friday 2026-03-20 06:00 UTC = 15:00 in Tokyo

#: Customers whose preferred channel is sms; 15:00 in Tokyo at T0 is inside the
#: transactional window (07:00-22:00).
YUI = {
    "id": "c-yui",
    "name": "Yui",
    "email": "yui@example.jp",
    "phone": "+819012345678",
    "locale": "en_US",
    "zone": "Asia/Tokyo",
    "country": "JP",
    "channel": "sms",
}


# -- the provider ----------------------------------------------------------------------------


@dataclass
class Request:
    """One POST as the provider received it."""

    path: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    key: str | None
    signed: bool
    #: The client's (host, port) and the connection's serial number: one kept-alive connection of
    #: one worker thread (a port a killed worker used may be used again by its successor).
    peer: tuple = ()
    status: int = 0

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the transport expects
    server: Provider

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.serial = self.server.connections

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if len(body) < length:
            # The sender died halfway through its request: nothing to answer.
            with self.server.lock:
                self.server.truncated += 1
            self.close_connection = True
            return
        status, headers, payload = self.server.answer(self, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Accepted:
    """What the provider keeps per Idempotency-Key: the first accepted request and its id."""

    reference: str
    body: dict[str, Any]
    repeats: int = 0
    repeat_bodies: list[dict[str, Any]] = field(default_factory=list)


class Provider(ThreadingHTTPServer):
    """A signed-JSON SMS provider that de-duplicates on Idempotency-Key.

    ``script`` holds the answers to the next requests, in order; once it is empty,
    ``default`` answers. An answer is a status, ``(status, headers)``,
    ``(status, headers, body)`` or ``"slow"``: accept the message, then reply only
    after ``release`` is set (or 5 s), i.e. later than the transport waits.
    """

    daemon_threads = True
    request_queue_size = 128  # many workers connect at once in the chaos test

    def __init__(self, secret: str = SECRET) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = secret
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.script: list[Any] = []
        self.default: Any = 200
        self.accepted: dict[str, Accepted] = {}
        self.release = threading.Event()
        self.errors: list[BaseException] = []
        #: Batch endpoint: the status to answer for a message, by send id (200 for the rest).
        self.item_status: dict[str, int] = {}
        #: Requests whose body ended early (a killed sender); never answered or counted.
        self.truncated = 0
        #: Connections accepted so far (each handler numbers its own).
        self.connections = 0
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/sms"

    @property
    def batch_url(self) -> str:
        return self.url + "/batch"

    # -- bookkeeping, under the lock ------------------------------------------------------------

    def _accept(self, key: str, body: dict[str, Any]) -> str:
        with self.lock:
            known = self.accepted.get(key)
            if known is None:
                known = self.accepted[key] = Accepted(f"prov-{len(self.accepted) + 1}", body)
            else:
                # A retry of something we already took: answer as before, deliver nothing.
                known.repeats += 1
                known.repeat_bodies.append(body)
            return known.reference

    def answer(self, handler: _Handler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        key = handler.headers.get("Idempotency-Key")
        signed = verify_signature(self.secret, body, handler.headers.get("X-Outreach-Signature"))
        request = Request(
            handler.path,
            dict(handler.headers.items()),
            body,
            key,
            signed,
            (*handler.client_address, handler.serial),
        )
        with self.lock:
            self.requests.append(request)
            action = self.script.pop(0) if self.script else self.default
        if not signed or not key:
            request.status = 401
            return 401, {}, b'{"error": "bad signature or no Idempotency-Key"}'
        if handler.path.endswith("/batch") and action == 200:
            # Each message is taken on its own send id, as a single request would be.
            results = []
            for message in json.loads(body)["messages"]:
                status = self.item_status.get(message["send_id"], 200)
                row = {"send_id": message["send_id"], "status": status}
                if status == 200:
                    row["id"] = self._accept(message["send_id"], message)
                results.append(row)
            request.status = 200
            return 200, {}, json.dumps({"results": results}).encode()
        if action == "slow":
            reference = self._accept(key, json.loads(body))
            self.release.wait(5)
            request.status = 200
            return 200, {}, json.dumps({"id": reference}).encode()
        if isinstance(action, int):
            action = (action,)
        status = action[0]
        headers = action[1] if len(action) > 1 else {}
        payload = action[2] if len(action) > 2 else None
        request.status = status
        if 200 <= status < 300:
            reference = self._accept(key, json.loads(body))
            return status, dict(headers), json.dumps({"id": reference}).encode()
        if payload is None:
            payload = json.dumps({"error": f"refused with {status}", "code": status}).encode()
        return status, dict(headers), payload

    def handle_error(self, request, client_address) -> None:
        # A client that timed out or was killed leaves a broken connection: expected.
        # Anything else is a bug in this test provider and fails the test.
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            self.errors.append(exc)

    # -- what the tests read --------------------------------------------------------------------

    def keys_seen(self) -> Counter:
        return Counter(r.key for r in self.requests)

    def start(self) -> Provider:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)


class Mailbox:
    """A recording email transport; like a mail store, it de-duplicates on Message-ID.

    ``script`` holds exceptions to raise on the next sends (None accepts).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: list[Exception | None] = []
        self.attempts: list[Delivery] = []
        self.messages: dict[str, Delivery] = {}

    def send(self, delivery: Delivery) -> str:
        with self.lock:
            self.attempts.append(delivery)
            action = self.script.pop(0) if self.script else None
            if action is not None:
                raise action
            ref = message_id(delivery.send_id, "example.com")
            self.messages.setdefault(ref, delivery)
            return ref


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider().start()
    yield server
    server.stop()
    assert not server.errors, server.errors
    assert all(r.signed for r in server.requests), "every request must carry a valid signature"


@pytest.fixture
def sms(provider, clock) -> Iterator[HttpTransport]:
    # The transport reads Retry-After dates against the simulated clock.
    with HttpTransport("sms", provider.url, SECRET, timeout=0.5, clock=clock) as transport:
        yield transport


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


def build(tmp_path: Path, client, clock, transports, **overrides) -> Outreach:
    return Outreach(make_settings(tmp_path, **overrides), client=client, clock=clock, transports=transports)


@pytest.fixture
def app(tmp_path, client, clock, sms, mailbox) -> Outreach:
    app = build(tmp_path, client, clock, {"sms": sms, "email": mailbox})
    app.upsert_customer(YUI)
    return app


def delay_notice(app: Outreach, customer_id: str, n: int, when: datetime = T0_AT) -> str:
    """An order.delayed event; returns the one send it plans."""
    result = ingest(
        app,
        "order.delayed",
        customer_id,
        when.isoformat(),
        id=f"ev-{customer_id}-{n}",
        data={"order_id": f"O-{customer_id}-{n}", "new_eta": "2026-03-26"},
    )
    [send_id] = result.planned
    return send_id


def due_in_schedule(app: Outreach, send_id: str) -> datetime:
    """The send's due time in the schedule's sorted set (it must be there)."""
    due = app.schedule.due_of(send_id)
    assert due is not None, f"{send_id} is not in the schedule"
    return due


def history(app: Outreach, send_id: str, what: str | None = None) -> list[dict]:
    entries = app.schedule.history(send_id)
    return [e for e in entries if what is None or e["what"] == what]


def run_cli(monkeypatch, app: Outreach, *args: str) -> str:
    """Run an ``outreach`` command against this test's application (its Redis and clock)."""
    monkeypatch.setattr(cli_common, "_app", lambda **_: contextlib.nullcontext(app))
    result = CliRunner().invoke(outreach_cli.main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def dramatiq_keys(app: Outreach) -> list:
    return app.client.keys(app.settings.prefix + "dramatiq*")


# -- transient failures -----------------------------------------------------------------------


def test_503_then_200_retries_through_the_schedule_with_the_same_key(app, provider, clock):
    provider.script = [(503, {}, b"upstream unavailable")]
    send_id = delay_notice(app, "c-yui", 1)

    [first] = deliver_due(app)
    assert first.state == "retry_scheduled" and "HTTP 503" in first.reason
    send = app.schedule.get(send_id)
    assert send.state == "retry_scheduled" and send.attempts == 1
    # Back in our own sorted set with its backoff (60 s base, jitter 0.5-1.0) ...
    due = due_in_schedule(app, send_id)
    assert timedelta(seconds=30) <= due - T0_AT <= timedelta(seconds=60)
    assert to_ms(send.due) == to_ms(due)
    assert app.schedule.depth() == (1, 0)
    # ... and not a delayed message in Dramatiq's queues.
    assert dramatiq_keys(app) == []

    clock.set(due - timedelta(milliseconds=1))
    assert deliver_due(app) == []  # not due yet
    clock.set(due)
    [second] = deliver_due(app)
    assert second.state == "delivered" and second.reason == "sms"

    one, two = provider.requests
    assert one.key == two.key == send_id
    assert (one.status, two.status) == (503, 200)
    assert (one.json["attempt"], two.json["attempt"]) == (1, 2)
    assert one.json["to"] == two.json["to"] == YUI["phone"]
    assert set(provider.accepted) == {send_id}
    assert provider.accepted[send_id].repeats == 0
    assert app.schedule.get(send_id).state == "delivered"
    assert app.schedule.depth() == (0, 0)


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_honoured(app, provider, clock, form):
    wait = 300  # longer than the first backoff (30-60 s), so Retry-After decides
    value = str(wait) if form == "seconds" else format_datetime(T0_AT + timedelta(seconds=wait), usegmt=True)
    provider.script = [(429, {"Retry-After": value}, b'{"error": "slow down"}')]
    send_id = delay_notice(app, "c-yui", 1)

    [outcome] = deliver_due(app)
    assert outcome.state == "retry_scheduled" and "HTTP 429" in outcome.reason
    due = due_in_schedule(app, send_id)
    assert due >= T0_AT + timedelta(seconds=wait)
    assert due - T0_AT <= timedelta(seconds=wait + 1)

    clock.set(T0_AT + timedelta(seconds=wait - 1))
    assert deliver_due(app) == []
    assert len(provider.requests) == 1
    clock.set(due)
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert [r.status for r in provider.requests] == [429, 200]
    assert provider.keys_seen() == Counter({send_id: 2})


def test_exponential_backoff_with_jitter_then_failed_and_dead_lettered(
    tmp_path, client, clock, sms, mailbox, provider
):
    app = build(
        tmp_path,
        client,
        clock,
        {"sms": sms, "email": mailbox},
        max_attempts=5,
        retry_base_seconds=60,
        retry_max_seconds=200,
    )
    provider.default = (503, {}, b"upstream unavailable")
    sends = []
    for i in range(3):
        # No email address: nothing to fall through to once SMS's retries are spent.
        app.upsert_customer({**YUI, "id": f"c-yui{i}", "phone": f"+81901234567{i}", "email": None})
        sends.append(delay_notice(app, f"c-yui{i}", 1))

    delays: dict[str, dict[int, int]] = {s: {} for s in sends}
    finals = {}
    for _ in range(20):
        for outcome in deliver_due(app):
            send = app.schedule.get(outcome.send_id)
            if outcome.state == "retry_scheduled":
                attempt = send.attempts
                due_ms = to_ms(due_in_schedule(app, outcome.send_id))
                delays[outcome.send_id][attempt] = due_ms - to_ms(clock.now())
            else:
                finals[outcome.send_id] = outcome
        if len(finals) == len(sends):
            break
        clock.set(app.schedule.next_due())
    assert set(finals) == set(sends)

    for send_id in sends:
        # Backoff doubles from 60 s up to the 200 s cap; jitter takes 50-100 % of it.
        assert sorted(delays[send_id]) == [1, 2, 3, 4]
        for attempt, delay_ms in delays[send_id].items():
            backoff = min(60 * 2 ** (attempt - 1), 200) * 1000
            assert backoff // 2 - 1 <= delay_ms <= backoff, (attempt, delay_ms)
        assert finals[send_id].state == "failed"
        assert finals[send_id].reason == "attempts_exhausted"
        send = app.schedule.get(send_id)
        assert send.state == "failed" and send.attempts == 5
    # The jitter spreads sends that failed together.
    assert len({delays[s][1] for s in sends}) > 1
    assert provider.keys_seen() == Counter(dict.fromkeys(sends, 5))
    assert provider.accepted == {}

    letters = app.deadletters.list()
    assert sorted(d.payload["send_id"] for d in letters) == sorted(sends)
    for letter in letters:
        assert letter.kind == "send"
        assert letter.reason.startswith("attempts_exhausted: sms: ")
        assert "HTTP 503: upstream unavailable (attempt 5)" in letter.reason
    assert app.schedule.depth() == (0, 0)


def test_a_retry_landing_outside_the_window_waits_for_it_in_the_customers_zone(
    tmp_path, client, clock, sms, mailbox, provider
):
    app = build(tmp_path, client, clock, {"sms": sms, "email": mailbox}, retry_base_seconds=600)
    app.upsert_customer({**YUI, "id": "c-nyc", "zone": "America/New_York", "country": "US"})
    # 21:58 in New York: the window (07:00-22:00) closes before the 300-600 s backoff ends.
    clock.set(at("2026-03-21T01:58:00Z"))
    send_id = delay_notice(app, "c-nyc", 1, clock.now())
    provider.script = [(503, {}, b"maintenance")]

    [outcome] = deliver_due(app)
    assert outcome.state == "retry_scheduled"
    due = due_in_schedule(app, send_id)
    ny = zone("America/New_York")
    assert due.astimezone(ny).isoformat() == "2026-03-21T07:00:00-04:00"
    [entry] = history(app, send_id, "retry_scheduled")
    assert "attempt 2 at 2026-03-21T07:00:00-04:00" in entry["text"]

    clock.set(at("2026-03-21T02:10:00Z"))  # the backoff is over, the window is closed
    assert deliver_due(app) == []
    clock.set(due)
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    [delivered] = history(app, send_id, "delivered")
    assert from_ms(delivered["at_ms"]).astimezone(ny).hour == 7


def test_a_response_slower_than_the_timeout_is_transient_and_the_retry_is_deduplicated(app, provider, clock):
    # The provider takes the message but answers after the transport gave up (0.5 s):
    # the retry is a repeat of a message the provider already has.
    provider.script = ["slow"]
    send_id = delay_notice(app, "c-yui", 1)

    [outcome] = deliver_due(app)
    assert outcome.state == "retry_scheduled"
    assert "no response within 0.5s" in outcome.reason
    provider.release.set()
    clock.set(due_in_schedule(app, send_id))
    assert [o.state for o in deliver_due(app)] == ["delivered"]

    assert provider.keys_seen() == Counter({send_id: 2})
    # Accepted as new once; the retry is a repeat the provider answered as before.
    assert list(provider.accepted) == [send_id]
    accepted = provider.accepted[send_id]
    assert accepted.repeats == 1
    assert (accepted.body["attempt"], accepted.repeat_bodies[0]["attempt"]) == (1, 2)
    [delivered] = history(app, send_id, "delivered")
    assert delivered["reference"] == accepted.reference


def test_a_refused_connection_is_transient(app, provider, clock, sms):
    with HttpTransport("sms", f"http://127.0.0.1:{free_port()}/v1/sms", SECRET, timeout=0.5) as closed:
        app.transports["sms"] = closed
        send_id = delay_notice(app, "c-yui", 1)
        [outcome] = deliver_due(app)
    assert outcome.state == "retry_scheduled"
    assert "ConnectionRefused" in outcome.reason
    [entry] = history(app, send_id, "retry_scheduled")
    assert entry["channel"] == "sms" and "ConnectionRefused" in entry["text"]

    app.transports["sms"] = sms  # the provider is reachable again
    clock.set(due_in_schedule(app, send_id))
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert provider.keys_seen() == Counter({send_id: 1})


# -- permanent failures -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_a_permanent_refusal_suppresses_the_address_and_falls_through(app, provider, mailbox, status):
    provider.script = [(status, {}, b'{"error": "unknown subscriber"}')]
    send_id = delay_notice(app, "c-yui", 1)

    [outcome] = deliver_due(app)
    # Preferred channel first (sms), then the step's next channel (email); no retry.
    assert outcome.state == "delivered" and outcome.reason == "email"
    assert len(provider.requests) == 1
    assert app.policy.is_suppressed("sms", YUI["phone"])
    assert [d.send_id for d in mailbox.attempts] == [send_id]
    assert list(mailbox.messages) == [f"<{send_id}@example.com>"]
    assert app.schedule.get(send_id).channel == "email"
    [fallthrough] = history(app, send_id, "fallthrough")
    assert fallthrough["channel"] == "sms"
    assert f"HTTP {status}" in fallthrough["text"] and "unknown subscriber" in fallthrough["text"]
    assert f"{YUI['phone']} is suppressed for sms" in fallthrough["text"]
    assert [e["what"] for e in app.schedule.history(send_id)] == ["planned", "fallthrough", "delivered"]
    assert app.deadletters.count() == 0

    # The next message does not try the suppressed number at all.
    second = delay_notice(app, "c-yui", 2)
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert len(provider.requests) == 1
    [skipped] = history(app, second, "fallthrough")
    assert skipped["text"] == f"sms: {YUI['phone']} is on the suppression list"


def test_every_channel_refusing_fails_the_send_and_replay_works_after_the_fix(
    app, provider, mailbox, monkeypatch
):
    provider.script = [(410, {}, b'{"error": "number deactivated"}')]
    mailbox.script = [PermanentChannelError("550 5.1.1 no such mailbox")]
    send_id = delay_notice(app, "c-yui", 1)

    [outcome] = deliver_due(app)
    assert outcome.state == "failed" and outcome.reason == "permanent_channel_error"
    send = app.schedule.get(send_id)
    assert send.state == "failed" and send.reason == "permanent_channel_error"
    assert app.policy.is_suppressed("sms", YUI["phone"])
    assert app.policy.is_suppressed("email", YUI["email"])
    assert [e.get("channel") for e in history(app, send_id, "fallthrough")] == ["sms", "email"]

    letters = json.loads(run_cli(monkeypatch, app, "dead-letters", "list", "--json"))
    [letter] = letters
    assert letter["kind"] == "send" and letter["payload"] == {"send_id": send_id}
    assert "HTTP 410" in letter["reason"] and "number deactivated" in letter["reason"]
    assert "550 5.1.1 no such mailbox" in letter["reason"]

    # The cause is fixed: the customer has a new number, the provider takes it.
    app.upsert_customer({**YUI, "phone": "+819087654321"})
    out = run_cli(monkeypatch, app, "dead-letters", "replay", letter["id"])
    assert f"replayed send {letter['id']}" in out
    assert app.schedule.get(send_id).state == "scheduled"
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert app.schedule.get(send_id).channel == "sms"
    assert [r.json["to"] for r in provider.requests] == [YUI["phone"], "+819087654321"]
    assert list(provider.accepted) == [send_id]
    assert app.deadletters.count() == 0
    # After the replay the old address, still suppressed for email, is noted as passed over.
    whats = [e["what"] for e in app.schedule.history(send_id)]
    assert whats[whats.index("failed") :] == ["failed", "replayed", "fallthrough", "delivered"]
    assert history(app, send_id, "fallthrough")[-1]["text"] == (
        f"email: {YUI['email']} is on the suppression list"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"phone": None}, "sms: no address"),
        ({"channel_consent": {"sms": False}}, "sms: the customer opted out of this channel"),
    ],
    ids=["no-phone", "opted-out-of-sms"],
)
def test_a_customer_unreachable_by_sms_gets_email_with_the_reason(app, provider, mailbox, change, reason):
    app.upsert_customer({**YUI, **change})
    send_id = delay_notice(app, "c-yui", 1)
    assert [(o.state, o.reason) for o in deliver_due(app)] == [("delivered", "email")]
    assert provider.requests == []
    assert [d.address for d in mailbox.attempts] == [YUI["email"]]
    [entry] = history(app, send_id, "fallthrough")
    assert entry["text"] == reason


def test_a_customer_who_prefers_email_gets_email_first(app, provider, mailbox):
    app.upsert_customer({**YUI, "channel": "email"})
    delay_notice(app, "c-yui", 1)
    assert [(o.state, o.reason) for o in deliver_due(app)] == [("delivered", "email")]
    assert provider.requests == []


# -- rate limits ------------------------------------------------------------------------------


def test_the_sms_rate_limit_defers_instead_of_exceeding_the_bucket(
    tmp_path, client, clock, sms, mailbox, provider
):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    (config / "channels.toml").write_text(declared("[email]\n\n[sms]\nrate = 2\nburst = 2\n"))
    app = build(tmp_path, client, clock, {"sms": sms, "email": mailbox}, config_dir=config)
    rate, burst = 2, 2
    assert (app.channels["sms"].rate, app.channels["sms"].burst) == (rate, burst)
    sends = []
    for i in range(10):
        app.upsert_customer({**YUI, "id": f"c-r{i}", "phone": f"+8190111100{i:02d}"})
        sends.append(delay_notice(app, f"c-r{i}", 1))

    first = deliver_due(app)
    assert Counter(o.state for o in first) == {"delivered": 2, "deferred": 8}
    assert {o.reason for o in first if o.state == "deferred"} == {"rate_limited"}
    sent_at = {o.send_id: clock.now() for o in first if o.state == "delivered"}
    for o in first:
        if o.state == "deferred":
            [entry] = history(app, o.send_id, "deferred")
            assert entry["reason"] == "rate_limited" and "sms is at its rate of 2/s" in entry["text"]
            assert due_in_schedule(app, o.send_id) > clock.now()

    deferrals = 8
    for _ in range(600):  # 100 ms steps, at most a simulated minute
        if len(sent_at) == len(sends):
            break
        clock.advance(timedelta(milliseconds=100))
        for o in deliver_due(app):
            if o.state == "delivered":
                sent_at[o.send_id] = clock.now()
            else:
                assert (o.state, o.reason) == ("deferred", "rate_limited")
                deferrals += 1
    assert set(sent_at) == set(sends)
    assert len(provider.requests) == 10 and len(provider.accepted) == 10
    assert all(o.reason == "sms" for o in first if o.state == "delivered")

    # Token-bucket conformance: any stretch of L seconds holds at most burst + rate * L sends.
    times = sorted(to_ms(t) for t in sent_at.values())
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - times[i]) / 1000 + 1e-9, (i, j, times)
    per_second = Counter((t - to_ms(T0_AT)) // 1000 for t in times)
    assert max(per_second.values()) <= burst + rate
    # Eight sends at 2/s after the burst: about 4 s, with deferral jitter a little more.
    assert times[-1] - to_ms(T0_AT) <= 10_000
    print(f"rate limit: sends per simulated second {dict(sorted(per_second.items()))}, {deferrals} deferrals")


# -- explain ----------------------------------------------------------------------------------


def test_explain_shows_the_states_and_every_attempt(app, provider, clock, sms, monkeypatch):
    states = []

    class Watching:
        """The sms transport, noting the send's state at the moment of the hand-over."""

        def send(self, delivery: Delivery) -> str:
            states.append(app.schedule.get(delivery.send_id).state)
            return sms.send(delivery)

    app.transports["sms"] = Watching()
    provider.script = [(503, {}, b'{"error": "carrier timeout"}')]
    send_id = delay_notice(app, "c-yui", 1)
    seen = [app.schedule.get(send_id).state]
    claims = app.schedule.claim(10)
    seen.append(app.schedule.get(send_id).state)
    app.deliver(claims)
    seen.append(app.schedule.get(send_id).state)
    clock.set(due_in_schedule(app, send_id))
    deliver_due(app)
    seen.append(app.schedule.get(send_id).state)
    assert seen == ["scheduled", "claimed", "retry_scheduled", "delivered"]
    assert states == ["sending", "sending"]

    out = json.loads(run_cli(monkeypatch, app, "explain", send_id, "--json"))
    assert out["send"]["state"] == "delivered" and out["send"]["channel"] == "sms"
    assert out["send"]["attempts"] == "2"
    planned, retry, delivered = out["history"]
    assert planned["what"] == "planned"
    assert retry["what"] == "retry_scheduled"
    assert (retry["at_ms"], retry["channel"], retry["attempt"]) == (to_ms(T0_AT), "sms", 1)
    assert 'HTTP 503: {"error": "carrier timeout"}' in retry["text"]
    assert delivered["what"] == "delivered"
    assert (delivered["channel"], delivered["attempt"]) == ("sms", 2)
    assert delivered["at_ms"] == to_ms(clock.now())
    assert delivered["reference"] == provider.accepted[send_id].reference

    text = run_cli(monkeypatch, app, "explain", send_id)
    assert "state     delivered" in text
    assert "retry_scheduled" in text and "HTTP 503" in text
    assert f"delivered by sms to {YUI['phone']}" in text


# -- an attempt that outlives its lease ------------------------------------------------------


@pytest.mark.parametrize("first", ["delivered", "transient"])
def test_an_attempt_that_outlives_its_lease_is_not_followed_by_another_delivery(
    app, provider, clock, sms, first
):
    """The reaper returns a send whose hand-over is still running (the documented repeat).

    "delivered": the slow attempt then succeeds, before the pump claims the send again.
    "transient": the pump has claimed it again (token 2); the slow attempt then fails
    transiently, and the new claim delivers. Either way the send is delivered, and
    nothing may be handed over after that.
    """
    again: list = []

    class Overrun:
        """The sms transport; during the first hand-over the lease runs out."""

        def send(self, delivery: Delivery) -> str:
            if not again and delivery.attempt == 1:
                clock.advance(timedelta(seconds=app.settings.lease_seconds + 1))
                assert app.schedule.reap(10) == [delivery.send_id]
                if first == "transient":
                    again.extend(app.schedule.claim(10))  # the pump's next tick
                else:
                    again.append(None)
            return sms.send(delivery)

    app.transports["sms"] = Overrun()
    provider.script = [] if first == "delivered" else [(503, {}, b"gateway timeout")]
    send_id = delay_notice(app, "c-yui", 1)
    outcomes = app.deliver(app.schedule.claim(10))  # the first attempt
    if first == "delivered":
        assert [o.state for o in outcomes] == ["delivered"]
    else:
        assert [o.state for o in outcomes] == ["retry_scheduled"]  # a stale outcome
        assert [o.state for o in app.deliver(again)] == ["delivered"]
    assert app.schedule.get(send_id).state == "delivered"
    requests = len(provider.requests)

    clock.advance(timedelta(hours=1))
    deliver_due(app)
    assert app.schedule.get(send_id).state == "delivered"
    assert len(provider.requests) == requests, "a delivered send was handed over again"
    assert provider.accepted[send_id].repeats == 0
    assert [e["what"] for e in app.schedule.history(send_id)].count("delivered") == 1


# -- deferrals are not delivery attempts -----------------------------------------------------


def test_rate_limit_deferrals_do_not_use_up_delivery_attempts(
    tmp_path, client, clock, sms, mailbox, provider
):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    (config / "channels.toml").write_text(declared("[sms]\nrate = 1\nburst = 1\n"))
    app = build(tmp_path, client, clock, {"sms": sms, "email": mailbox}, config_dir=config, max_attempts=5)
    app.upsert_customer(YUI)
    send_id = delay_notice(app, "c-yui", 1)
    for _ in range(4):
        # Other sends take the one token each time this send comes due.
        assert app.limiter.acquire("sms", 1, 1) == 0
        assert [(o.state, o.reason) for o in deliver_due(app)] == [("deferred", "rate_limited")]
        clock.set(due_in_schedule(app, send_id))
    assert provider.requests == []

    provider.script = [(503, {}, b"upstream unavailable")]
    [outcome] = deliver_due(app)  # the first hand-over
    assert len(provider.requests) == 1
    assert outcome.state == "retry_scheduled", f"{outcome}: one provider error ended the send"


# -- a provider with a batch endpoint ---------------------------------------------------------


@pytest.fixture
def batch_app(tmp_path, client, clock, provider, mailbox) -> Iterator[Outreach]:
    """SMS to a provider's batch endpoint: one signed request carries a deliver batch's messages."""
    sms = HttpBatchTransport(
        "sms", provider.url, SECRET, timeout=0.5, clock=clock, batch_url=provider.batch_url
    )
    app = build(tmp_path, client, clock, {"sms": sms, "email": mailbox})
    for i in range(10):  # the shipped sms rate lets 10 go at once
        app.upsert_customer({**YUI, "id": f"c-yui{i}", "phone": f"+8190123456{i:02d}"})
    yield app
    sms.close()


def test_a_batch_endpoint_takes_a_deliver_batch_in_one_signed_request(batch_app, provider):
    sends = {delay_notice(batch_app, f"c-yui{i}", 1) for i in range(10)}
    outcomes = deliver_due(batch_app)
    assert {(o.state, o.reason) for o in outcomes} == {("delivered", "sms")}
    [request] = provider.requests
    assert request.path == "/v1/sms/batch" and request.signed
    assert {m["send_id"] for m in request.json["messages"]} == sends
    assert set(provider.accepted) == sends
    # Every send keeps the provider's reference for its own message.
    references = {h["reference"] for s in sends for h in history(batch_app, s, "delivered")}
    assert references == {a.reference for a in provider.accepted.values()}


def test_a_batch_answer_is_read_per_message(batch_app, provider, mailbox, clock):
    sends = [delay_notice(batch_app, f"c-yui{i}", 1) for i in range(5)]
    provider.item_status = {sends[1]: 503, sends[2]: 400}
    outcomes = {o.send_id: o for o in deliver_due(batch_app)}
    # Only the message the provider could not take now is retried, alone.
    assert outcomes[sends[1]].state == "retry_scheduled"
    # A refused address falls through to email, as it would with one request per message.
    assert (outcomes[sends[2]].state, outcomes[sends[2]].reason) == ("delivered", "email")
    assert [d.send_id for d in mailbox.attempts] == [sends[2]]
    assert [e["what"] for e in history(batch_app, sends[2])] == ["planned", "fallthrough", "delivered"]
    assert {outcomes[s].state for s in (sends[0], sends[3], sends[4])} == {"delivered"}
    provider.item_status = {}
    clock.set(due_in_schedule(batch_app, sends[1]))
    assert [(o.send_id, o.state) for o in deliver_due(batch_app)] == [(sends[1], "delivered")]
    assert [len(r.json["messages"]) for r in provider.requests] == [5, 1]
    assert all(a.repeats == 0 for a in provider.accepted.values())


def test_a_batch_request_that_fails_retries_every_message_and_none_is_taken_twice(batch_app, provider, clock):
    sends = {delay_notice(batch_app, f"c-yui{i}", 1) for i in range(4)}
    provider.script = [(503, {}, b"upstream unavailable")]
    assert {o.state for o in deliver_due(batch_app)} == {"retry_scheduled"}
    assert provider.accepted == {}
    clock.set(max(due_in_schedule(batch_app, s) for s in sends))
    assert {o.state for o in deliver_due(batch_app)} == {"delivered"}
    assert set(provider.accepted) == sends
