"""Hostile input at the ways in: never a 5xx, never a hang, never accepted and then lost.

Properties over the input space (hypothesis) for the HTTP API and the customer pages: event
times anywhere in the calendar and at any offset, non-finite numbers, lone surrogates and deep
nesting in event data and profile attributes, signed tokens whose payload is not one Outreach
made, and the operator page's query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.journeys.events import EARLIEST, MAX_AHEAD
from outreach.links import read_token
from outreach.payload import MAX_DEPTH

from .test_web_api import AUTH
from .test_web_pages import TOKEN, web_client

FIXTURES = [HealthCheck.function_scoped_fixture]


@pytest.fixture
def web(app):
    with web_client(app) as client:
        yield client


def event(**fields):
    return {"type": "customer.signed_up", "customer_id": "c-amelia", **fields}


def window(app) -> timedelta:
    return timedelta(days=app.settings.event_ttl_days)


# -- event times -------------------------------------------------------------------------------


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(-14 * 60, 14 * 60),
)
@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
def test_an_event_time_is_accepted_only_inside_the_deduplication_window(
    app, web, customers, moment, offset_minutes
):
    stamped = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    response = web.post("/v1/events", json=event(occurred_at=stamped.isoformat()), headers=AUTH)
    now = app.clock.now()
    try:
        instant = stamped.astimezone(UTC)
    except OverflowError:
        instant = None
    inside = instant is not None and max(EARLIEST, now - window(app)) <= instant <= now + MAX_AHEAD
    assert response.status_code == (202 if inside else 422), response.text
    if not inside:
        assert [e["field"] for e in response.json()["errors"]] == ["occurred_at"]


@pytest.mark.parametrize(
    "stamp",
    [
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T23:59:59Z",
    ],
)
def test_a_batch_with_impossible_times_is_judged_event_by_event(app, web, customers, stamp):
    good = event(id="good", occurred_at=app.clock.now().isoformat())
    response = web.post(
        "/v1/events", json={"events": [good, event(id="bad", occurred_at=stamp)]}, headers=AUTH
    )
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert app.inbox.depth() == 1


def test_an_event_older_than_the_window_is_refused_so_a_late_replay_is_never_applied_twice(app, customers):
    from outreach import InputError

    now = app.clock.now()
    app.emit("customer.signed_up", "c-amelia", id="e-1", occurred_at=now - window(app) + timedelta(seconds=1))
    with pytest.raises(InputError) as info:
        app.emit(
            "customer.signed_up", "c-amelia", id="e-1", occurred_at=now - window(app) - timedelta(seconds=1)
        )
    assert info.value.field == "occurred_at" and "deduplication window" in str(info.value)
    with pytest.raises(InputError, match="more than a day ahead"):
        app.emit("customer.signed_up", "c-amelia", occurred_at=now + MAX_AHEAD + timedelta(seconds=1))


# -- values JSON cannot carry on ---------------------------------------------------------------


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


BAD_VALUES = [
    ("nan", float("nan")),
    ("infinity", float("inf")),
    ("minus infinity", float("-inf")),
    ("lone surrogate", "\ud800"),
    ("lone surrogate in a key", {"\udfff": 1}),
    ("too deep", nested(MAX_DEPTH + 2)),
]


def raw_json(body: object) -> bytes:
    """JSON as a hostile client writes it: NaN and Infinity literals, surrogates escaped."""
    return json.dumps(body, allow_nan=True).encode()


@pytest.mark.parametrize(("what", "value"), BAD_VALUES, ids=[w for w, _ in BAD_VALUES])
def test_event_data_that_cannot_be_stored_is_refused_naming_the_field(app, web, customers, what, value):
    body = raw_json(event(data={"order": {"items": [value]}}))
    response = web.post("/v1/events", content=body, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].startswith("data.order.items[0]") or what == "too deep"
    assert app.inbox.depth() == 0


@pytest.mark.parametrize(("what", "value"), BAD_VALUES, ids=[w for w, _ in BAD_VALUES])
def test_profile_attributes_that_cannot_be_stored_are_refused_before_anything_is_stored(
    app, web, what, value
):
    body = raw_json({"name": "Ana", "email": "ana@example.com", "attributes": {"tier": value}})
    response = web.put(
        "/v1/customers/c-ana", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert app.customers.get("c-ana") is None


@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=20,
    )
)
@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
def test_any_json_in_event_data_is_accepted_or_refused_never_a_crash(app, web, customers, data):
    body = raw_json(event(data={"value": data}))
    response = web.post("/v1/events", content=body, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code in (202, 422), response.text
    if response.status_code == 202:
        # What was accepted can be written again as strict JSON in UTF-8 (Redis, providers).
        json.dumps(data, allow_nan=False, ensure_ascii=False).encode("utf-8")


# -- signed tokens that Outreach did not make ----------------------------------------------------


def signed(secret: str, purpose: str, payload: object) -> str:
    """A token with a valid signature around any payload (as someone holding the secret could make)."""
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    mac = hmac.new(secret.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


ODD_PAYLOADS = [
    [1, 2],
    None,
    "text",
    {"p": "unsubscribe", "c": "c-amelia", "exp": "tomorrow"},
    {"p": "unsubscribe", "c": "c-amelia", "exp": -1},
    {"p": "unsubscribe", "c": "c-amelia", "exp": 1e30},
    {"p": "unsubscribe", "c": "c-amelia", "exp": 10**30},
    {"p": "unsubscribe", "c": "c-amelia", "exp": True},
]


@pytest.mark.parametrize("payload", ODD_PAYLOADS, ids=[repr(p)[:30] for p in ODD_PAYLOADS])
@pytest.mark.parametrize("page", ["/u/", "/p/", "/s/"])
def test_a_signed_token_with_an_odd_payload_opens_the_invalid_link_page(app, web, customers, payload, page):
    purpose = {"/u/": "unsubscribe", "/p/": "preferences", "/s/": "answer"}[page]
    if isinstance(payload, dict):
        payload = {**payload, "p": purpose}
    token = signed(app.settings.secret, purpose, payload)
    response = web.get(page + token)
    assert 400 <= response.status_code < 500, response.text


@given(
    payload=st.recursive(
        st.none() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=8,
    )
)
@settings(max_examples=200, deadline=None)
def test_read_token_refuses_any_payload_it_did_not_make_without_crashing(payload):
    from outreach.links import InvalidToken

    token = signed("s3cret", "unsubscribe", payload)
    try:
        fields = read_token("s3cret", "unsubscribe", token, datetime(2026, 1, 1, tzinfo=UTC))
    except InvalidToken:
        return
    assert isinstance(fields, dict)


# -- the operator page -------------------------------------------------------------------------


def ops(web, **query):
    auth = base64.b64encode(f"ops:{TOKEN}".encode()).decode()
    return web.get("/ops", params=query, headers={"Authorization": f"Basic {auth}"})


@pytest.mark.parametrize(
    "query",
    [
        {"since": "0001-01-01", "until": "9999-12-31"},
        {"until": "9999-12-31"},
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"since": "1900-01-01"},
    ],
)
def test_the_operator_page_answers_an_extreme_period_with_a_bad_request(web, query):
    response = ops(web, **query)
    assert response.status_code == 400, response.text
    assert "Bad period" in response.text


def test_the_operator_page_names_a_bad_grouping(web):
    response = ops(web, by="zone")
    assert response.status_code == 400
    assert "by" in response.text and "zone" in response.text and "locale" in response.text


# -- addresses no provider can use ---------------------------------------------------------------

BAD_EMAILS = [
    "a@b@c",
    "@example.com",
    "pat@",
    "pat@example.com,evil@attacker.example",
    "pat@example.com\u0000evil",
    "pat@example.com\r\nBcc: evil@attacker.example",
    "pat@localhost",
    "pat@example.invalid",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_an_email_address_no_provider_can_use_is_refused_at_every_way_in(app, web, tmp_path, email):
    from outreach import InputError

    with pytest.raises(InputError) as info:
        app.upsert_customer({"id": "c-pat", "name": "Pat", "email": email})
    assert info.value.field == "email"
    headers = {**AUTH, "content-type": "application/json"}
    response = web.put(
        "/v1/customers/c-pat", content=json.dumps({"name": "Pat", "email": email}), headers=headers
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "email"
    assert app.customers.get("c-pat") is None


@pytest.mark.parametrize(
    ("phone", "country", "stored"),
    [
        ("+49 152 05550102", None, "+4915205550102"),
        ("015205550102", "DE", "+4915205550102"),
        ("(212) 555-0101", "US", "+12125550101"),
    ],
)
def test_a_phone_number_is_kept_in_e164_read_in_the_customers_country(app, phone, country, stored):
    customer = app.upsert_customer({"id": "c-p", "name": "P", "phone": phone, "country": country})
    assert customer.phone == stored


@pytest.mark.parametrize(
    ("phone", "country"), [("12", "DE"), ("015205550102", None), ("+1 555", None), ("call me", "US")]
)
def test_a_phone_number_no_provider_can_use_is_refused(app, phone, country):
    from outreach import InputError

    with pytest.raises(InputError) as info:
        app.upsert_customer({"id": "c-p", "name": "P", "phone": phone, "country": country})
    assert info.value.field == "phone"


# -- imports keep every good row ---------------------------------------------------------------


def test_an_import_reports_each_bad_row_by_its_line_and_keeps_every_good_one(app, tmp_path):
    from click.testing import CliRunner

    from outreach.cli import commands

    good = [json.dumps({"id": f"g{i}", "name": "G", "email": f"g{i}@example.com"}) for i in range(4)]
    lines = [
        good[0].encode(),
        '{"id": "latin", "name": "J\u00fcrgen"}'.encode("latin-1"),
        good[1].encode(),
        ('{"a":' * 100_000 + "1" + "}" * 100_000).encode(),
        json.dumps(
            {"id": "sep", "name": "A\u2028B", "email": "sep@example.com"}, ensure_ascii=False
        ).encode(),
        json.dumps({"id": "attrs", "name": "A", "attributes": [1, 2]}).encode(),
        good[2].encode(),
        b"[1, 2]",
        good[3].encode(),
    ]
    path = tmp_path / "people.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(
        "id,name,email\nc1,Ana,ana@example.com\nc2,Bob,bob@example.com,surplus\nc3,Cy,cy@example.com\n"
    )
    with app_for_cli(app):
        result = CliRunner().invoke(commands.main, ["customers", "import", str(path)])
        csv_result = CliRunner().invoke(commands.main, ["customers", "import", str(csv_path)])
    assert result.exit_code == 0, result.output
    assert "imported 5 customers, 4 rejected" in result.output
    for line in (2, 4, 6, 8):
        assert f"people.jsonl:{line}:" in result.output
    assert app.customers.get("sep") is not None  # a U+2028 inside a string is no line break
    assert all(app.customers.get(f"g{i}") is not None for i in range(4))
    assert csv_result.exit_code == 0, csv_result.output
    assert "imported 2 customers, 1 rejected" in csv_result.output and "people.csv:3:" in csv_result.output
    assert app.deadletters.count() == 5


def app_for_cli(app):
    """The CLI's commands run against this test's application."""
    import contextlib
    from unittest import mock

    from outreach.cli import common

    return mock.patch.object(common, "_app", lambda **_: contextlib.nullcontext(app))
