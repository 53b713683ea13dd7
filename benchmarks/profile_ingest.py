"""Where the time of ingestion goes: batches of events applied in one thread, profiled.

    python benchmarks/profile_ingest.py [--events 4000] [--batch 200] [--json] [--pyinstrument]

Applies ``--events`` ``order.delayed`` events (ten of the shipped locales, one send each,
every journey with ``supersede_by``) with ``app.ingest_many`` on batches of
``--batch`` (the ingest actor's batch, ``OUTREACH_INGEST_BATCH``) in this one thread,
on a throwaway ``redis-server``, as a worker's ingest actor applies them (the
Dramatiq message itself is not in this picture: ``benchmarks/run.py`` measures the
worker process). ``--batch 1`` shows the cost of one event per message. Reports:

* wall and CPU time per event without a profiler, and Redis's own CPU per event
  (``INFO cpu``); the rest of the wall time is spent waiting for Redis;
* Redis round trips per event and Redis commands per event by name (commands run
  inside Lua scripts included);
* the profiled own time grouped by where the code lives, the inclusive share of a
  few entry points, and the top functions by own time; with ``--pyinstrument``
  (``pip install -e '.[bench]'``), the call tree.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: Entry points whose inclusive time is shown: label -> (file suffix, function name).
ENTRY_POINTS = {
    "Event.from_mapping (checking the event and its data)": ("outreach/journeys/events.py", "from_mapping"),
    "Customers.get_many (profiles)": ("outreach/customers/profiles.py", "get_many"),
    "Steps.resolve (timing: the local send moment)": ("outreach/journeys/planning.py", "resolve"),
    "Ingestor._run (start.lua for the batch)": ("outreach/journeys/ingest.py", "_run"),
    "Ingestor.ingest_many (all of ingestion)": ("outreach/journeys/ingest.py", "ingest_many"),
}

#: Own time grouped by where the code lives (first match wins); builtins go to their callers.
GROUPS = (
    ("redis: waiting on the socket", ("<method 'recv_into'", "<method 'sendall'", "<method 'recv'")),
    ("redis-py: packing commands, parsing replies", ("/redis/", "hiredis")),
    ("timing: zones, rules, resolution", ("outreach/timing/", "/zoneinfo/", "/holidays/")),
    (
        "checking events and their data",
        (
            "outreach/journeys/events.py",
            "outreach/journeys/fields.py",
            "outreach/contracts.py",
            "outreach/payload.py",
        ),
    ),  # fmt: skip
    ("profiles", ("outreach/customers/",)),
    ("JSON", ("/json/", "_json")),
    ("hashing ids (sha1)", ("_hashlib", "outreach/store/keys.py")),
    ("other Outreach code", ("outreach/",)),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pyinstrument", action="store_true", help="print a pyinstrument tree as well")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import profile_deliver as common
    from benchmarks import run

    with run.throwaway_app() as (server, app, customers):
        counter = iter(range(10**9))

        def batches() -> list[list[dict[str, Any]]]:
            events = [run.delay_event(app, "p", next(counter), customers[i % len(customers)])
                      for i in range(args.events)]  # fmt: skip
            return [events[i : i + args.batch] for i in range(0, len(events), args.batch)]

        def apply(work: list[list[dict[str, Any]]]) -> None:
            for batch in work:
                app.ingest_many(batch)

        apply(batches()[:2])  # warm up: zones, rules, scripts loaded (a worker's steady state)
        work = batches()
        client = server.client
        before, redis_before = common.commandstats(client), server.cpu_seconds()
        with common.RoundTrips() as trips:
            began, cpu = time.perf_counter(), time.process_time()
            apply(work)
            plain_s, cpu_s = time.perf_counter() - began, time.process_time() - cpu
        redis_s = server.cpu_seconds() - redis_before
        commands = common.commandstats(client) - before
        commands.pop("info", None)
        n = args.events
        if app.schedule.depth()[0] < n:
            raise RuntimeError(f"only {app.schedule.depth()[0]} sends planned")

        work = batches()
        profiler = cProfile.Profile()
        profiler.enable()
        apply(work)
        profiler.disable()
        stats = pstats.Stats(profiler)
        total = stats.total_tt  # type: ignore[attr-defined]
        entry = {label: common.inclusive(stats, *where) for label, where in ENTRY_POINTS.items()}
        groups = common.own_time_by_group(stats, GROUPS)

        tree = None
        if args.pyinstrument:
            try:
                from pyinstrument import Profiler
            except ImportError:
                tree = "pyinstrument is not installed (pip install -e '.[bench]')"
            else:
                work = batches()
                profiler2 = Profiler(interval=0.0005)
                profiler2.start()
                apply(work)
                profiler2.stop()
                tree = profiler2.output_text(unicode=True, color=False, show_all=False)

        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        report: dict[str, Any] = {
            "events": n,
            "batch": args.batch,
            "one_thread_events_per_s": round(n / plain_s, 1),
            "us_per_event": round(plain_s / n * 1e6, 1),
            "cpu_us_per_event": round(cpu_s / n * 1e6, 1),
            "redis_cpu_us_per_event": round(redis_s / n * 1e6, 1),
            "round_trips_per_event": round(trips.count / n, 3),
            "redis_commands_per_event": {
                name: round(c / n, 2) for name, c in commands.most_common() if c / n >= 0.01
            },
            "waiting_share_of_wall": round(1 - cpu_s / plain_s, 3),
            "profiled_us_per_event": round(total / n * 1e6, 1),
            "own_time_share_by_group": {k: round(v / total, 3) for k, v in groups.most_common()},
            "inclusive_share_of_profiled": {k: round(v / total, 3) for k, v in entry.items() if v},
        }
        common.show(report, args.json, out.getvalue(), tree)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
