"""The demo: sample customers in many locales and zones, two weeks of events on a simulated clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import dramatiq

from .app import Outreach
from .channels import Delivery, Handed, Outbox, Transport
from .simulate import fast_forward
from .timing import parse_instant

#: Where the demo's simulated clock starts: the weeks that span Europe's DST change.
DEMO_START = "2026-03-20T06:00:00Z"

#: (instant, event type, customer, data): what happens during the demo.
DEMO_EVENTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("2026-03-20T07:30:00Z", "customer.signed_up", "c-amelia", {}),
    ("2026-03-20T08:00:00Z", "customer.signed_up", "c-linh", {}),
    ("2026-03-20T09:15:00Z", "customer.signed_up", "c-jonas", {}),
    ("2026-03-20T10:00:00Z", "customer.signed_up", "c-noa", {}),
    ("2026-03-20T11:00:00Z", "customer.signed_up", "c-omar", {}),
    ("2026-03-20T12:00:00Z", "customer.signed_up", "c-olivia", {}),
    ("2026-03-20T13:00:00Z", "customer.signed_up", "c-haruto", {}),
    ("2026-03-20T15:00:00Z", "customer.signed_up", "c-beatriz", {}),
    ("2026-03-20T16:20:00Z", "customer.signed_up", "c-eszter", {}),
    ("2026-03-21T02:00:00Z", "order.delayed", "c-amelia", {"order_id": "A-1001", "new_eta": "2026-03-24"}),
    (
        "2026-03-21T05:00:00Z",
        "order.delayed",
        "c-amelia",
        {
            "order_id": "A-1001",
            "original_eta": "2026-03-22",
            "new_eta": "2026-03-26",
            "credit": "10.00",
            "currency": "USD",
        },
    ),
    ("2026-03-21T09:00:00Z", "customer.activated", "c-eszter", {}),
    ("2026-03-22T15:00:00Z", "interaction.resolved", "c-noa", {"interaction_id": "T-301"}),
    (
        "2026-03-23T14:00:00Z",
        "order.delayed",
        "c-jonas",
        {
            "order_id": "B-2002",
            "original_eta": "2026-03-25",
            "new_eta": "2026-03-27",
            "credit": "5.00",
            "currency": "EUR",
        },
    ),
    ("2026-03-24T10:00:00Z", "customer.activated", "c-jonas", {}),
    (
        "2026-03-25T03:00:00Z",
        "order.delayed",
        "c-haruto",
        {"order_id": "C-3003", "original_eta": "2026-03-27", "new_eta": "2026-03-28"},
    ),
    ("2026-03-25T04:00:00Z", "customer.unsubscribed", "c-linh", {}),
    ("2026-03-26T18:00:00Z", "interaction.resolved", "c-beatriz", {"interaction_id": "T-302"}),
    ("2026-03-27T09:00:00Z", "interaction.resolved", "c-omar", {"interaction_id": "T-303"}),
    ("2026-03-28T12:00:00Z", "order.delayed", "c-nobody", {"order_id": "X-404", "new_eta": "2026-04-02"}),
]


class Tee:
    """Hands a message to a real transport, then records it in the outbox too."""

    def __init__(self, transport: Transport, outbox: Outbox) -> None:
        self.transport = transport
        self.outbox = outbox

    def send(self, delivery: Delivery) -> str | Handed:
        reference = self.transport.send(delivery)
        self.outbox.send(delivery)
        return reference

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()


def demo_customers() -> list[dict[str, Any]]:
    text = resources.files("outreach").joinpath("data", "demo_customers.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class DemoResult:
    start: datetime
    end: datetime
    emitted: int = 0
    ticks: int = 0
    events: list[str] = field(default_factory=list)


def run_demo(app: Outreach, worker: dramatiq.Worker, days: int = 15) -> DemoResult:
    """Load the sample customers, play the demo's events and fast-forward ``days`` days."""
    start = app.clock.now()
    for customer in demo_customers():
        app.upsert_customer(customer)
    result = DemoResult(start=start, end=start + timedelta(days=days))

    def emitter(event_type: str, customer_id: str, data: dict, at: datetime):
        def emit() -> None:
            result.events.append(app.emit(event_type, customer_id, data, occurred_at=at))
            result.emitted += 1

        return emit

    timeline = []
    for instant, event_type, customer_id, data in DEMO_EVENTS:
        at = parse_instant(instant)
        if start <= at <= result.end:
            timeline.append((at, emitter(event_type, customer_id, data, at)))
    result.ticks = fast_forward(app, worker, result.end, timeline)
    return result
