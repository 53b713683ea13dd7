"""A channel served by several providers: the circuit breaker, the failover to the next provider,
the fall-through to the next channel when a channel is down, and the history that says so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from outreach import Outreach
from outreach.channels.base import Delivery, Handed
from outreach.channels.failover import Breaker, Failover, Provider
from outreach.errors import PermanentChannelError, TransientChannelError

from .conftest import T0, make_settings
from .helpers import at, declared, deliver_due, plan_send, starter_project
from .loopback import Loopback, serving


class Gateway(Loopback):
    """An HTTP SMS gateway that answers 503 while ``down`` is set, else 200 with its own ids."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.down = False
        #: Takes the message, then answers too late for the client's timeout.
        self.slow = False
        self.taken: list[str] = []
        self.refused = 0

    @property
    def url(self) -> str:
        return f"{super().url}/messages"

    def reply(self, request: dict) -> tuple[int, dict[str, str], object]:
        if self.down:
            self.refused += 1
            return 503, {}, b'{"error": "maintenance"}'
        self.taken.append(json.loads(request["body"])["send_id"])
        if self.slow:
            time.sleep(0.6)
        return 200, {}, {"id": f"{self.name}-{len(self.taken)}"}


@pytest.fixture
def gateways() -> Iterator[tuple[Gateway, Gateway]]:
    with serving(Gateway("primary")) as primary, serving(Gateway("backup")) as backup:
        yield primary, backup


def _project(tmp_path, primary: str, backup: str):
    channels = declared(f"""
[sms]
address = "phone"
providers = ["primary", "backup"]
breaker = {{ failures = 3, open_seconds = 60 }}

[sms.primary]
kind = "http"
url = "{primary}"
secret = "s-primary"
timeout = 0.3

[sms.backup]
kind = "http"
url = "{backup}"
secret = "s-backup"
""")
    return starter_project(tmp_path / "project", files={"config/channels.toml": channels})


@pytest.fixture
def app(client, clock, tmp_path, gateways) -> Iterator[Outreach]:
    config, templates = _project(tmp_path, gateways[0].url, gateways[1].url)
    application = Outreach(
        make_settings(tmp_path, config_dir=config, templates_dir=templates, retry_base_seconds=1),
        client=client,
        clock=clock,
    )
    application.upsert_customer(
        {"id": "c-ana", "name": "Ana", "phone": "+5511955550100", "email": "ana@example.com.br",
         "locale": "pt_BR", "zone": "America/Sao_Paulo", "country": "BR", "channel": "sms"}
    )  # fmt: skip
    yield application
    application.close()


def _sms(app: Outreach, label: str, channels: str = '["sms"]') -> str:
    return plan_send(app, label, app.clock.now(), "c-ana", data=ORDER, channels=channels,
                     category="transactional", zone="America/Sao_Paulo", country="BR")  # fmt: skip


ORDER = {"order_id": "A-1001", "new_eta": "2026-03-27", "original_eta": "2026-03-24"}


def _entries(app: Outreach, send_id: str, what: str) -> list[dict]:
    return [e for e in app.schedule.history(send_id) if e["what"] == what]


def _delivered(app: Outreach, send_id: str) -> dict:
    return _entries(app, send_id, "delivered")[0]


def test_the_backup_takes_over_while_the_first_is_down_and_gives_it_back(app, clock, gateways):
    primary, backup = gateways
    first = _sms(app, "before")
    deliver_due(app)
    assert primary.taken == [first] and _delivered(app, first)["provider"] == "primary"

    # The first provider answers 503 for a minute: three failures open its circuit.
    primary.down = True
    during = []
    for n in range(6):
        clock.advance(timedelta(seconds=10))
        during.append(_sms(app, f"during-{n}"))
        deliver_due(app)
    assert backup.taken == during, "every send of that minute went out once, through the backup"
    assert primary.refused == 3, "once the circuit is open the first provider is not even asked"
    failover = _entries(app, during[0], "failover")
    assert failover and "HTTP 503" in failover[0]["text"]
    assert _delivered(app, during[0])["provider"] == "backup"
    assert "circuit open" in _entries(app, during[-1], "failover")[0]["text"]

    # It is back: once the circuit's minute is over, the next message tries it again and it keeps them.
    primary.down = False
    clock.advance(timedelta(seconds=61))
    after = [_sms(app, "after-1"), _sms(app, "after-2")]
    deliver_due(app)
    assert primary.taken[0] == first and sorted(primary.taken[1:]) == sorted(after)
    assert [_delivered(app, s)["provider"] for s in after] == ["primary", "primary"]
    assert backup.taken == during


