"""Cost of outreach.timing.resolve, in microseconds per resolution.

Each representative rule is resolved for the same fixed set of (zone, start) pairs:
every IANA zone (or --zones N of them) and --starts instants spread over 2024-2026.
One repeat times the whole set; the figure reported is the median repeat divided by
the number of resolutions. Caches (zones, holiday calendars) are warmed first, so the
figures are steady-state; the cost of a cold holiday calendar is reported separately.

    .venv/bin/python benchmarks/timing_bench.py            # table
    .venv/bin/python benchmarks/timing_bench.py --json     # machine-readable
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import random
import statistics
import sys
import time
import zoneinfo

from outreach.timing import SendRule, calendar, resolve

RULES: dict[str, dict] = {
    "no_window": {},
    "days_at": {"days": 1, "at": "09:00"},
    "window_weekdays": {"days": 2, "window": "08:00-21:00", "weekdays": "mon-fri"},
    "holidays": {
        "days": 1,
        "at": "09:00",
        "window": "08:00-20:00",
        "weekdays": "mon-fri",
        "holidays": "DE-BY",
    },  # fmt: skip
    "wrap_weekend": {"window": "21:00-07:00", "weekdays": ["sat", "sun"], "holidays": "US"},
    # Sparse on purpose: one weekday, one hour; the search walks up to a week of days.
    "one_weekday": {"window": "09:00-10:00", "weekdays": ["wed"], "holidays": "DE-BY"},
}


def cases(zones: int, starts: int, seed: int) -> list[tuple[str, dt.datetime]]:
    """A fixed, seeded sample of (zone, start) pairs."""
    rng = random.Random(seed)
    names = sorted(zoneinfo.available_timezones() - {"localtime"})
    if zones < len(names):
        names = sorted(rng.sample(names, zones))
    lo = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    hi = dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    return [
        (name, dt.datetime.fromtimestamp(rng.uniform(lo, hi), dt.UTC))
        for name in names
        for _ in range(starts)
    ]


def measure(rule: SendRule, pairs: list[tuple[str, dt.datetime]], repeats: int) -> dict:
    for name, start in pairs:  # warm the caches
        resolve(rule, start, name)
    per_call = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for name, start in pairs:
            resolve(rule, start, name)
        per_call.append((time.perf_counter_ns() - t0) / len(pairs) / 1000)
    shifts = [len(resolve(rule, s, n).shifts) for n, s in pairs]
    return {
        "rule": rule.to_mapping(),
        "median_us": round(statistics.median(per_call), 2),
        "min_us": round(min(per_call), 2),
        "max_us": round(max(per_call), 2),
        "mean_shifts": round(statistics.fmean(shifts), 2),
    }


def cold_calendar_ms(code: str = "DE-BY", year: int = 2031) -> float:
    """Time to build one holiday calendar the first time it is needed."""
    calendar._calendar.cache_clear()
    country, subdiv = calendar._holiday_code(code)
    t0 = time.perf_counter_ns()
    calendar._calendar(country, subdiv, year)
    return round((time.perf_counter_ns() - t0) / 1e6, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--zones", type=int, default=10_000, help="zones to sample (default all)")
    parser.add_argument("--starts", type=int, default=5, help="start instants per zone")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per rule")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)

    pairs = cases(args.zones, args.starts, args.seed)
    results = {
        label: measure(SendRule.from_mapping(data), pairs, args.repeats) for label, data in RULES.items()
    }
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "resolutions_per_repeat": len(pairs),
        "zones": len({name for name, _ in pairs}),
        "repeats": args.repeats,
        "rules": results,
        "cold_holiday_calendar_ms": cold_calendar_ms(),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    print(f"{len(pairs)} resolutions per repeat over {report['zones']} zones, "
          f"median of {args.repeats} repeats (Python {report['python']})")  # fmt: skip
    print(f"{'rule':<16} {'median µs':>10} {'min µs':>8} {'max µs':>8} {'shifts':>7}")
    for label, r in results.items():
        print(f"{label:<16} {r['median_us']:>10} {r['min_us']:>8} {r['max_us']:>8} "
              f"{r['mean_shifts']:>7}")  # fmt: skip
    print(f"cold holiday calendar (DE-BY, one year): {report['cold_holiday_calendar_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
