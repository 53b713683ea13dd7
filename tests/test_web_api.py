"""The JSON API, health checks, the body limit, OpenAPI and the operator page (FastAPI TestClient)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from outreach.channels.signed_json import sign
from outreach.links import preferences_token
from outreach.registry import EVENT_TYPES

from .conftest import CUSTOMERS
from .helpers import deliver_due, ingest
from .test_web_pages import TOKEN, deliver_surveys, web_client

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "receipt-secret-for-tests"


@pytest.fixture
def web(app):
    with web_client(app, receipt_secrets={"email": SECRET}) as client:
        yield client


def errors_of(response) -> list[tuple[str, object]]:
    return [(e["field"], e["value"]) for e in response.json()["errors"]]


# -- auth ------------------------------------------------------------------------------------------

ROUTES = [
    ("post", "/v1/events", {"type": "customer.signed_up", "customer_id": "c-amelia"}),
    ("put", "/v1/customers/c-x", {"name": "X"}),
    ("get", "/v1/sends/s_1", None),
    ("post", "/v1/receipts/email", {"send_id": "s_1", "status": "delivered"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ],
)
def test_every_v1_route_needs_a_bearer_token(app, web, customers, method, path, body, headers):
    response = web.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Bearer" in response.json()["detail"]
    assert app.customers.get("c-x") is None


def test_tokens_come_from_the_environment(app, monkeypatch, customers):
    monkeypatch.setenv("OUTREACH_API_TOKENS", " alpha , beta,,")
    from fastapi.testclient import TestClient

    from outreach.web import create_app

    with TestClient(create_app(app)) as web:
        for token, status in (("alpha", 200), ("beta", 200), ("gamma", 401), (TOKEN, 401)):
            response = web.put("/v1/customers/c-amelia", json=CUSTOMERS["c-amelia"], headers={
                "Authorization": f"Bearer {token}"})  # fmt: skip
            assert response.status_code == status, token


# -- events ----------------------------------------------------------------------------------------


def test_one_event_is_queued_and_ingested(app, web, customers, worker, clock):
    response = web.post(
        "/v1/events",
        json={"id": "api-1", "type": "customer.signed_up", "customer_id": "c-jonas",
              "occurred_at": "2026-03-20T09:00:00Z"},
        headers=AUTH,
    )  # fmt: skip
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "id": "api-1"}
    app.drain(worker)
    assert app.client.get(app.keys.event("api-1", "c-jonas")) == b"done"
    assert [s.journey for s in app.schedule.open_sends("c-jonas")].count("onboarding") == 3


@pytest.mark.parametrize(
    ("body", "status", "field", "value"),
    [
        ({"type": "party.started", "customer_id": "c-amelia"}, 422, "type", "party.started"),
        ({"customer_id": "c-amelia"}, 422, "type", None),
        ({"type": "customer.signed_up"}, 422, "customer_id", None),
        ({"type": "customer.signed_up", "customer_id": ""}, 422, "customer_id", ""),
        ({"type": "order.delayed", "customer_id": "c-amelia", "data": []}, 422, "data", []),
        ({"type": "order.delayed", "customer_id": "c-amelia", "colour": "red"}, 422, "colour", "red"),
        (
            {"type": "order.delayed", "customer_id": "c-amelia", "occurred_at": "2026-03-20T09:00:00"},
            422,
            "occurred_at",
            "2026-03-20T09:00:00",
        ),
        ({"type": "order.delayed", "customer_id": "c-nobody"}, 404, "customer_id", "c-nobody"),
        ([{"type": "order.delayed"}], 422, "body", [{"type": "order.delayed"}]),
    ],
)
def test_invalid_events_name_the_field_and_the_value(app, web, customers, body, status, field, value):
    response = web.post("/v1/events", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert errors_of(response)[0] == (field, value)
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: is required" if value is None else f"{field}={value!r}: ")


def test_unknown_event_type_error_lists_the_known_ones(app, web, customers):
    response = web.post("/v1/events", json={"type": "party", "customer_id": "c-amelia"}, headers=AUTH)
    detail = response.json()["detail"]
    assert "type='party'" in detail and all(t in detail for t in EVENT_TYPES)
    assert response.json()["errors"][0]["loc"] == ["body", "type"]


def test_malformed_json_is_a_readable_422(app, web):
    response = web.post(
        "/v1/events", content=b'{"type": ', headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["detail"]


def test_events_of_an_erased_customer_are_refused(app, web, customers):
    app.erase_customer("c-haruto")
    response = web.post(
        "/v1/events", json={"type": "customer.activated", "customer_id": "c-haruto"}, headers=AUTH
    )
    assert response.status_code == 409
    assert errors_of(response) == [("customer_id", "c-haruto")]


def test_batch_with_a_bad_item_in_the_middle(app, web, customers, worker):
    events = [
        {"id": "b-1", "type": "customer.signed_up", "customer_id": "c-amelia"},
        {"id": "b-2", "type": "customer.sighed_up", "customer_id": "c-jonas"},
        {"id": "b-3", "type": "customer.signed_up", "customer_id": "c-nobody"},
        {"id": "b-4", "type": "customer.signed_up", "customer_id": "c-haruto"},
    ]
    response = web.post("/v1/events", json={"events": events}, headers=AUTH)
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    results = body["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "accepted"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert results[0]["id"] == "b-1" and results[3]["id"] == "b-4"
    assert (results[1]["code"], errors_of_item(results[1])) == (
        422,
        [("events[1].type", "customer.sighed_up")],
    )
    assert (results[2]["code"], errors_of_item(results[2])) == (404, [("events[2].customer_id", "c-nobody")])
    assert results[1]["detail"].startswith("events[1].type='customer.sighed_up'")

    app.drain(worker)
    assert app.client.get(app.keys.event("b-1", events[0]["customer_id"])) == b"done"
    assert app.client.get(app.keys.event("b-4", "c-haruto")) == b"done"
    assert app.client.get(app.keys.event("b-2", events[1]["customer_id"])) is None
    assert app.client.get(app.keys.event("b-3", "c-nobody")) is None

    everything_fine = web.post("/v1/events", json={"events": events[:1]}, headers=AUTH)
    assert everything_fine.status_code == 202 and everything_fine.json()["accepted"] == 1


def errors_of_item(item) -> list[tuple[str, object]]:
    return [(e["field"], e["value"]) for e in item["errors"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": {"type": "x"}}, "events"),
        ({"events": [], "extra": 1}, "extra"),
        ({"events": [{}] * 1001}, "events"),
    ],
)
def test_bad_batches(app, web, body, field):
    response = web.post("/v1/events", json=body, headers=AUTH)
    assert response.status_code == 422
    assert errors_of(response)[0][0] == field


# -- customers -------------------------------------------------------------------------------------


def test_customer_upsert_create_update_and_consent_kept(app, web):
    profile = {"name": "Ana", "email": "ana@example.com", "locale": "pt-BR", "zone": "America/Sao_Paulo",
               "country": "BR"}  # fmt: skip
    created = web.put("/v1/customers/c-ana", json=profile, headers=AUTH)
    assert created.status_code == 201
    assert created.json()["locale"] == "pt_BR" and created.json()["id"] == "c-ana"

    app.set_consent("c-ana", category="survey", allowed=False, source="unsubscribe link")
    updated = web.put(
        "/v1/customers/c-ana", json={**profile, "id": "c-ana", "name": "Ana Lima"}, headers=AUTH
    )
    assert updated.status_code == 200
    stored = app.customers.get("c-ana")
    assert stored.name == "Ana Lima"
    assert stored.consent == {"survey": False}  # a profile sync never undoes an unsubscribe

    explicit = web.put("/v1/customers/c-ana", json={**profile, "consent": {"marketing": True}}, headers=AUTH)
    assert explicit.status_code == 200
    assert app.customers.get("c-ana").consent == {"marketing": True}
    assert app.customers.consent_history("c-ana")[-1]["source"] == "api"


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"id": "c-other", "name": "A"}, "id", "c-other"),
        ({"name": "A", "email": "not-an-address"}, "email", "not-an-address"),
        ({"name": "A", "zone": "Mars/Olympus"}, "zone", "Mars/Olympus"),
        ({"name": "A", "locale": "xx_YY_ZZ"}, "locale", "xx_YY_ZZ"),
        ({"name": "A", "channel": "pigeon"}, "channel", "pigeon"),
        ({"name": "A", "consent": {"newsletter": True}}, "consent", "newsletter"),
        ({"name": "A", "consent": {"survey": "yes"}}, "consent.survey", "yes"),
        ({"name": "A", "favourite_colour": "red"}, "favourite_colour", "red"),
        ({"email": "a@example.com"}, "name", None),
    ],
)
def test_customer_validation_names_the_field(app, web, body, field, value):
    response = web.put("/v1/customers/c-a", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert errors_of(response)[0] == (field, value)
    assert app.customers.get("c-a") is None


def test_erased_customer_id_is_a_conflict(app, web, customers):
    app.erase_customer("c-amelia")
    response = web.put("/v1/customers/c-amelia", json=CUSTOMERS["c-amelia"], headers=AUTH)
    assert response.status_code == 409
    assert errors_of(response) == [("id", "c-amelia")]
    assert app.customers.get("c-amelia") is None


# -- the explain view ------------------------------------------------------------------------------


def test_explain_view_with_local_times(app, web, customers, clock):
    planned = ingest(app, "customer.signed_up", "c-haruto", "2026-03-20T06:00:00Z", id="sx").planned
    clock.set(app.schedule.next_due())
    deliver_due(app)
    welcome = next(s for s in planned if app.schedule.get(s).step == "welcome")
    response = web.get(f"/v1/sends/{welcome}", headers=AUTH)
    assert response.status_code == 200
    view = response.json()
    assert view["send_id"] == welcome and view["zone"] == "Asia/Tokyo"
    send = view["send"]
    assert (send["journey"], send["step"], send["state"], send["channel"]) == (
        "onboarding", "welcome", "delivered", "email")  # fmt: skip
    assert send["channels"] == ["email"] and isinstance(send["data"], dict)
    assert send["due_local"].endswith("+09:00") and send["due"].endswith("Z")
    whats = [entry["what"] for entry in view["history"]]
    assert whats[0] == "planned" and whats[-1] == "delivered"
    last = view["history"][-1]
    assert last["at"].endswith("Z") and last["at_local"].endswith("+09:00")
    assert last["at"] == clock.now().isoformat().replace("+00:00", "Z")

    missing = web.get("/v1/sends/s_nope", headers=AUTH)
    assert missing.status_code == 404 and errors_of(missing) == [("send_id", "s_nope")]


# -- receipts --------------------------------------------------------------------------------------


def _receipt(web, body: dict, secret: str = SECRET, channel: str = "email", signature: str | None = None):
    raw = json.dumps(body).encode()
    headers = {**AUTH, "Content-Type": "application/json",
               "X-Outreach-Signature": signature if signature is not None else sign(secret, raw)}  # fmt: skip
    return web.post(f"/v1/receipts/{channel}", content=raw, headers=headers)


def test_receipts_are_recorded_with_a_good_signature_only(app, web, clock):
    app.upsert_customer(CUSTOMERS["c-amelia"])
    send_id = deliver_surveys(app, clock, "c-amelia")["c-amelia"]["send_id"]

    ok = _receipt(web, {"send_id": send_id, "status": "delivered", "detail": "250 OK"})
    assert ok.status_code == 200
    assert ok.json() == {"send_id": send_id, "channel": "email", "status": "delivered", "recorded": "new",
                         "suppressed_address": None, "consent_withdrawn": None}  # fmt: skip
    entry = app.schedule.history(send_id)[-1]
    assert (entry["what"], entry["status"], entry["detail"], entry["channel"]) == (
        "receipt", "delivered", "250 OK", "email")  # fmt: skip

    before = len(app.schedule.history(send_id))
    for signature in ("sha256=" + "0" * 64, "", "nonsense"):
        bad = _receipt(web, {"send_id": send_id, "status": "bounced"}, signature=signature)
        assert bad.status_code == 401
    assert _receipt(web, {"send_id": send_id, "status": "bounced"}, secret="other").status_code == 401
    # Signed, but the body was changed on the way.
    raw = json.dumps({"send_id": send_id, "status": "delivered"}).encode()
    tampered = web.post("/v1/receipts/email", content=raw.replace(b"delivered", b"bounced"),
                        headers={**AUTH, "X-Outreach-Signature": sign(SECRET, raw)})  # fmt: skip
    assert tampered.status_code == 401
    assert len(app.schedule.history(send_id)) == before
    assert not app.policy.is_suppressed("email", "amelia@example.com")

    # No secret configured for a channel: nothing can be verified.
    assert _receipt(web, {"send_id": send_id, "status": "delivered"}, channel="sms").status_code == 401
    # Valid signatures, invalid receipts.
    assert _receipt(web, {"send_id": "s_nope", "status": "delivered"}).status_code == 404
    wrong = _receipt(web, {"send_id": send_id, "status": "lost"})
    assert wrong.status_code == 422 and errors_of(wrong)[0] == ("status", "lost")
    assert web.post("/v1/receipts/pigeon", content=b"{}", headers=AUTH).status_code == 422


def test_bounce_suppresses_and_complaint_withdraws_consent(app, web, clock):
    app.upsert_customer(CUSTOMERS["c-amelia"])
    send_id = deliver_surveys(app, clock, "c-amelia")["c-amelia"]["send_id"]

    bounced = _receipt(web, {"send_id": send_id, "status": "bounced", "detail": "550 no such user"})
    assert bounced.json()["suppressed_address"] == "amelia@example.com"
    assert app.policy.is_suppressed("email", "amelia@example.com")
    assert app.customers.get("c-amelia").consent == {}

    complained = _receipt(web, {"send_id": send_id, "status": "complained"})
    assert complained.status_code == 200 and complained.json()["consent_withdrawn"] == "survey"
    customer = app.customers.get("c-amelia")
    assert customer.consent == {"survey": False} and not app.policy.allows(customer, "survey")
    assert app.customers.consent_history("c-amelia")[-1]["source"] == "email complaint"
    whats = [e["what"] for e in app.schedule.history(send_id)]
    assert whats[-5:] == [
        "receipt",
        "suppressed_address",
        "receipt",
        "suppressed_address",
        "consent_withdrawn",
    ]

    # A provider retrying the complaint changes nothing more.
    assert _receipt(web, {"send_id": send_id, "status": "complained"}).json()["consent_withdrawn"] is None
    assert len(app.customers.consent_history("c-amelia")) == 1


def test_receipt_secret_from_the_environment(app, clock, monkeypatch):
    monkeypatch.setenv("OUTREACH_EMAIL_SECRET", "from-env")
    app.upsert_customer(CUSTOMERS["c-amelia"])
    send_id = deliver_surveys(app, clock, "c-amelia")["c-amelia"]["send_id"]
    with web_client(app) as web:
        assert _receipt(web, {"send_id": send_id, "status": "failed"}, secret="from-env").status_code == 200
        assert _receipt(web, {"send_id": send_id, "status": "failed"}).status_code == 401


# -- limits, OpenAPI, health -------------------------------------------------------------------------


def test_body_over_the_limit_is_413_before_parsing(app, customers):
    with web_client(app, max_body_bytes_limit=1000) as web:
        big = {"type": "order.delayed", "customer_id": "c-amelia", "data": {"note": "x" * 2000}}
        declared = web.post("/v1/events", json=big, headers=AUTH)
        assert declared.status_code == 413
        assert "1000 bytes" in declared.json()["detail"]

        # No Content-Length (chunked upload): the bytes received are counted.
        def chunks():
            yield b'{"type": "order.delayed", "customer_id": "c-amelia", "data": {"note": "'
            for _ in range(20):
                yield b"y" * 100
            yield b'"}}'

        chunked = web.post(
            "/v1/events", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert chunked.status_code == 413

        # Even an unauthenticated request is cut off before anything reads it.
        assert web.post("/v1/events", content=b"z" * 5000).status_code == 413
        # And so is a page form.
        page = web.post("/s/token/comment", data={"comment": "c" * 5000, "nonce": "n"})
        assert page.status_code == 413

        small = web.post(
            "/v1/events", json={"type": "customer.activated", "customer_id": "c-amelia"}, headers=AUTH
        )
        assert small.status_code == 202


def test_body_limit_from_the_environment(app, customers, monkeypatch):
    monkeypatch.setenv("OUTREACH_MAX_BODY_BYTES", "64")
    with web_client(app) as web:
        body = {"type": "customer.activated", "customer_id": "c-amelia", "data": {"x": "y" * 64}}
        assert web.post("/v1/events", json=body, headers=AUTH).status_code == 413


def test_openapi_lists_the_routes(app, web):
    response = web.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Outreach" and schema["info"]["description"]
    for path in ("/v1/events", "/v1/customers/{customer_id}", "/v1/sends/{send_id}", "/v1/receipts/{channel}",
                 "/s/{token}", "/s/{token}/comment", "/u/{token}", "/p/{token}", "/healthz", "/readyz",
                 "/metrics", "/ops", "/c/{token}", "/o/{token}"):  # fmt: skip
        assert path in schema["paths"], path
    events = schema["paths"]["/v1/events"]["post"]
    assert events["summary"] and events["description"]
    assert {"$ref": "#/components/schemas/Event"} in events["requestBody"]["content"]["application/json"][
        "schema"]["oneOf"]  # fmt: skip
    assert "Event" in schema["components"]["schemas"] and "Receipt" in schema["components"]["schemas"]
    assert schema["paths"]["/v1/sends/{send_id}"]["get"]["security"]


def test_health_and_readiness(app, web, monkeypatch):
    assert web.get("/healthz").json() == {"status": "ok"}
    ready = web.get("/readyz")
    assert ready.status_code == 200 and ready.json()["redis"] == "ok"

    def down():
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(app.client, "ping", down)
    not_ready = web.get("/readyz")
    assert not_ready.status_code == 503 and "Connection refused" in not_ready.json()["redis"]
    assert web.get("/healthz").status_code == 200


def test_readyz_against_a_redis_that_is_not_there(tmp_path, clock):
    from outreach import Outreach

    from .conftest import _free_port, make_settings

    # No retries: redis-py's default (three, backing off) would make each request take seconds.
    dead = redis.Redis(
        host="127.0.0.1", port=_free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    app = Outreach(make_settings(tmp_path), client=dead, clock=clock)
    with web_client(app) as web:
        assert web.get("/readyz").status_code == 503
        assert web.get("/healthz").status_code == 200
        # Every way in answers 503 with Retry-After while Redis is away, never a 500.
        event = {
            "type": "order.delayed",
            "customer_id": "c1",
            "data": {"order_id": "A", "new_eta": "2030-01-01"},
        }
        for method, path, body in (
            ("POST", "/v1/events", event),
            ("POST", "/v1/events", {"events": [event]}),
            ("PUT", "/v1/customers/c1", {"name": "Ana", "email": "ana@example.com", "zone": "Europe/Rome"}),
            ("GET", "/v1/customers/c1", None),
            ("GET", "/v1/sends/se7c5b755d88b2fa226.c1", None),
        ):
            answer = web.request(method, path, json=body, headers=AUTH)
            assert answer.status_code == 503, (method, path, answer.text)
            assert answer.headers["Retry-After"] == "5"
            assert "not reachable" in answer.json()["detail"]
        token = preferences_token(app.settings.secret, "c1", clock.now() + timedelta(days=1))
        page = web.get(f"/p/{token}")
        assert page.status_code == 503 and page.headers["Retry-After"] == "5"
        assert "not available right now" in page.text
    dead.close()


# -- the operator page ----------------------------------------------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_ops_page_needs_basic_auth(app, web):
    for headers in ({}, _basic("ops", "wrong"), _basic("admin", TOKEN), AUTH):
        response = web.get("/ops", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")


def test_ops_page_renders_the_report(app, web, clock, monkeypatch):
    app.upsert_customer(CUSTOMERS["c-amelia"])
    deliver_surveys(app, clock, "c-amelia")
    page = web.get("/ops", headers=_basic("ops", TOKEN))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Outreach — operations" in page.text and "<svg" in page.text

    import outreach.report as report

    calls = []
    real = report.build_report

    def spy(outreach, since=None, until=None, by=None):
        calls.append((since, until, by))
        return real(outreach, since=since, until=until, by=by)

    monkeypatch.setattr(report, "build_report", spy)
    query = "/ops?since=2026-03-01&until=2026-03-21T00:00:00Z&by=journey"
    assert web.get(query, headers=_basic("ops", TOKEN)).status_code == 200
    since, until, by = calls[-1]
    assert since.isoformat() == "2026-03-01T00:00:00+00:00"
    assert (until.isoformat(), by) == ("2026-03-21T00:00:00+00:00", "journey")
    assert web.get("/ops?until=2026-03-02", headers=_basic("ops", TOKEN)).status_code == 200
    assert calls[-1][1].isoformat() == "2026-03-02T23:59:59.999000+00:00"  # an end date includes its day
    assert web.get("/ops?since=yesterday", headers=_basic("ops", TOKEN)).status_code == 400
    assert web.get("/ops?since=2026-03-02T00:00:00", headers=_basic("ops", TOKEN)).status_code == 400
    assert web.get("/ops?since=2026-03-10&until=2026-03-01", headers=_basic("ops", TOKEN)).status_code == 400
    assert web.get("/ops?by=planet", headers=_basic("ops", TOKEN)).status_code == 400
    assert calls[-1][2] in (None, "journey")
    clock.advance(timedelta(seconds=1))


def test_the_uvicorn_entry_point_builds_the_app_from_the_environment(monkeypatch, tmp_path):
    import importlib
    import sys

    from fastapi.testclient import TestClient

    monkeypatch.setenv("OUTREACH_API_TOKENS", "entry-token")
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path))
    monkeypatch.delenv("OUTREACH_REDIS_URL", raising=False)
    monkeypatch.delitem(sys.modules, "outreach.web.main", raising=False)
    main = importlib.import_module("outreach.web.main")
    with TestClient(main.app) as web:
        assert web.get("/healthz").status_code == 200
        assert web.get("/readyz").status_code == 200
        assert web.get("/v1/sends/x", headers={"Authorization": "Bearer entry-token"}).status_code == 404
    monkeypatch.delitem(sys.modules, "outreach.web.main", raising=False)