def test_a_channel_whose_providers_are_all_down_falls_through_to_the_next_channel(app, clock, gateways):
    for gateway in gateways:
        gateway.down = True
    send_id = _sms(app, "both-down", channels='["sms", "email"]')
    outcomes = deliver_due(app)
    assert [o.state for o in outcomes] == ["retry_scheduled"]
    # Three more rounds open both circuits; then the send stops waiting for SMS and takes email.
    for _ in range(5):
        clock.advance(timedelta(minutes=20))
        deliver_due(app)
        if app.schedule.get(send_id).state == "delivered":
            break
    send = app.schedule.get(send_id)
    assert send.state == "delivered" and _delivered(app, send_id)["channel"] == "email"
    texts = [e["text"] for e in _entries(app, send_id, "fallthrough")]
    assert any("sms:" in t and ("circuit" in t or "retries are spent" in t) for t in texts)


def test_a_permanent_refusal_of_the_address_is_not_retried_with_the_next_provider():
    class Refuses:
        def send(self, delivery: Delivery) -> str:
            raise PermanentChannelError("21211 invalid To number", address=True)

    class Takes:
        calls = 0

        def send(self, delivery: Delivery) -> str:
            Takes.calls += 1
            return "x"

    failover = Failover("sms", [Provider("a", Refuses()), Provider("b", Takes())])
    with pytest.raises(PermanentChannelError) as caught:
        failover.send(_delivery())
    assert caught.value.address and Takes.calls == 0


def test_a_provider_that_refuses_our_credentials_hands_over_to_the_next():
    class BadKey:
        def send(self, delivery: Delivery) -> str:
            raise PermanentChannelError("HTTP 401: bad key", address=False)

    class Takes:
        def send(self, delivery: Delivery) -> str:
            return "ref-b"

    answer = Failover("sms", [Provider("a", BadKey()), Provider("b", Takes())]).send(_delivery())
    assert isinstance(answer, Handed) and (answer.provider, answer.reference) == ("b", "ref-b")
    assert "HTTP 401" in answer.notes[0]


def test_every_circuit_open_is_transient_with_the_time_the_first_reopens(clock):
    class Down:
        def send(self, delivery: Delivery) -> str:
            raise TransientChannelError("HTTP 503")

    failover = Failover("sms", [Provider("a", Down()), Provider("b", Down())], failures=1,
                        open_seconds=30, clock=clock)  # fmt: skip
    with pytest.raises(TransientChannelError) as first:
        failover.send(_delivery())
    assert not first.value.circuit_open
    clock.advance(timedelta(seconds=10))
    with pytest.raises(TransientChannelError) as second:
        failover.send(_delivery())
    assert second.value.circuit_open and second.value.retry_after == pytest.approx(20)


def _delivery() -> Delivery:
    now = at(T0)
    return Delivery("sid", 1, "c", "j", "s", "sms", "+15550100", "en", None, "hi", None, now, now)


class _Takes:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, delivery: Delivery) -> str:
        self.calls += 1
        return "ref-b"


@pytest.mark.parametrize(
    "lost",
    [
        PermanentChannelError(
            "accepted, but an answer without a message sid", address=False, elsewhere=False
        ),
        TransientChannelError("no response within 10s", elsewhere=False),
    ],
)
def test_a_message_the_first_provider_may_have_taken_goes_to_no_other(lost):
    class MayHaveTaken:
        def send(self, delivery: Delivery) -> str:
            raise lost

    backup = _Takes()
    with pytest.raises(type(lost)):
        Failover("sms", [Provider("a", MayHaveTaken()), Provider("b", backup)]).send(_delivery())
    assert backup.calls == 0, "a second provider could deliver it twice"


def test_a_timeout_after_sending_is_not_handed_on_but_a_refused_connection_is(clock):
    """The HTTP client tells the two apart: nothing sent (refused) may go elsewhere at once."""
    import socket

    from outreach.channels.client import HttpClient

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientChannelError) as refused:
        HttpClient("sms", f"http://127.0.0.1:{port}", timeout=1, clock=clock).request("POST", "/", b"{}")
    assert refused.value.elsewhere

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        client = HttpClient("sms", f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.3, clock=clock)
        with pytest.raises(TransientChannelError) as silent:
            client.request("POST", "/", b"{}")  # accepted by the kernel, never answered
        assert not silent.value.elsewhere and "no response within" in str(silent.value)
    finally:
        listener.close()


def test_one_skipped_and_the_rest_refusing_for_their_own_reasons_is_later_not_never(clock):
    class Down:
        def send(self, delivery: Delivery) -> str:
            raise TransientChannelError("HTTP 503")

    class BadKey:
        def send(self, delivery: Delivery) -> str:
            raise PermanentChannelError("HTTP 401", address=False)

    failover = Failover("sms", [Provider("a", Down()), Provider("b", BadKey())], failures=1,
                        open_seconds=60, clock=clock)  # fmt: skip
    with pytest.raises(TransientChannelError):
        failover.send(_delivery())  # a fails (its circuit opens), b refuses
    with pytest.raises(TransientChannelError) as later:
        failover.send(_delivery())  # a skipped, b refuses: try again when a is back
    assert later.value.retry_after == pytest.approx(60)


