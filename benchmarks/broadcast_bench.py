"""A broadcast of N recipients planned on a throwaway redis-server: planning rate, bytes per send, and
the claim cost before and after (it must stay flat).

    .venv/bin/python benchmarks/broadcast_bench.py              # 1,000,000 recipients
    .venv/bin/python benchmarks/broadcast_bench.py --quick      # 100,000
    .venv/bin/python benchmarks/broadcast_bench.py --recipients 300000 --cancel --json

Steps (docs/PERFORMANCE.md, "Broadcasts"):

1. N customer profiles in 24 zones, 12 countries and 10 locales, written straight to Redis on a
   pipeline (not timed; they are the audience, not the broadcast).
2. Claim cost with the schedule empty: 20,000 sends due now planned through ``Schedule.plan`` and
   ``Schedule.claim(500)`` timed until none is left (µs per claimed send).
3. A broadcast to every customer (a segment with no filter, ``tomorrow 10:00`` in each zone) planned
   with ``Broadcasts.plan`` in batches of 500 per shard: recipients/s, and ``INFO used_memory``
   after − before, per planned send (its due-set entry and its field in the broadcast's hash of
   its shard), and ``MEMORY USAGE`` of one broadcast hash per field.
4. Claim cost again, now with the N planned sends in the due sets (20,000 new sends due now): the
   ratio after / before.
5. With ``--cancel``: ``Broadcasts.cancel`` of the whole broadcast, sends/s (each planned send gets
   a record of its own saying it was cancelled).

Never talks to any Redis but the one it starts on a free loopback port.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA: dict[str, Any] = {}
ZONES = [
    ("America/New_York", "US", "en_US"),
    ("America/Chicago", "US", "en_US"),
    ("America/Denver", "US", "es_US"),
    ("America/Los_Angeles", "US", "en_US"),
    ("America/Toronto", "CA", "fr_CA"),
    ("America/Vancouver", "CA", "en_CA"),
    ("America/Sao_Paulo", "BR", "pt_BR"),
    ("America/Mexico_City", "MX", "es_MX"),
    ("Europe/London", "GB", "en_GB"),
    ("Europe/Berlin", "DE", "de_DE"),
    ("Europe/Paris", "FR", "fr_FR"),
    ("Europe/Madrid", "ES", "es_ES"),
    ("Europe/Rome", "IT", "it_IT"),
    ("Asia/Tokyo", "JP", "ja_JP"),
    ("Asia/Seoul", "KR", "ko_KR"),
    ("Asia/Kolkata", "IN", "hi_IN"),
    ("Australia/Sydney", "AU", "en_AU"),
    ("Australia/Perth", "AU", "en_AU"),
    ("Pacific/Auckland", "NZ", "en_NZ"),
    ("Europe/Vienna", "AT", "de_AT"),
    ("Europe/Zurich", "CH", "de_CH"),
    ("Asia/Shanghai", "CN", "zh_CN"),
    ("Asia/Singapore", "SG", "en_SG"),
    ("Africa/Johannesburg", "ZA", "en_ZA"),
]


def add_customers(app: Any, count: int, chunk: int = 5000) -> None:
    from outreach.customers.profile import Customer

    forms = []
    for zone_name, country, locale in ZONES:
        try:
            data = {"id": "__ID__", "name": "Sam", "email": "__ID__@example.com", "zone": zone_name,
                    "country": country, "locale": locale}  # fmt: skip
            forms.append(Customer.from_mapping(data).to_json())
        except Exception:  # noqa: BLE001 - a locale the project does not ship: the country's English
            data["locale"] = "en"
            forms.append(Customer.from_mapping(data).to_json())
    pipe = app.client.pipeline(transaction=False)
    for i in range(count):
        customer_id = f"c{i:07}"
        pipe.set(app.keys.customer(customer_id), forms[i % len(forms)].replace("__ID__", customer_id))
        pipe.sadd(app.keys.customers(app.keys.shard_of(customer_id)), customer_id)
        if i % chunk == chunk - 1:
            pipe.execute()
    pipe.execute()


def claim_cost(app: Any, label: str, count: int) -> dict[str, Any]:
    """``count`` sends due now, planned and then claimed 500 at a time: µs per claimed send."""
    from outreach.schedule import Intent
    from outreach.store import scripts
    from outreach.store.keys import send_id_for

    now = app.clock.now() - timedelta(seconds=1)
    intent = Intent(journey="broadcast", step="probe", category="transactional",
                    template="order_delay/notice", channels='["email"]', rule="{}", survey="",
                    event_type="broadcast", zone="UTC", country="")  # fmt: skip
    app.client.script_load(scripts.source("outreach.schedule", "plan"))
    pipe = app.client.pipeline(transaction=False)
    for i in range(count):
        customer_id = f"c{i:07}"
        send_id = send_id_for(f"probe-{label}", "broadcast", "probe", customer_id)
        app.schedule.plan(send_id, now, intent, event_id=f"probe-{label}", start=now, data={}, pipe=pipe)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    began = time.perf_counter()
    claimed = 0
    while got := len(app.schedule.claim(500)):
        claimed += got
    seconds = time.perf_counter() - began
    # Take the probes out again (claimed: in flight with a hash of their own) so they weigh nothing.
    for shard in range(app.keys.shards):
        app.client.delete(app.keys.inflight(shard))
    return {"claimed": claimed, "us_per_claim": round(seconds / max(claimed, 1) * 1e6, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=None, help="default 1,000,000 (quick: 100,000)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=500, help="customers per shard and batch")
    parser.add_argument("--probe", type=int, default=20_000, help="sends claimed before and after")
    parser.add_argument("--cancel", action="store_true", help="time cancelling the whole broadcast too")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    count = args.recipients or (100_000 if args.quick else 1_000_000)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import run
    from outreach import Outreach
    from outreach.broadcasts import Broadcast, Moment

    tmp = Path(tempfile.mkdtemp(prefix="outreach-broadcast-"))
    server = run.RedisServer(tmp / "redis")
    try:
        app = Outreach(run.bench_settings(server, run.bench_config(tmp), tmp, "bcast:", 0.1))
        print(f"{count} customers...", file=sys.stderr)
        add_customers(app, count)
        claim_cost(app, "warm", args.probe)  # scripts loaded, connections and caches warm
        before_claims = claim_cost(app, "before", args.probe)
        broadcast = app.broadcasts.create(
            Broadcast(id="strike", name="strike", category="transactional", channels=("email",),
                      template="order_delay/notice", moment=Moment.parse("tomorrow 10:00"),
                      audience={"kind": "segment"}, data=DATA)
        )  # fmt: skip
        memory_before = server.used_memory()
        print("planning...", file=sys.stderr)
        began = time.perf_counter()
        planned = app.broadcasts.plan(broadcast.id, args.batch)
        plan_seconds = time.perf_counter() - began
        memory_after = server.used_memory()
        status = app.broadcasts.status(broadcast.id)
        if status.planned != count or planned.planned != count:
            raise RuntimeError(f"planned {status.planned} of {count}")
        after_claims = claim_cost(app, "after", args.probe)
        shard = app.keys.shard_of("c0000000")
        held = app.keys.broadcast(shard, broadcast.digest)
        fields = server.client.hlen(held)
        result: dict[str, Any] = {
            "recipients": count,
            "shards": app.keys.shards,
            "batch": args.batch,
            "plan_seconds": round(plan_seconds, 1),
            "recipients_per_s": round(count / plan_seconds, 1),
            "used_memory_per_send": round((memory_after - memory_before) / count, 1),
            "broadcast_hash_encoding": server.client.object("encoding", held).decode(),
            "broadcast_hash_per_send": round(
                int(server.client.memory_usage(held, samples=0) or 0) / fields, 1
            ),
            "due_zset_encoding": server.client.object("encoding", app.keys.due(shard)).decode(),
            "intents": server.client.hlen(app.keys.intents),
            "claim_before_us": before_claims["us_per_claim"],
            "claim_after_us": after_claims["us_per_claim"],
            "claim_ratio_after_before": round(
                after_claims["us_per_claim"] / before_claims["us_per_claim"], 3
            ),
            "machine": f"{platform.machine()}, Python {platform.python_version()}, "
            f"Redis {server.client.info('server')['redis_version']}",
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if args.cancel:
            print("cancelling...", file=sys.stderr)
            began = time.perf_counter()
            cancelled = app.broadcasts.cancel(broadcast.id, "benchmark")
            seconds = time.perf_counter() - began
            result["cancel_seconds"] = round(seconds, 1)
            result["cancelled_per_s"] = round(cancelled.cancelled / seconds, 1)
            result["cancelled"] = cancelled.cancelled
        app.close()
    finally:
        server.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
