"""Where the time of an Outreach send goes: one thread delivering claimed batches, profiled.

    python benchmarks/profile_deliver.py [--sends 2000] [--json] [--pyinstrument]

Plans ``--sends`` ``order.delayed`` sends due now (ten of the shipped locales, email to the
outbox, no rate limits) on a throwaway ``redis-server``, claims them, and runs
``app.deliver`` on batches of ``deliver_batch`` (50) in this one thread under
``cProfile`` (and ``pyinstrument`` with ``--pyinstrument``, when installed). Reports:

* wall and CPU time per send without a profiler; the rest of the wall time is
  spent waiting for Redis;
* Redis round trips per send (requests written on a connection: a pipeline is one)
  and Redis commands per send by name (``INFO commandstats``, commands run inside
  Lua scripts included);
* the profiled own time grouped by where the code lives (rendering, policy and
  timing, redis-py, the socket, JSON, ...; a builtin such as ``str.join`` counts
  for the code that called it), and the inclusive share of a few entry points;
* the top functions by own time.

The Dramatiq worker, its threads and the pump are not in this picture: see
``benchmarks/run.py`` for the end-to-end figure.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis.connection

ROOT = Path(__file__).resolve().parent.parent

#: Stable entry points whose inclusive time is shown: label -> (file suffix, function name).
ENTRY_POINTS = {
    "Renderer.render (Jinja + Babel: subject, text, HTML)": ("outreach/localization/render.py", "render"),
    "Policy.decide (consent, channels, window, caps)": ("outreach/policy/decide.py", "decide"),
    "Schedule.begin (begin.lua)": ("outreach/schedule/transitions.py", "begin"),
    "Schedule.get_many (send hashes)": ("outreach/schedule/reads.py", "get_many"),
    "Customers.get_many (profiles)": ("outreach/customers/profiles.py", "get_many"),
    "Outbox.send (one JSON line)": ("outreach/channels/outbox.py", "send"),
}

#: Own time is grouped by where the code lives (first match wins); builtins go to their callers.
GROUPS = (
    ("redis: waiting on the socket", ("<method 'recv_into'", "<method 'sendall'", "<method 'recv'")),
    ("redis-py: packing commands, parsing replies", ("/redis/", "hiredis")),
    (
        "rendering: Jinja, MarkupSafe, Babel, templates",
        (
            "/jinja2/",
            "/markupsafe/",
            "/babel/",
            "/templates/",
            "outreach/localization/",
            "/gettext.py",
        ),
    ),
    ("policy and timing", ("outreach/policy/", "outreach/timing/", "/zoneinfo/", "/holidays/")),
    ("transport: outbox file", ("outreach/channels/", "posix.", "pathlib.py", "<built-in method io.open")),
    ("JSON (history entries, send fields, outbox line)", ("/json/", "_json")),
    ("unsubscribe token (HMAC)", ("outreach/links.py", "/hmac.py", "/base64.py", "_hashlib")),
    ("other Outreach code", ("outreach/",)),
)


def _where(func: tuple[str, int, str]) -> str:
    filename, _line, name = func
    return name if filename == "~" else filename.replace("\\", "/")


def _group(text: str, groups: tuple[tuple[str, tuple[str, ...]], ...] = GROUPS) -> str | None:
    for label, needles in groups:
        if any(n in text for n in needles):
            return label
    return None


def own_time_by_group(
    stats: pstats.Stats, groups: tuple[tuple[str, tuple[str, ...]], ...] = GROUPS
) -> Counter:
    """Own (exclusive) seconds per group; a builtin's time goes to its callers' groups."""
    table = stats.stats  # type: ignore[attr-defined]
    out: Counter = Counter()
    for func, (_cc, _nc, tt, _ct, callers) in table.items():
        where = _where(func)
        label = _group(where, groups)
        if label is None and func[0] == "~" and callers:
            # A builtin (str.join, isinstance, ...): split its time over the callers that spent it.
            spent = sum(v[2] for v in callers.values()) or 1.0
            for caller, value in callers.items():
                out[_group(_where(caller), groups) or "other"] += tt * value[2] / spent
            continue
        out[label or "other"] += tt
    return out


class RoundTrips:
    """Counts requests written to Redis connections (one per command, one per pipeline)."""

    def __init__(self) -> None:
        self.count = 0
        self._original = redis.connection.AbstractConnection.send_packed_command

    def __enter__(self) -> RoundTrips:
        original = self._original

        def counting(conn, command, check_health=True):
            self.count += 1
            return original(conn, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc) -> None:
        redis.connection.AbstractConnection.send_packed_command = self._original  # type: ignore[method-assign]


def commandstats(client) -> Counter:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): v["calls"] for name, v in stats.items()})


def inclusive(stats: pstats.Stats, suffix: str, name: str) -> float:
    """Inclusive seconds of the functions called ``name`` in a file ending in ``suffix``."""
    total = 0.0
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name and filename.replace("\\", "/").endswith(suffix):
            total += ct
    return total


def show(report: dict[str, Any], as_json: bool, top: str, tree: str | None) -> None:
    """Print a profile's report: one JSON object, or a table with the top functions (and the tree)."""
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        width = max(len(k) for v in report.values() if isinstance(v, dict) for k in v) if report else 0
        for key, value in report.items():
            if isinstance(value, dict):
                print(f"{key}:")
                for k, v in value.items():
                    print(f"    {k:<{width}} {v}")
            else:
                print(f"{key}: {value}")
        print(top)
    if tree:
        print(tree)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pyinstrument", action="store_true", help="print a pyinstrument tree as well")
    parser.add_argument("--top", type=int, default=15, help="functions listed by own time")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks import run

    with run.throwaway_app() as (server, app, customers):
        for i in range(args.sends):
            app.ingest(run.delay_event(app, "p", i, customers[i % len(customers)]))
        claims = []
        while batch := app.schedule.claim(app.settings.claim_limit):
            claims.extend(batch)
        size = app.settings.deliver_batch
        batches = [claims[i : i + size] for i in range(0, len(claims), size)]
        # Warm up: templates compiled, catalogs and zones loaded (a worker's steady state).
        warm = batches.pop(0)
        app.deliver(warm)
        measured = sum(len(b) for b in batches)

        before = commandstats(server.client)
        with RoundTrips() as trips:
            began, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                app.deliver(batch)
            plain_s, cpu_s = time.perf_counter() - began, time.process_time() - cpu
        after = commandstats(server.client)
        commands = after - before
        commands.pop("info", None)

        # The same again under the profiler (fresh sends: the delivered ones are final).
        for i in range(args.sends, args.sends + measured):
            app.ingest(run.delay_event(app, "p", i, customers[i % len(customers)]))
        claims = []
        while batch := app.schedule.claim(app.settings.claim_limit):
            claims.extend(batch)
        batches = [claims[i : i + size] for i in range(0, len(claims), size)]
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in batches:
            app.deliver(batch)
        profiler.disable()
        stats = pstats.Stats(profiler)
        total = stats.total_tt  # type: ignore[attr-defined]
        entry = {label: inclusive(stats, *where) for label, where in ENTRY_POINTS.items()}
        entry = {k: v for k, v in entry.items() if v > 0}
        groups = own_time_by_group(stats)
        delivered = run.counter(app, "sends:delivered:ok")

        tree = None
        if args.pyinstrument:
            try:
                from pyinstrument import Profiler
            except ImportError:
                tree = "pyinstrument is not installed"
            else:
                for i in range(args.sends + measured, args.sends + 2 * measured):
                    app.ingest(run.delay_event(app, "p", i, customers[i % len(customers)]))
                claims = []
                while batch := app.schedule.claim(app.settings.claim_limit):
                    claims.extend(batch)
                profiler2 = Profiler(interval=0.0005)
                profiler2.start()
                for i in range(0, len(claims), size):
                    app.deliver(claims[i : i + size])
                profiler2.stop()
                tree = profiler2.output_text(unicode=True, color=False, show_all=False)

        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        report: dict[str, Any] = {
            "sends": measured,
            "delivered_total": delivered,
            "one_thread_sends_per_s": round(measured / plain_s, 1),
            "us_per_send": round(plain_s / measured * 1e6, 1),
            "round_trips_per_send": round(trips.count / measured, 2),
            "redis_commands_per_send": {
                name: round(n / measured, 2) for name, n in commands.most_common() if n / measured >= 0.01
            },
            "cpu_us_per_send": round(cpu_s / measured * 1e6, 1),
            "waiting_share_of_wall": round(1 - cpu_s / plain_s, 3),
            "profiled_us_per_send": round(total / measured * 1e6, 1),
            "own_time_share_by_group": {k: round(v / total, 3) for k, v in groups.most_common()},
            "inclusive_share_of_profiled": {k: round(v / total, 3) for k, v in entry.items()},
        }
        show(report, args.json, out.getvalue(), tree)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
