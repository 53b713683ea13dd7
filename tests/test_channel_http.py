"""The signed-JSON HTTP transport against a real local server that injects failures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from outreach.channels.base import Delivery
from outreach.channels.http import HttpTransport, parse_retry_after
from outreach.channels.signed_json import sign, verify_signature
from outreach.clock import SimulatedClock
from outreach.errors import ConfigError, PermanentChannelError, TransientChannelError

SECRET = "whsec-test-0123456789"
T0 = datetime(2026, 3, 20, 6, 0, tzinfo=UTC)

DELIVERY = Delivery(
    send_id="9b1c77e2",
    attempt=1,
    customer_id="c-jonas",
    journey="order_delay",
    step="notice",
    channel="sms",
    address="+4915205550102",
    locale="de_DE",
    subject=None,
    text="Hallo Jonas, Ihre Bestellung verspätet sich – neue Lieferung Donnerstag. 📦",
    html=None,
    utc=T0,
    local=T0.astimezone(),
    category="transactional",
    name="Jonas",
)


class Handler(BaseHTTPRequestHandler):
    """Records each request; answers with the next scripted response (200 + an id by default)."""

    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed
    server: Provider

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(
            {"path": self.path, "headers": self.headers, "body": body, "peer": self.client_address}
        )
        action = self.server.script.pop(0) if self.server.script else (200, {}, b'{"id": "prov-1"}')
        if action == "drop":
            self.close_connection = True  # hang up without a word
            return
        if action == "slow":
            self.server.release.wait(10)
            action = (200, {}, b"{}")
        status, headers, payload = action
        close_after = headers.pop("x-test-close", None)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if close_after:
            # Close without saying "Connection: close": the client's kept connection goes stale.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class Provider(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.script: list = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/messages?account=a1"

    def handle_error(self, request, client_address) -> None:
        # A client that timed out and left makes the late answer fail: expected here.
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    # A short poll interval keeps shutdown() (and so each test) quick.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def transport(provider, clock) -> Iterator[HttpTransport]:
    with HttpTransport(
        "sms", provider.url, SECRET, timeout=5, headers={"X-Account": "outreach"}, clock=clock
    ) as http:
        yield http


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- success -------------------------------------------------------------------------------


def test_a_signed_idempotent_json_post(provider, transport):
    assert transport.send(DELIVERY) == "prov-1"
    [request] = provider.requests
    assert request["path"] == "/v1/messages?account=a1"
    headers, body = request["headers"], request["body"]
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == DELIVERY.send_id
    assert headers["X-Outreach-Timestamp"] == str(int(T0.timestamp()))
    assert headers["X-Account"] == "outreach"
    assert verify_signature(SECRET, body, headers["X-Outreach-Signature"])
    assert headers["X-Outreach-Signature"].startswith("sha256=")
    assert not verify_signature("another secret", body, headers["X-Outreach-Signature"])
    assert not verify_signature(SECRET, body + b" ", headers["X-Outreach-Signature"])
    assert json.loads(body) == {
        "send_id": "9b1c77e2",
        "attempt": 1,
        "channel": "sms",
        "to": "+4915205550102",
        "locale": "de_DE",
        "subject": None,
        "text": DELIVERY.text,
        "html": None,
        "customer_id": "c-jonas",
        "journey": "order_delay",
        "step": "notice",
        "category": "transactional",
    }


@pytest.mark.parametrize(
    ("status", "payload", "reference"),
    [
        (200, b'{"id": "SM123"}', "SM123"),
        (202, b'{"id": 42, "status": "queued"}', "42"),
        (200, b'{"status": "ok"}', "sms:9b1c77e2"),
        (200, b"accepted", "sms:9b1c77e2"),
        (204, b"", "sms:9b1c77e2"),
        (201, b"[1, 2]", "sms:9b1c77e2"),
    ],
)
def test_the_reference_is_the_providers_id_or_the_send_id(status, payload, reference, provider, transport):
    provider.script = [(status, {"Content-Type": "application/json"}, payload)]
    assert transport.send(DELIVERY) == reference


def test_connections_are_reused_per_thread(provider, transport):
    for attempt in (1, 2, 3):
        transport.send(replace(DELIVERY, attempt=attempt))
    assert len({r["peer"] for r in provider.requests}) == 1
    other = threading.Thread(target=transport.send, args=(DELIVERY,))
    other.start()
    other.join()
    assert len({r["peer"] for r in provider.requests}) == 2


def test_a_connection_the_server_closed_is_replaced(provider, transport):
    provider.script = [(200, {"x-test-close": "1"}, b'{"id": "a"}'), (200, {}, b'{"id": "b"}')]
    assert transport.send(DELIVERY) == "a"
    assert transport.send(DELIVERY) == "b"
    assert len({r["peer"] for r in provider.requests}) == 2


def test_credentials_in_the_url_become_basic_auth(provider, clock):
    url = provider.url.replace("http://", "http://acct%40x:p%3Ass@")
    with HttpTransport("webhook", url, SECRET, timeout=5, clock=clock) as http:
        http.send(DELIVERY)
    assert provider.requests[0]["headers"]["Authorization"] == "Basic YWNjdEB4OnA6c3M="


# -- failures ------------------------------------------------------------------------------


def test_503_then_200_is_transient_then_delivered(provider, transport):
    provider.script = [(503, {}, b"upstream unavailable"), (200, {}, b'{"id": "ok"}')]
    with pytest.raises(TransientChannelError, match="HTTP 503: upstream unavailable") as caught:
        transport.send(DELIVERY)
    assert caught.value.retry_after is None
    assert transport.send(replace(DELIVERY, attempt=2)) == "ok"
    first, second = provider.requests
    # The retry carries the same idempotency key: the provider can de-duplicate.
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"] == "9b1c77e2"
    assert verify_signature(SECRET, second["body"], second["headers"]["X-Outreach-Signature"])


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        ("30", 30.0),
        (format_datetime(T0 + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(T0 - timedelta(seconds=90), usegmt=True), 0.0),
        ("soon", None),
    ],
)
def test_429_honours_retry_after(retry_after, seconds, provider, transport):
    provider.script = [(429, {"Retry-After": retry_after}, b'{"error": "slow down"}')]
    with pytest.raises(TransientChannelError, match="HTTP 429") as caught:
        transport.send(DELIVERY)
    assert caught.value.retry_after == seconds


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_transient(status, provider, transport):
    provider.script = [(status, {"Retry-After": "5"}, b"oops")]
    with pytest.raises(TransientChannelError, match=f"HTTP {status}") as caught:
        transport.send(DELIVERY)
    assert caught.value.retry_after == 5.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 418, 301])
def test_client_errors_are_permanent_with_the_body(status, provider, transport):
    body = json.dumps({"error": "invalid number", "detail": "x" * 2000}).encode()
    provider.script = [(status, {"Content-Type": "application/json"}, body)]
    with pytest.raises(PermanentChannelError, match=f"HTTP {status}: .*invalid number") as caught:
        transport.send(DELIVERY)
    assert str(caught.value).endswith(body.decode()[:500])


def test_a_slow_provider_times_out_as_transient(provider, clock):
    provider.script = ["slow"]
    with HttpTransport("sms", provider.url, SECRET, timeout=0.3, clock=clock) as http:
        with pytest.raises(TransientChannelError, match="no response within 0.3s"):
            http.send(DELIVERY)
        provider.release.set()
        # The timed-out connection was dropped; the next send uses a fresh one.
        assert http.send(DELIVERY) == "prov-1"


def test_a_hang_up_without_a_response_is_transient(provider, transport):
    provider.script = ["drop"]
    with pytest.raises(TransientChannelError, match="RemoteDisconnected"):
        transport.send(DELIVERY)
    # Not retried on the spot: the connection was new, so this was no stale keep-alive.
    assert len(provider.requests) == 1


def test_connection_refused_is_transient(clock):
    url = f"http://127.0.0.1:{_free_port()}/hook"
    with (
        HttpTransport("webhook", url, SECRET, timeout=2, clock=clock) as http,
        pytest.raises(TransientChannelError, match="ConnectionRefused"),
    ):
        http.send(DELIVERY)


# -- helpers -------------------------------------------------------------------------------


def test_verify_signature_rejects_malformed_headers():
    body = b'{"a":1}'
    good = sign(SECRET, body)
    assert verify_signature(SECRET, body, good)
    assert verify_signature(SECRET, body, f"  {good} ")
    for bad in [None, "", good.removeprefix("sha256="), "sha1=" + good[7:], good.upper(), "sha256=zz"]:
        assert not verify_signature(SECRET, body, bad)
    assert not verify_signature("", body, good)


def test_parse_retry_after():
    assert parse_retry_after(None, T0) is None
    assert parse_retry_after(" 12 ", T0) == 12.0
    assert parse_retry_after("-3", T0) == 0.0
    assert parse_retry_after("inf", T0) is None
    assert parse_retry_after("Fri, 20 Mar 2026 06:02:00 GMT", T0) == 120.0
    assert parse_retry_after("yesterday", T0) is None


@pytest.mark.parametrize(
    ("url", "secret", "problem"),
    [
        ("ftp://example.com/x", SECRET, "http:// or https://"),
        ("https:///nohost", SECRET, "http:// or https://"),
        ("https://example.com/x", "", "secret is empty"),
        ("https://example.com:99999/x", SECRET, "not a valid URL"),
    ],
)
def test_bad_settings_are_config_errors(url, secret, problem):
    with pytest.raises(ConfigError, match=problem):
        HttpTransport("sms", url, secret)


@pytest.mark.parametrize(
    ("url", "suffix", "path"),
    [
        ("http://h/outreach/", "", "/outreach/"),
        ("http://h/outreach", "", "/outreach"),
        ("http://h", "", "/"),
        ("http://h/api/", "/v2/send", "/api/v2/send"),
        ("http://h/hook?x=1", "", "/hook?x=1"),
    ],
)
def test_the_configured_path_is_kept_exactly(url, suffix, path):
    from outreach.channels.client import HttpClient

    assert HttpClient("webhook", url).path(suffix) == path
