"""What production refuses to run with, and what an operator can defend: a secret of their own that
can be rotated, API tokens on the web process, no link tokens in access logs, a Redis that keeps
the schedule."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import redis

from outreach import ConfigError, Outreach
from outreach.links import InvalidToken, make_token, read_token
from outreach.settings import DEVELOPMENT_SECRET, Settings
from outreach.store.connections import durability_problems
from outreach.web.app import create_app
from outreach.web.security import RedactPageTokens

from .conftest import _free_port, _installed, _redis_server, _wait_for, make_settings

GOOD_SECRET = "s" * 40
NOW = datetime(2026, 3, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"mode": "production"}, "OUTREACH_SECRET"),
        ({"mode": "production", "secret": "short"}, "at least 32"),
        ({"mode": "prod"}, "OUTREACH_MODE"),
    ],
)
def test_production_refuses_the_development_secret_or_a_short_one(tmp_path, client, overrides, words):
    settings = make_settings(tmp_path, **overrides)
    with pytest.raises(ConfigError, match=words):
        Outreach(settings, client=client)


def test_development_runs_with_the_defaults_and_production_with_its_own_secret(tmp_path, client):
    assert Outreach(make_settings(tmp_path), client=client).settings.secret == DEVELOPMENT_SECRET
    Outreach(make_settings(tmp_path, mode="production", secret=GOOD_SECRET), client=client)


def test_the_web_process_needs_an_api_token_in_production(tmp_path, client):
    app = Outreach(make_settings(tmp_path, mode="production", secret=GOOD_SECRET), client=client)
    with pytest.raises(ConfigError, match="OUTREACH_API_TOKENS"):
        create_app(app, api_tokens=[])
    create_app(app, api_tokens=["a-token"])


def test_a_rotated_secret_still_opens_the_links_it_signed_until_it_is_dropped():
    old = make_token("old-secret", "unsubscribe", {"c": "c1"}, NOW + timedelta(days=1))
    new = make_token("new-secret", "unsubscribe", {"c": "c1"}, NOW + timedelta(days=1))
    rotated = Settings(secret="new-secret", old_secrets="old-secret, older-secret")
    assert rotated.secrets == ("new-secret", "old-secret", "older-secret")
    for token in (old, new):
        assert read_token(rotated.secrets, "unsubscribe", token, NOW) == {"c": "c1"}
    with pytest.raises(InvalidToken, match="signature"):
        read_token(Settings(secret="new-secret").secrets, "unsubscribe", old, NOW)


def test_settings_read_mode_and_old_secrets_from_the_environment():
    settings = Settings.from_env(
        {"OUTREACH_MODE": "production", "OUTREACH_SECRET": GOOD_SECRET, "OUTREACH_OLD_SECRETS": "a,b"}
    )
    assert settings.production and settings.secrets == (GOOD_SECRET, "a", "b")


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/u/eyJjIjoiYzEifQ.c2ln", "/u/…"),
        ("/s/eyJzIjoiczEifQ.c2ln/comment", "/s/…/comment"),
        ("/p/eyJjIjoiYzEifQ.c2ln?x=1", "/p/…?x=1"),
        ("/v1/events", "/v1/events"),
    ],
)
def test_link_tokens_never_reach_the_access_log(path, logged):
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200), None,
    )  # fmt: skip
    assert RedactPageTokens().filter(record)
    assert record.getMessage() == f'127.0.0.1:5000 - "GET {logged} HTTP/1.1" 200'


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own: its configuration is changed here."""
    port = _free_port()
    proc = _redis_server(_installed("redis-server"), port, tmp_path)
    conn = redis.Redis(port=port)
    try:
        _wait_for(conn.ping, "redis-server")
        yield f"redis://127.0.0.1:{port}/0", conn
    finally:
        conn.close()
        proc.kill()  # nothing to keep: no shutdown save, no waiting for an AOF rewrite
        proc.wait(timeout=10)


