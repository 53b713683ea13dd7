"""A digest step under 1,000 events a second, against raw Dramatiq in the same run.

    python benchmarks/digest_bench.py [--events 20000] [--seconds 10] [--rate 1000] [--json]

Everything runs on a throwaway ``redis-server``. Three measurements:

1. **Raw Dramatiq**: a no-op actor's messages per second (``benchmarks/noop.py``), the
   reference every figure is divided by.
2. **Flat out**: ``--events`` ``order.delayed`` events over customers with ten events each,
   applied by ``app.ingest_many`` in batches of 200 (the ingest actor's) in one thread, into a
   journey with a digest step, and the same events into a journey with a plain step: events
   per second, CPU and Redis round trips per event.
3. **Paced**: ``--rate`` events a second for ``--seconds``, applied as they come in batches of
   a tenth of a second, while a second thread claims and delivers the digests whose window
   (3 s) closed: how far behind ingestion falls (p50/p99 of a batch's time), how many digests
   went, and whether every event was listed in exactly one digest that went.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

DIGEST = """
[journey]
name = "delays"
category = "transactional"
trigger = "order.delayed"

[[journey.steps]]
name = "digest"
template = "order_digest/list"
digest = true
delay_minutes = {window}
window = ""
holidays = ""
observances = ""
"""
PLAIN = DIGEST.replace("digest = true\n", "").replace("order_digest/list", "order_delay/notice")


def project(tmp: Path, journey: str, window: float) -> tuple[Path, Path]:
    from benchmarks import run

    config, templates = tmp / "config", tmp / "templates"
    shutil.copytree(run.bench_config(tmp / "base"), config)
    shutil.copytree(run.STARTER / "templates", templates)
    shutil.rmtree(config / "journeys")
    (config / "journeys").mkdir()
    (config / "journeys" / "delays.toml").write_text(journey.replace("{window}", str(window)))
    folder = templates / "order_digest" / "list"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text("{{ digest.count }} late orders\n")
    (folder / "body.txt").write_text("{{ digest['items']|map(attribute='order_id')|join(' ') }}\n")
    (folder / "body.html").write_text("<p>{{ digest['items']|map(attribute='order_id')|join(' ') }}</p>\n")
    return config, templates


def make_app(server, tmp: Path, journey: str, window: float, prefix: str):
    from outreach import Outreach, Settings

    config, templates = project(tmp / prefix, journey, window)
    archive = f"sqlite:///{tmp / prefix / 'a.sqlite3'}"
    settings = Settings(redis_url=server.url, prefix=f"{prefix}:", config_dir=config, templates_dir=templates,
                        outbox_dir=tmp / prefix / "outbox", archive_url=archive)  # fmt: skip
    app = Outreach(settings)
    zone = "Etc/GMT" + (f"{datetime.now(UTC).hour - 12:+d}" if datetime.now(UTC).hour != 12 else "")
    return app, zone


def events(tag: str, n: int, customers: int) -> list[dict[str, Any]]:
    eta = (date.today() + timedelta(days=6)).isoformat()
    return [{"id": f"{tag}-{i}", "type": "order.delayed", "customer_id": f"c{i % customers}",
             "data": {"order_id": f"{tag}-{i}", "new_eta": eta}} for i in range(n)]  # fmt: skip


def add_customers(app, count: int, zone: str) -> None:
    for c in range(count):
        app.upsert_customer(
            {"id": f"c{c}", "name": f"Customer {c}", "email": f"c{c}@example.com", "zone": zone}
        )


def flat_out(server, tmp: Path, journey: str, label: str, n: int) -> dict[str, Any]:
    from benchmarks.profile_deliver import RoundTrips

    app, zone = make_app(server, tmp, journey, 60, label)
    add_customers(app, n // 10, zone)
    work = events(label, n, n // 10)
    app.ingest_many(work[:200])  # warm: scripts, zones, rules
    rest = work[200:]
    with RoundTrips() as trips:
        began, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(rest), 200):
            app.ingest_many(rest[i : i + 200])
        wall, cpu_s = time.perf_counter() - began, time.process_time() - cpu
    return {"events_per_s": round(len(rest) / wall, 1), "cpu_us_per_event": round(cpu_s / len(rest) * 1e6, 1),
            "round_trips_per_event": round(trips.count / len(rest), 2)}  # fmt: skip


def paced(server, tmp: Path, rate: int, seconds: float) -> dict[str, Any]:
    app, zone = make_app(server, tmp, DIGEST, 0.05, "paced")
    customers = max(1, rate // 4)
    add_customers(app, customers, zone)
    work = events("paced", int(rate * seconds), customers)
    app.ingest_many(events("warm", 50, customers))
    stop = threading.Event()
    delivered = Counter()

    def deliver() -> None:
        while not stop.is_set():
            claims = app.schedule.claim(200)
            if not claims:
                time.sleep(0.05)
                continue
            for outcome in app.deliver(claims):
                delivered[outcome.state] += 1

    worker = threading.Thread(target=deliver)
    worker.start()
    step = max(1, rate // 10)
    took: list[float] = []
    began = time.perf_counter()
    for k, i in enumerate(range(0, len(work), step)):
        due = began + k * 0.1
        time.sleep(max(0.0, due - time.perf_counter()))
        t = time.perf_counter()
        app.ingest_many(work[i : i + step])
        took.append(time.perf_counter() - t)
    applied = time.perf_counter() - began
    deadline = time.perf_counter() + 30
    while app.schedule.depth()[0] and time.perf_counter() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    worker.join()
    from outreach.channels.outbox import read_outbox

    rows = read_outbox(app.settings.outbox_dir)
    listed = Counter(o for r in rows for o in r["body"].split() if o.startswith("paced-"))
    ordered = sorted(took)
    return {
        "events": len(work), "target_events_per_s": rate,
        "achieved_events_per_s": round(len(work) / applied, 1),
        "batch_ms_p50": round(statistics.median(took) * 1000, 1),
        "batch_ms_p99": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        "batch_budget_ms": 100.0,
        "digests_sent": len(rows), "deliveries": dict(delivered),
        "every_event_listed_once": listed == Counter(e["id"] for e in work),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import run

    tmp = Path(tempfile.mkdtemp(prefix="outreach-digest-"))
    server = run.RedisServer(tmp / "redis")
    try:
        os.environ["BENCH_REDIS_URL"] = server.url  # read by benchmarks.noop
        noop = run.dramatiq_round(server, tmp, 20000, "digest")
        digest = flat_out(server, tmp, DIGEST, "digest", args.events)
        plain = flat_out(server, tmp, PLAIN, "plain", args.events)
        load = paced(server, tmp, args.rate, args.seconds)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    dq = noop["messages_per_s"]
    report = {
        "dramatiq_noop_messages_per_s": dq,
        "digest": {**digest, "ratio_to_dramatiq": round(digest["events_per_s"] / dq, 2)},
        "plain": {**plain, "ratio_to_dramatiq": round(plain["events_per_s"] / dq, 2)},
        "digest_over_plain": round(digest["events_per_s"] / plain["events_per_s"], 2),
        "paced": load,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"dramatiq no-op:        {dq:>10,.1f} messages/s")
    for name in ("digest", "plain"):
        r = report[name]
        head = f"{name + ' step, one thread:':<22} {r['events_per_s']:>10,.1f} events/s"
        print(f"{head}  (x{r['ratio_to_dramatiq']} of Dramatiq; {r['cpu_us_per_event']} µs CPU, "
              f"{r['round_trips_per_event']} round trips an event)")  # fmt: skip
    print(f"digest / plain:        {report['digest_over_plain']}")
    p = report["paced"]
    print(
        f"paced {p['target_events_per_s']}/s: achieved {p['achieved_events_per_s']}/s, batch p50 "
        f"{p['batch_ms_p50']} ms, p99 {p['batch_ms_p99']} ms of {p['batch_budget_ms']} ms; "
        f"{p['digests_sent']} digests; each listed once: {p['every_event_listed_once']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
