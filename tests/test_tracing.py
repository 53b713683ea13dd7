"""OpenTelemetry traces (``OUTREACH_TRACING=1``): HTTP request → ingestion → delivery, no personal data.

In-process tests record spans with the SDK's in-memory exporter; one test runs the
real CLI in a subprocess with the OTLP/HTTP exporter pointed at a loopback collector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fakeredis
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from outreach import Outreach

from .conftest import CUSTOMERS, STARTER, make_settings
from .test_web_pages import TOKEN, web_client

AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: A caller's trace: its id must run through the request, the ingestion and the delivery.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider():
    """The SDK with an in-memory exporter, installed once (OpenTelemetry allows one per process)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        current = TracerProvider()
        trace.set_tracer_provider(current)
    current.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    return current


@pytest.fixture
def spans():
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def traced_app(tmp_path, clock, enabled: bool = True) -> Outreach:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    return Outreach(make_settings(tmp_path, tracing=enabled), client=client, clock=clock)


def every_value(span) -> list[str]:
    """Every attribute value, event attribute and link attribute of a span, and its name, as text."""
    values = [span.name, *map(str, span.attributes.values())]
    for event in span.events:
        values += [event.name, *map(str, event.attributes.values())]
    for link in span.links:
        values += list(map(str, (link.attributes or {}).values()))
    return values


def test_a_request_its_ingestion_and_its_delivery_are_one_trace(tmp_path, clock, spans):
    app = traced_app(tmp_path, clock)
    amelia = CUSTOMERS["c-amelia"]
    app.upsert_customer(amelia)
    worker = app.worker(threads=2)
    try:
        with web_client(app) as web:
            event = {"id": "ev-1", "type": "order.delayed", "customer_id": "c-amelia",
                     "data": {"order_id": "A-9", "new_eta": "2026-03-26"}}  # fmt: skip
            answer = web.post("/v1/events", json=event, headers={**AUTH, "traceparent": TRACEPARENT})
            assert answer.status_code == 202, answer.text
            app.drain(worker)
            (send_id,) = app.schedule.send_ids_of("c-amelia")
            clock.set(app.schedule.due_of(send_id))
            app.pump()
            app.drain(worker)
            assert app.schedule.get(send_id).state == "delivered"
            unsubscribe = web.get("/u/not-a-token")
            assert unsubscribe.status_code == 400
    finally:
        worker.stop()

    finished = spans.get_finished_spans()
    by_name = {span.name: span for span in finished}
    request = by_name["POST /v1/events"]
    assert request.kind == trace.SpanKind.SERVER
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert request.attributes["http.response.status_code"] == 202

    ingestion = by_name["outreach.ingest"]
    assert ingestion.kind == trace.SpanKind.CONSUMER
    assert ingestion.context.trace_id == request.context.trace_id
    assert ingestion.parent.span_id == request.context.span_id
    assert ingestion.attributes["outreach.event_id"] == "ev-1"
    assert ingestion.attributes["outreach.planned"] == 1

    # The delivery batch is a trace of its own (the scheduler's pump sent it), linked to the planning.
    delivery = by_name["outreach.deliver"]
    assert [format(link.context.trace_id, "032x") for link in delivery.links] == [TRACE_ID]
    assert delivery.links[0].context.span_id == ingestion.context.span_id
    (outcome,) = [e for e in delivery.events if e.name == "outcome"]
    assert dict(outcome.attributes) == {"outreach.send_id": send_id, "outreach.state": "delivered",
                                        "outreach.reason": "email"}  # fmt: skip

    # A customer page is named by its route; the path (a token) is not in the span.
    assert "GET /u/{token}" in by_name
    text = " ".join(v for span in finished for v in every_value(span))
    for personal in (amelia["email"], amelia["name"], "A-9", "2026-03-26", "not-a-token"):
        assert personal not in text

    # An erasure leaves no trace key behind (the key names the send, and so the customer).
    app.erase_customer("c-amelia")
    assert not app.client.keys(f"{app.settings.prefix}*trace:*")


def test_tracing_off_records_nothing_and_keeps_nothing(tmp_path, clock, spans):
    app = traced_app(tmp_path, clock, enabled=False)
    app.upsert_customer(CUSTOMERS["c-amelia"])
    worker = app.worker(threads=2)
    try:
        with web_client(app) as web:
            event = {"type": "order.delayed", "customer_id": "c-amelia",
                     "data": {"order_id": "A-9", "new_eta": "2026-03-26"}}  # fmt: skip
            assert (
                web.post("/v1/events", json=event, headers={**AUTH, "traceparent": TRACEPARENT}).status_code
                == 202
            )
            app.drain(worker)
    finally:
        worker.stop()
    assert app.schedule.send_ids_of("c-amelia")
    assert spans.get_finished_spans() == ()
    assert not app.client.keys(f"{app.settings.prefix}*trace:*")


class _Collector(ThreadingHTTPServer):
    """An OTLP/HTTP collector on loopback: keeps the span names of every export it is sent."""

    daemon_threads = True

    def __init__(self) -> None:
        self.names: list[str] = []
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N802 - the http.server hook
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                self.paths.append(handler.path)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        self.names += [span.name for span in scope.spans]
                handler.send_response(200)
                handler.send_header("Content-Type", "application/x-protobuf")
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_the_processes_export_over_otlp_when_asked(tmp_path):
    collector = _Collector()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "OTEL_"))}
    env.update(
        {
            "OUTREACH_TRACING": "1",
            "OUTREACH_CONFIG_DIR": str(STARTER / "config"),
            "OUTREACH_TEMPLATES_DIR": str(STARTER / "templates"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
            "OTEL_SERVICE_NAME": "outreach-test",
        }
    )
    outreach = [sys.executable, "-m", "outreach.cli.commands"]
    customer = tmp_path / "customers.jsonl"
    customer.write_text(json.dumps(CUSTOMERS["c-jonas"]) + "\n")

    def run(*args: str) -> str:
        done = subprocess.run([*outreach, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("customers", "import", str(customer))
    run(
        "emit",
        "order.delayed",
        "--customer",
        "c-jonas",
        "--data",
        '{"order_id": "B-1", "new_eta": "2030-01-01"}',
    )
    run("run", "--until-idle")
    collector.shutdown()
    collector.server_close()
    assert set(collector.paths) == {"/v1/traces"}
    assert "outreach.ingest" in collector.names


def test_tracing_without_the_extra_is_a_config_error(tmp_path, clock, monkeypatch):
    from outreach.errors import ConfigError

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'outreach\[otel\]'"):
        traced_app(tmp_path, clock)
