"""/metrics: Prometheus text read from Redis at scrape time, checked against what the pipeline did."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from outreach.clock import to_ms
from outreach.schedule import LATENCY_BUCKETS

from .conftest import CUSTOMERS
from .helpers import at, deliver_due, ingest, outbox
from .test_web_pages import path_of, score_links, web_client


def scrape(web) -> dict[str, dict[tuple, float]]:
    """Sample name -> {sorted label items: value}."""
    response = web.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_before_anything_happened(app):
    with web_client(app) as web:
        samples = scrape(web)
    assert samples["outreach_schedule_depth"] == {(("set", "due"),): 0.0, (("set", "inflight"),): 0.0}
    assert samples["outreach_pump_lag_seconds"] == {(): 0.0}
    assert samples["outreach_pump_claimed_total"] == {(): 0.0}
    assert samples["outreach_delivery_latency_seconds_count"] == {(): 0.0}
    assert "outreach_sends_total" not in samples  # no outcome recorded yet: no series


def test_metrics_after_a_few_deliveries(app, customers, clock, worker):
    # Three sign-ups (three onboarding steps each) and a resolved interaction (a CSAT survey).
    for customer_id in CUSTOMERS:
        ingest(app, "customer.signed_up", customer_id, clock.now().isoformat(), id=f"m-{customer_id}")
    ingest(app, "interaction.resolved", "c-amelia", clock.now().isoformat(), id="m-survey")
    planned, _ = app.schedule.depth()
    assert planned >= 10

    # The pump runs right when the first send is due (no wait) ...
    clock.set(app.schedule.next_due())
    claimed = app.pump()
    app.drain(worker)
    # ... and again at 20:00 UTC, hours after more sends came due (they waited).
    clock.set(at("2026-03-20T20:00:00Z"))
    oldest = app.schedule.next_due()
    claimed += app.pump()
    app.drain(worker)

    finished = [s for rows in app.schedule.finished_between(0, to_ms(clock.now()), 1000) for s, _ in rows]
    delivered = [s for s in finished if app.schedule.get(s).state == "delivered"]
    assert len(delivered) >= 3 and claimed >= len(delivered)
    survey = next(row for row in outbox(app) if row["journey"] == "survey")
    with web_client(app) as web:
        links = score_links(survey)
        assert web.get(path_of(links[5])).status_code == 200
        assert web.get(path_of(links[1])).status_code == 200  # changed: counted again
        app.drain(worker)  # the detractor's follow-up is planned before the scrape
        samples = scrape(web)

    # Sends by state and reason: one count per recorded outcome.
    outcomes = Counter()
    for send_id in [s for c in ("c-amelia", "c-jonas", "c-haruto") for s in app.schedule.send_ids_of(c)]:
        for entry in app.schedule.history(send_id):
            if entry["what"] in (
                "delivered",
                "deferred",
                "suppressed",
                "failed",
                "retry_scheduled",
                "cancelled",
            ):
                outcomes[(entry["what"], entry.get("reason", "ok"))] += 1
    assert {
        (dict(k)["state"], dict(k)["reason"]): v for k, v in samples["outreach_sends_total"].items()
    } == outcomes
    assert samples["outreach_sends_total"][(("reason", "ok"), ("state", "delivered"))] == len(delivered)

    # Schedule depth is read live.
    waiting, inflight = app.schedule.depth()
    assert samples["outreach_schedule_depth"] == {
        (("set", "due"),): waiting,
        (("set", "inflight"),): inflight,
    }
    assert inflight == 0 and waiting >= planned - len(finished)

    # The pump's figures: the claims of both ticks, and the last tick's lag.
    assert samples["outreach_pump_claimed_total"] == {(): claimed}
    assert samples["outreach_pump_lag_seconds"] == {(): (clock.now() - oldest).total_seconds()}

    # The latency histogram: cumulative buckets; +Inf holds every delivery. The first tick's
    # sends went at once (le=0.5), the second tick's had waited hours (only +Inf).
    buckets = samples["outreach_delivery_latency_seconds_bucket"]
    values = [buckets[(("le", str(float(b))),)] for b in LATENCY_BUCKETS] + [buckets[(("le", "+Inf"),)]]
    assert values == sorted(values)
    assert values[-1] == len(delivered) == samples["outreach_delivery_latency_seconds_count"][()]
    assert 1 <= values[0] == values[-2] < values[-1]

    # Survey answers by kind and band.
    assert samples["outreach_survey_answers_total"] == {
        (("band", "positive"), ("kind", "csat")): 1.0,
        (("band", "detractor"), ("kind", "csat")): 1.0,
    }


def test_metrics_count_suppressions_by_reason(app, clock):
    app.upsert_customer({**CUSTOMERS["c-jonas"], "consent": {"lifecycle": False}})
    ingest(app, "customer.signed_up", "c-jonas", clock.now().isoformat(), id="sup")
    clock.set(app.schedule.next_due())
    outcomes = deliver_due(app)
    assert [(o.state, o.reason) for o in outcomes] == [("suppressed", "no_consent")]
    with web_client(app) as web:
        samples = scrape(web)
    assert samples["outreach_sends_total"] == {(("reason", "no_consent"), ("state", "suppressed")): 1.0}
    assert samples["outreach_delivery_latency_seconds_count"] == {(): 0.0}
