"""The archive's figures: Redis memory per finished send before and after archiving, the mover's
rate into SQLite and PostgreSQL, and ``outreach report`` over a million archived sends.

    pip install -e '.[bench]'
    python benchmarks/archive_bench.py [--json] [--sends 20000] [--rows 1000000] [--runs 5]

It starts a throwaway ``redis-server`` and a throwaway PostgreSQL cluster (``initdb`` +
``pg_ctl`` on free loopback ports, as ``postgres`` when run as root) and stops both at the end;
it never talks to any other server (docs/PERFORMANCE.md, "The archive").

1. Memory. N ``order.delayed`` sends (one per customer, customers in ten of the shipped locales)
   planned, delivered in this process, then archived. ``INFO used_memory`` before the events,
   once every send is finished, and after archiving; the events' own keys (their markers, the
   journey's supersede key and the customer's key set, kept for the event window whatever
   happens to the send) are measured apart with ``MEMORY USAGE``.
2. The mover's rate: finished sends archived per second (``Outreach.archive_finished``, batches
   of 500), into a SQLite file and into PostgreSQL.
3. The report: ``--rows`` sends (and one answer for every tenth) written straight into the
   PostgreSQL archive over 30 days, 8 journeys, 10 locales, 4 channels, 12 countries (each
   answer with its send's journey, channel, locale and country, as Outreach records them); then
   ``build_report`` for 30 days, overall and by each grouping, ``--runs`` times each (median).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from outreach import Outreach
from outreach.archive import Database
from outreach.archive.migrations import migrate
from outreach.report import build_report

try:
    from benchmarks import run as bench
except ImportError:  # run as a script: its folder is on sys.path, not the project's
    import run as bench  # type: ignore[no-redef]

GROUPINGS = (None, "locale", "journey", "channel", "country")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields the URL of an empty database in it."""

    def program(name: str) -> str:
        debian = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = shutil.which(name) or (str(debian[-1]) if debian else None)
        if found is None:
            raise SystemExit(f"{name} is not installed (apt-get install postgresql)")
        return str(found)

    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    port = bench.free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "check": True}
    data = folder / "data"
    subprocess.run([*as_user, program("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"], **quiet)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run([*as_user, program("pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
                    "-w", "start"], **quiet)  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE memory")
            conn.execute("CREATE DATABASE report")
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, program("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], **quiet)
        shutil.rmtree(folder, ignore_errors=True)


#: Keys that are an event's (its marker, its journey's supersede key and the customer's set of such
#: keys) or a customer's live state (profile, today's caps, the check-in index), not a send's.
EVENT_PARTS = (":event:", ":supersede:")
CUSTOMER_PARTS = (":customer:", ":customers", ":recurring:", ":cap:", ":dnc", ":fatigue:")


def memory_by_kind(server: bench.RedisServer, prefix: str) -> dict[str, int]:
    """``MEMORY USAGE`` of every key under ``prefix``, summed by whose it is: event, customer, send."""
    out = {"event": 0, "customer": 0, "send": 0}
    for key in server.client.scan_iter(match=f"{prefix}*", count=5000):
        name = key.decode()
        size = int(server.client.memory_usage(key, samples=0) or 0)
        if any(p in name for p in EVENT_PARTS) or name.endswith(":keys"):
            out["event"] += size
        elif any(p in name for p in CUSTOMER_PARTS):
            out["customer"] += size
        else:
            out["send"] += size
    return out


def finished_sends(
    server: bench.RedisServer, tmp: Path, archive_url: str, n: int, tag: str
) -> dict[str, Any]:
    """Plan and deliver N sends in this process; Redis memory before and after archiving them."""
    server.flush()
    settings = bench.bench_settings(server, bench.bench_config(tmp), tmp, f"{tag}:", 0.1)
    app = Outreach(replace(settings, archive_url=archive_url, archive_after_seconds=0))
    customers = bench.add_customers(
        app, per_locale=max(n // 10, 1), zones=bench.zones_in_window(datetime.now(UTC))
    )
    before, kinds_before = server.used_memory(), memory_by_kind(server, f"{tag}:")
    planned = []
    for i in range(n):
        result = app.ingest(bench.delay_event(app, tag, i, customers[i % len(customers)]))
        planned += result.planned if result else []
    while claims := app.schedule.claim(500):
        app.deliver(claims)
    finished = app.mover.backlog()
    at_finish, kinds_finished = server.used_memory(), memory_by_kind(server, f"{tag}:")
    began = time.perf_counter()
    moved = app.archive_finished()
    move_s = time.perf_counter() - began
    after, kinds_after = server.used_memory(), memory_by_kind(server, f"{tag}:")
    size = archive_bytes(app)
    app.close()
    return {
        "archive_bytes_per_send": round(size / max(moved, 1), 1),
        "sends": n,
        "planned": len(planned),
        "finished": finished,
        "archived": moved,
        # MEMORY USAGE of the keys that are the sends' (not the events', not the customers'), per send.
        "bytes_per_finished_send_before_archiving": round(
            (kinds_finished["send"] - kinds_before["send"]) / finished, 1
        ),
        "bytes_per_finished_send_after_archiving": round(
            (kinds_after["send"] - kinds_before["send"]) / finished, 1
        ),
        "bytes_per_event_of_its_own_keys": round((kinds_after["event"] - kinds_before["event"]) / n, 1),
        "bytes_per_customer_of_live_state_added": round(
            (kinds_after["customer"] - kinds_before["customer"]) / n, 1
        ),
        # INFO used_memory around the same steps (everything: allocator, caches, the customers).
        "used_memory_per_send_finished": round((at_finish - before) / finished, 1),
        "used_memory_per_send_archived": round((after - before) / finished, 1),
        "archived_per_s": round(moved / move_s, 1),
    }


def archive_bytes(app: Outreach) -> int:
    """The archive's size on disk: PostgreSQL's tables with their indexes, or the SQLite file."""
    database = app.archive.database
    if database.dialect == "postgresql":
        tables = ("sends", "events", "attempts", "receipts", "answers", "refs")
        return sum(int(database.rows(f"SELECT pg_total_relation_size('{t}')")[0][0]) for t in tables)
    path = Path(database.url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


FILL = """
INSERT INTO sends (id, customer_id, journey, step, category, template, survey, event_type, event_id,
    state, reason, channel, provider, attempts, receipt, receipt_rank, zone, locale, country, start_ms,
    created_ms, due_ms, handed_ms, finished_ms, archived_ms, stored)
SELECT 's' || lpad(to_hex(g), 18, '0') || '.c' || (g % 200000),
       'c' || (g % 200000),
       (ARRAY['onboarding','order_delay','checkin','csat','nps','ces','winback','renewal'])[1 + g % 8],
       'step' || (g % 3), 'lifecycle', 'order_delay/notice',
       CASE WHEN g % 8 IN (3, 4, 5) THEN (ARRAY['csat','nps','ces'])[1 + g % 8 - 3] ELSE '' END,
       'order.delayed', 'e' || g,
       (ARRAY['delivered','delivered','delivered','delivered','delivered','delivered','suppressed',
              'failed','cancelled','delivered'])[1 + g % 10],
       (ARRAY['ok','ok','ok','ok','ok','ok','quiet_cap','attempts_exhausted','journey_exit',
              'ok'])[1 + g % 10],
       (ARRAY['email','sms','whatsapp','line'])[1 + g % 4], 'outbox', 1,
       (ARRAY['','delivered','read','bounced'])[1 + g % 4], (g % 4) - 1,
       'Europe/Paris',
       (ARRAY['en_US','de_DE','fr_FR','ja_JP','pt_BR','ar_EG','he_IL','zh_Hans_CN','vi_VN',
              'it_IT'])[1 + g % 10],
       (ARRAY['US','DE','FR','JP','BR','EG','IL','CN','VN','IT','GB','ES'])[1 + g % 12],
       %(start)s, %(start)s, %(start)s, %(start)s,
       %(start)s + (g::bigint * %(span)s / %(rows)s), %(start)s, '{}'
FROM generate_series(1, %(rows)s) AS g;
INSERT INTO answers (send_id, customer_id, kind, score, band, version, answered_ms, scored_ms,
    updated_ms, comment, journey, channel, locale, country)
SELECT id, customer_id, (ARRAY['csat','nps','ces'])[1 + (finished_ms % 3)::int], 4, 'positive',
       1, finished_ms, finished_ms + 3600000, finished_ms + 3600000, '', journey, channel, locale, country
FROM sends WHERE survey <> '' AND finished_ms % 3 = 0;
ANALYZE sends;
ANALYZE answers;
"""


def report_times(
    server: bench.RedisServer, tmp: Path, archive_url: str, rows: int, runs: int
) -> dict[str, Any]:
    """``build_report`` over ``rows`` archived sends: medians of ``runs`` runs per grouping."""
    import psycopg

    server.flush()
    migrate(Database(archive_url))  # the schema
    now = datetime.now(UTC)
    start = int((now - timedelta(days=30)).timestamp() * 1000)
    began = time.perf_counter()
    with psycopg.connect(archive_url, autocommit=True) as conn:
        conn.execute(FILL.replace("%(start)s", str(start)).replace("%(span)s", str(30 * 86_400_000 - 60_000))
                     .replace("%(rows)s", str(rows)))  # fmt: skip
        answers = conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    fill_s = time.perf_counter() - began
    settings = bench.bench_settings(server, bench.bench_config(tmp), tmp, "report:", 0.1)
    app = Outreach(replace(settings, archive_url=archive_url))
    out: dict[str, Any] = {"rows": rows, "answers": answers, "fill_s": round(fill_s, 1), "seconds": {}}
    for by in GROUPINGS:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            report = build_report(app, since=now - timedelta(days=30), until=now, by=by)
            times.append(time.perf_counter() - t)
        if report.overall.sends != rows:
            raise RuntimeError(f"the report counted {report.overall.sends} sends, not {rows}")
        out["seconds"][by or "overall"] = round(statistics.median(times), 3)
    app.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=("memory", "report"), help="one part of the run")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="outreach-archive-bench-"))
    server = bench.RedisServer(tmp / "redis")
    result: dict[str, Any] = {}
    try:
        with postgres() as pg:
            if args.only == "report":
                say(f"the report over {args.rows:,} archived sends in PostgreSQL")
                result["report"] = report_times(server, tmp, f"{pg}/report", args.rows, args.runs)
                print(json.dumps(result, indent=2))
                return 0
            say(f"memory and the mover, {args.sends:,} sends into SQLite")
            result["sqlite"] = finished_sends(
                server, tmp, f"sqlite:///{tmp / 'archive.sqlite3'}", args.sends, "m1"
            )
            say(f"memory and the mover, {args.sends:,} sends into PostgreSQL")
            result["postgresql"] = finished_sends(server, tmp, f"{pg}/memory", args.sends, "m2")
            if args.only == "memory":
                print(json.dumps(result, indent=2))
                return 0
            say(f"the report over {args.rows:,} archived sends in PostgreSQL")
            result["report"] = report_times(server, tmp, f"{pg}/report", args.rows, args.runs)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("sqlite", "postgresql"):
            r = result[name]
            print(f"{name}: a finished send {r['bytes_per_finished_send_before_archiving']:,.0f} B in Redis, "
                  f"{r['bytes_per_finished_send_after_archiving']:,.1f} B once archived "
                  f"(event's own keys {r['bytes_per_event_of_its_own_keys']:,.0f} B); "
                  f"archived {r['archived_per_s']:,.0f} sends/s, "
                  f"{r['archive_bytes_per_send']:,.0f} B each on disk")  # fmt: skip
        r = result["report"]
        print(
            f"report over {r['rows']:,} sends and {r['answers']:,} answers (PostgreSQL), medians: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in r["seconds"].items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