def test_a_redis_that_could_lose_the_schedule_is_named_and_refused_in_production(tmp_path, own_redis):
    url, conn = own_redis
    conn.config_set("maxmemory-policy", "allkeys-lru")
    problems = durability_problems(conn)
    assert any("allkeys-lru" in p for p in problems) and any("appendonly" in p for p in problems)
    production = make_settings(tmp_path, mode="production", secret=GOOD_SECRET, redis_url=url)
    with pytest.raises(ConfigError, match="maxmemory-policy"):
        Outreach(production)
    Outreach(make_settings(tmp_path, mode="production", secret=GOOD_SECRET, redis_url=url,
                           allow_volatile_redis=True))  # fmt: skip
    conn.config_set("maxmemory-policy", "noeviction")
    conn.config_set("appendonly", "yes")
    assert durability_problems(conn) == []
    Outreach(production)


# -- log lines ---------------------------------------------------------------------------------


def test_a_json_log_line_carries_its_fields_at_the_top_level():
    from outreach.logs import JsonFormatter

    record = logging.LogRecord("outreach.outcomes", logging.INFO, __file__, 1, "send %s", ("s1",), None)
    record.fields = {"send_id": "s1", "state": "delivered"}
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["send_id"], line["state"], line["level"]) == (
        "send s1",
        "s1",
        "delivered",
        "info",
    )


def _outcome_records(tmp_path, client, clock, caplog, outcome_log: str) -> tuple[list, list]:
    """Two order-delay notices delivered (one to a customer since put on do-not-contact)."""
    from .conftest import CUSTOMERS
    from .helpers import deliver_due, ingest

    app = Outreach(make_settings(tmp_path, outcome_log=outcome_log), client=client, clock=clock)
    app.upsert_customer(CUSTOMERS["c-jonas"])
    app.upsert_customer({**CUSTOMERS["c-jonas"], "id": "c-lena", "name": "Lena", "email": "lena@example.de"})
    for n, customer_id in enumerate(("c-jonas", "c-lena")):
        ingest(app, "order.delayed", customer_id, clock.now().isoformat(), id=f"o{n}",
               data={"order_id": f"A-{n}", "new_eta": "2026-03-24"})  # fmt: skip
    # On the list, its send not cancelled: the decision suppresses it.
    app.customers.set_do_not_contact("c-lena", True)
    clock.set(app.schedule.next_due())
    with caplog.at_level(logging.INFO, logger="outreach.outcomes"):
        outcomes = deliver_due(app)
    return outcomes, [r for r in caplog.records if r.name == "outreach.outcomes"]


def test_each_outcome_is_one_log_line_without_an_address(tmp_path, client, clock, caplog):
    outcomes, records = _outcome_records(tmp_path, client, clock, caplog, "each")
    assert sorted(o.state for o in outcomes) == ["delivered", "suppressed"]
    assert [(r.fields["send_id"], r.fields["state"]) for r in records] == [
        (o.send_id, o.state) for o in outcomes
    ]
    delivered = next(r for r in records if r.fields["state"] == "delivered")
    assert delivered.fields["journey"] == "order_delay" and "latency_s" in delivered.fields
    assert all("@" not in r.getMessage() and "+49" not in r.getMessage() for r in records)


def test_a_delivered_batch_is_one_log_line_counting_its_outcomes(tmp_path, client, clock, caplog):
    outcomes, [record] = _outcome_records(tmp_path, client, clock, caplog, "batch")
    assert len(outcomes) == 2
    assert (record.fields["sends"], record.fields["delivered"], record.fields["suppressed"]) == (2, 1, 1)
    assert record.fields["reasons"] == {"do_not_contact": 1} and record.fields["max_latency_s"] >= 0
    assert "c-" not in record.getMessage() and "@" not in record.getMessage()


def test_outcome_lines_can_be_turned_off_and_the_setting_is_checked(tmp_path, client, clock, caplog):
    from outreach.errors import ConfigError

    outcomes, records = _outcome_records(tmp_path, client, clock, caplog, "off")
    assert len(outcomes) == 2 and records == []
    with pytest.raises(ConfigError, match="OUTREACH_OUTCOME_LOG"):
        make_settings(tmp_path, outcome_log="verbose").check()