def test_after_its_spell_one_message_tries_the_provider_while_the_others_still_skip_it(clock):
    b = Breaker(failures=1, open_seconds=30)
    assert b.failure(clock.now())
    clock.advance(timedelta(seconds=31))
    assert b.allows(clock.now()) and not b.allows(clock.now()), "one trial at a time"
    b.success()
    assert b.allows(clock.now()) and b.allows(clock.now())


def test_a_lost_answer_ties_the_send_to_that_provider_until_it_ends(app, clock, gateways):
    primary, backup = gateways
    primary.slow = True  # it takes the message, and the answer comes after the 0.3 s timeout
    send_id = _sms(app, "lost", channels='["sms", "email"]')
    assert [o.state for o in deliver_due(app)] == ["retry_scheduled"]
    assert backup.taken == [] and app.schedule.get(send_id).as_stored()["pinned"] == "sms:primary"
    primary.slow = False
    clock.set(app.schedule.next_due())
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    # Asked again with the same send id (its idempotency key); the backup never was, nor email.
    assert primary.taken == [send_id, send_id] and backup.taken == []
    assert _delivered(app, send_id)["provider"] == "primary"


class _Never:
    def send(self, delivery: Delivery) -> str:
        raise AssertionError("no other channel may be tried")


def _wired(tmp_path, client, clock, **transports) -> Outreach:
    from outreach.channels.outbox import Outbox

    outbox = Outbox(tmp_path / "outbox")
    given = {"email": outbox, "sms": outbox, "whatsapp": outbox, "webhook": outbox, **transports}
    return Outreach(make_settings(tmp_path), client=client, clock=clock, transports=given)


def _ana(application: Outreach) -> None:
    application.upsert_customer({"id": "c-ana", "name": "Ana", "phone": "+5511955550100", "country": "BR",
                                 "email": "ana@example.com.br", "zone": "America/Sao_Paulo"})  # fmt: skip


def test_an_answer_that_names_no_message_ends_the_send_without_another_channel(tmp_path, client, clock):
    class Unreadable:
        def send(self, delivery: Delivery) -> str:
            raise PermanentChannelError("accepted, but no message id", address=False, elsewhere=False)

    application = _wired(tmp_path, client, clock, sms=Unreadable(), email=_Never())
    _ana(application)
    send_id = _sms(application, "unreadable", channels='["sms", "email"]')
    [outcome] = deliver_due(application)
    assert (outcome.state, outcome.reason) == ("failed", "permanent_channel_error")
    assert [d.reason for d in application.deadletters.list()][0].startswith("permanent_channel_error")
    assert not application.policy.is_suppressed("sms", "+5511955550100")
    application.close()
    assert send_id


def test_every_circuit_open_and_no_other_channel_waits_instead_of_failing(tmp_path, client, clock):
    class Down:
        def send(self, delivery: Delivery) -> str:
            raise TransientChannelError("every circuit is open", retry_after=20, circuit_open=True)

    class NoAddress:
        def send(self, delivery: Delivery) -> str:
            raise PermanentChannelError("HTTP 401", address=False)

    application = _wired(tmp_path, client, clock, sms=Down(), email=NoAddress())
    _ana(application)
    _sms(application, "down", channels='["sms", "email"]')
    [outcome] = deliver_due(application)
    assert outcome.state == "retry_scheduled", "SMS is only down for now"
    application.close()


def test_a_window_closed_refusal_is_retried_as_a_template_once_then_falls_through(tmp_path, client, clock):
    from outreach.channels.whatsapp_cloud import WindowClosed

    class Closed:
        calls = 0

        def send(self, delivery: Delivery) -> str:
            Closed.calls += 1
            raise WindowClosed("(#131047) Re-engagement message")

    from outreach.channels.outbox import Outbox, read_outbox

    application = _wired(tmp_path, client, clock, whatsapp=Closed(), sms=Outbox(tmp_path / "outbox"))
    _ana(application)
    send_id = _sms(application, "closed", channels='["whatsapp", "sms"]')
    assert [o.state for o in deliver_due(application)] == ["delivered"]
    assert Closed.calls == 1, "no approved template for the step: no second try, no loop"
    assert [r["channel"] for r in read_outbox(tmp_path / "outbox")] == ["sms"]
    assert _delivered(application, send_id)["channel"] == "sms"
    application.close()


def test_a_pinned_provider_is_asked_even_while_its_circuit_is_open(clock):
    from dataclasses import replace

    a, b = _Takes(), _Takes()
    failover = Failover("sms", [Provider("a", a), Provider("b", b)], failures=1, clock=clock)
    failover.providers[0].breaker.failure(clock.now())  # a's circuit is open
    answer = failover.send(replace(_delivery(), provider="a"))
    assert answer.provider == "a" and (a.calls, b.calls) == (1, 0)
