"""A customer's data over the HTTP API: read, consent, export and erase, each audited without
the token or (after erasure) the customer's id."""

from __future__ import annotations

import logging

import pytest

from .helpers import ingest
from .test_web_api import AUTH
from .test_web_pages import web_client


@pytest.fixture
def web(app):
    with web_client(app) as client:
        yield client


def test_read_change_consent_export_and_erase_a_customer(app, web, customers, clock, caplog):
    ingest(app, "customer.signed_up", "c-jonas", clock.now().isoformat(), id="su-1")
    with caplog.at_level(logging.INFO, logger="outreach.audit"):
        profile = web.get("/v1/customers/c-jonas", headers=AUTH)
        assert profile.status_code == 200 and profile.json()["email"] == "jonas@example.de"

        change = web.put("/v1/customers/c-jonas/consent", json={"category": "lifecycle", "allowed": False},
                         headers=AUTH)  # fmt: skip
        assert change.status_code == 200, change.text
        assert change.json()["customer"]["consent"] == {"lifecycle": False}
        assert {s["outcome"] for s in change.json()["sends"]} == {"cancelled"}
        assert app.customers.consent_history("c-jonas")[-1]["source"] == "api"

        exported = web.get("/v1/customers/c-jonas/export", headers=AUTH)
        assert exported.status_code == 200 and exported.json()["profile"]["id"] == "c-jonas"
        assert exported.json()["consent"]["categories"]["lifecycle"] is False

        erased = web.delete("/v1/customers/c-jonas", headers=AUTH)
        assert erased.status_code == 200 and erased.json()["erased"]["sends"] >= 1
    assert app.customers.get("c-jonas") is None
    assert web.get("/v1/customers/c-jonas", headers=AUTH).status_code == 410
    assert web.get("/v1/customers/c-jonas/export", headers=AUTH).status_code == 410

    audit = [r for r in caplog.records if r.name == "outreach.audit"]
    assert [r.fields["action"] for r in audit] == ["read", "consent", "export", "erase"]
    token = AUTH["Authorization"].split()[1]
    assert all(token not in r.getMessage() and r.fields["token"] != token for r in audit)
    assert "c-jonas" not in audit[-1].getMessage()  # the erasure keeps only the tombstone's hash


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/v1/customers/c-nobody", None, 404),
        ("get", "/v1/customers/c-nobody/export", None, 404),
        ("delete", "/v1/customers/c-nobody", None, 404),
        ("put", "/v1/customers/c-nobody/consent", {"category": "lifecycle", "allowed": False}, 404),
        ("put", "/v1/customers/c-jonas/consent", {"category": "pigeons", "allowed": False}, 422),
        ("put", "/v1/customers/c-jonas/consent", {"category": "lifecycle"}, 422),
        ("put", "/v1/customers/c-jonas/consent", {"allowed": False}, 422),
    ],
)
def test_what_cannot_be_done_is_named(app, web, customers, method, path, body, status):
    response = web.request(method, path, json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/customers/c-jonas"),
        ("get", "/v1/customers/c-jonas/export"),
        ("delete", "/v1/customers/c-jonas"),
    ],
)
def test_the_data_rights_routes_need_a_token(app, web, customers, method, path):
    assert web.request(method, path).status_code == 401
    assert app.customers.get("c-jonas") is not None