def test_a_refused_request_is_one_log_line_naming_the_field_not_the_value(app, caplog):
    from .test_web_api import AUTH
    from .test_web_pages import web_client

    with web_client(app) as web, caplog.at_level(logging.INFO, logger="outreach.refused"):
        body = {"name": "Pat", "email": "pat@example.com,evil@attacker.example"}
        assert web.put("/v1/customers/c-pat", json=body, headers=AUTH).status_code == 422
    [record] = [r for r in caplog.records if r.name == "outreach.refused"]
    assert record.fields == {"status": 422, "fields": ["email"]}
    assert "attacker" not in record.getMessage()


# -- erasure tombstones ------------------------------------------------------------------------


def test_an_erasure_tombstone_is_keyed_with_the_secret_and_survives_a_rotation(tmp_path, client):
    import hashlib

    from outreach import CustomerErased

    first = Outreach(make_settings(tmp_path, secret="first-secret"), client=client)
    first.upsert_customer({"id": "c-gone", "name": "Gone", "email": "gone@example.com"})
    first.erase_customer("c-gone")
    stored = {m.decode() for m in client.smembers(first.keys.erased("c-gone"))}
    plain = hashlib.sha256(b"outreach-erased:c-gone").hexdigest()
    assert len(stored) == 1 and plain not in stored  # nobody without the secret can test an id
    rotated = Outreach(
        make_settings(
            tmp_path, prefix=first.settings.prefix, secret="second-secret", old_secrets="first-secret"
        ),
        client=client,
    )
    assert rotated.customers.is_erased("c-gone")
    with pytest.raises(CustomerErased):
        rotated.upsert_customer({"id": "c-gone", "name": "Back"})
    # A tombstone written before they were keyed is still read.
    client.sadd(first.keys.erased("c-old"), hashlib.sha256(b"outreach-erased:c-old").hexdigest())
    assert rotated.customers.is_erased("c-old")


def test_a_suppression_list_holds_no_address_in_plain_text_and_survives_a_rotation(tmp_path, client):
    first = Outreach(make_settings(tmp_path, secret="first-secret"), client=client)
    first.policy.suppress_address("email", "Pat@Example.com")
    members = {m.decode() for m in client.smembers(first.keys.suppressed("email"))}
    assert members and not any("@" in m for m in members)
    assert first.policy.is_suppressed("email", "pat@example.com")
    settings = make_settings(
        tmp_path, prefix=first.settings.prefix, secret="second-secret", old_secrets="first-secret"
    )
    rotated = Outreach(settings, client=client)
    assert rotated.policy.is_suppressed("email", "PAT@example.com")
    # An address a list held in plain text before lists were hashed is still found.
    client.sadd(first.keys.suppressed("sms"), "+4915205550102")
    assert rotated.policy.is_suppressed("sms", "+4915205550102")
    assert not rotated.policy.is_suppressed("sms", "+4915205550103")


def test_a_batch_line_counts_sends_it_did_not_attempt_apart(tmp_path, client, clock, caplog):
    """A message delivered again (Dramatiq redelivers after a lost ack): the sends have ended, the
    line says so instead of counting them delivered."""
    from .conftest import CUSTOMERS
    from .helpers import ingest

    app = Outreach(make_settings(tmp_path), client=client, clock=clock)
    app.upsert_customer(CUSTOMERS["c-jonas"])
    ingest(app, "order.delayed", "c-jonas", clock.now().isoformat(), id="o1",
           data={"order_id": "A-1", "new_eta": "2026-03-24"})  # fmt: skip
    clock.set(app.schedule.next_due())
    claims = app.schedule.claim(app.settings.claim_limit)
    assert [o.state for o in app.deliver(claims)] == ["delivered"]
    with caplog.at_level(logging.INFO, logger="outreach.outcomes"):
        again = app.deliver(claims)
    [record] = [r for r in caplog.records if r.name == "outreach.outcomes"]
    assert [o.state for o in again] == ["delivered"]
    assert record.fields == {"sends": 1, "not_attempted": 1}
