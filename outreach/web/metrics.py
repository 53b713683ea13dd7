"""Prometheus metrics read from the shared state in Redis at scrape time.

Workers and the scheduler are separate processes, so nothing is counted in
this process: the collector reads the ``stats`` hash and the schedule's sizes
on every scrape. Any web process gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ..app import Outreach
from ..schedule import LATENCY_BUCKETS


def _number(value: float | None) -> float:
    return value if value is not None else 0.0


class OutreachCollector:
    """A ``prometheus_client`` collector over one application's Redis."""

    def __init__(self, outreach: Outreach) -> None:
        self.outreach = outreach

    def describe(self) -> list:
        # Nothing is known before a scrape; an empty description keeps registration free of Redis calls.
        return []

    def collect(self) -> Iterator[Metric]:
        stats = self.outreach.stats()

        sends = CounterMetricFamily(
            "outreach_sends",
            "Recorded outcomes of delivery attempts, by state and reason code.",
            labels=["state", "reason"],
        )
        answers = CounterMetricFamily(
            "outreach_survey_answers",
            "Survey answers recorded (a changed answer counts again), by survey kind and band.",
            labels=["kind", "band"],
        )
        receipts = CounterMetricFamily(
            "outreach_receipts",
            "Providers' receipts recorded (repeats and stale ones not counted), by channel and status.",
            labels=["channel", "status"],
        )
        clicks = CounterMetricFamily(
            "outreach_clicks",
            "Clicks on tracked links and opens of emails recorded (every one), by kind.",
            labels=["kind"],
        )
        clicked = CounterMetricFamily(
            "outreach_clicked_sends",
            "Sends clicked (or opened) for the first time, by kind.",
            labels=["kind"],
        )
        for name, value in sorted(stats.items()):
            parts = name.split(":")
            if parts[0] in ("clicks", "clicked") and len(parts) == 2:
                (clicks if parts[0] == "clicks" else clicked).add_metric(parts[1:], _number(value))
            elif parts[0] == "sends" and len(parts) == 3:
                sends.add_metric(parts[1:], _number(value))
            elif parts[0] == "answers" and len(parts) == 3:
                answers.add_metric(parts[1:], _number(value))
            elif parts[0] == "receipts" and len(parts) == 3:
                receipts.add_metric(parts[1:], _number(value))
        yield sends
        yield answers
        yield receipts
        yield clicks
        yield clicked

        waiting, inflight = self.outreach.schedule.depth()
        depth = GaugeMetricFamily(
            "outreach_schedule_depth",
            "Sends in the durable schedule: waiting for their moment (due) or claimed (inflight).",
            labels=["set"],
        )
        depth.add_metric(["due"], waiting)
        depth.add_metric(["inflight"], inflight)
        yield depth

        yield GaugeMetricFamily(
            "outreach_pump_lag_seconds",
            "At the last pump tick: how long the oldest due send had waited to be claimed.",
            value=_number(stats.get("pump:lag_ms")) / 1000,
        )
        yield CounterMetricFamily(
            "outreach_pump_claimed",
            "Sends claimed by the pump and handed to workers.",
            value=_number(stats.get("pump:claimed")),
        )
        yield self._latency(stats)

        waiting, oldest = self.outreach.mover.waiting()
        yield CounterMetricFamily(
            "outreach_archived_sends",
            "Finished sends moved from Redis to the archive.",
            value=_number(stats.get("archive:moved")),
        )
        yield GaugeMetricFamily(
            "outreach_archive_backlog",
            "Finished sends still in Redis: waiting OUTREACH_ARCHIVE_AFTER_SECONDS, or for the archive.",
            value=waiting,
        )
        age = (self.outreach.clock.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "outreach_archive_oldest_seconds",
            "Age of the oldest finished send not archived yet (grows while the archive is unreachable).",
            value=max(age, 0.0),
        )

    @staticmethod
    def _latency(stats: dict[str, float]) -> Metric:
        """The latency histogram: the stats hold one count per bucket; Prometheus wants them cumulated."""
        metric = Metric(
            "outreach_delivery_latency_seconds",
            "Seconds from a send's planned instant to its hand-over to the provider.",
            "histogram",
        )
        total = 0.0
        for bound in LATENCY_BUCKETS:
            total += _number(stats.get(f"latency:le:{bound:g}"))
            metric.samples.append(Sample(metric.name + "_bucket", {"le": floatToGoString(bound)}, total))
        total += _number(stats.get("latency:le:+Inf"))
        metric.samples.append(Sample(metric.name + "_bucket", {"le": "+Inf"}, total))
        metric.samples.append(Sample(metric.name + "_count", {}, total))
        # The schedule keeps bucket counts only; a sum appears once it records "latency:sum" (seconds).
        if "latency:sum" in stats:
            metric.samples.append(Sample(metric.name + "_sum", {}, _number(stats["latency:sum"])))
        return metric


def registry_for(outreach: Outreach) -> CollectorRegistry:
    """A registry of its own per application (never the process-global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutreachCollector(outreach))
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The Prometheus text format and its content type."""
    # The classic text format (0.0.4): every Prometheus version reads it.
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
