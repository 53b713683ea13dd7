"""The whole path with real processes: HTTP in, worker ingestion, end to end (``run.py`` calls it).

One round, against the run's throwaway ``redis-server``:

1. **HTTP batch acceptance**: one ``uvicorn outreach.web.main:app`` process; ``n``
   ``order.delayed`` events POSTed to ``/v1/events`` in batches of 1,000 over one
   keep-alive connection. Events/s from the first request to the last answer, and
   the web process's CPU per event.
2. **Worker ingestion**: then one ``dramatiq outreach.worker --processes 1 --threads 8
   --queues outreach.ingest`` applies what the web process queued. Events/s from the
   moment the worker is ready until the inbox is empty and every event planned its
   send; the worker's CPU (its whole process group) and Redis's CPU per event.
3. **Single-event POSTs**: with the worker stopped, 8 client threads POST one event
   per request (keep-alive); requests/s and latency percentiles.
4. **End to end**: a fresh prefix; web, one worker on both queues and one
   ``outreach scheduler`` (pump every 0.1 s) running; ``n`` events POSTed in batches
   of 1,000; events/s from the first request until the stats count ``n`` deliveries.

Every send is due at once (customers in zones inside the send window) and goes to
the outbox.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

BATCH = 1000
SINGLE_THREADS = 8
TOKEN = "bench-token"


def cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[2] is the process group; [11], [12]: utime, stime (man 5 proc, counted from state).
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Api:
    """A keep-alive connection to the web process's API."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(self, body: Any) -> tuple[int, dict[str, Any]]:
        self.conn.request("POST", "/v1/events", json.dumps(body), self.headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read())

    def close(self) -> None:
        self.conn.close()


def post_batches(port: int, events: list[dict[str, Any]]) -> None:
    api = Api(port)
    try:
        for i in range(0, len(events), BATCH):
            status, body = api.post({"events": events[i : i + BATCH]})
            if status != 202:
                raise RuntimeError(f"batch refused: {status} {str(body)[:500]}")
    finally:
        api.close()


def post_singly(port: int, events: list[dict[str, Any]]) -> list[float]:
    """POST each event on its own from SINGLE_THREADS threads; the latency of each request."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(part: list[dict[str, Any]]) -> None:
        api = Api(port)
        mine = []
        try:
            for event in part:
                t = time.perf_counter()
                status, body = api.post(event)
                mine.append(time.perf_counter() - t)
                if status != 202:
                    errors.append(f"{status} {str(body)[:300]}")
        finally:
            api.close()
        with lock:
            latencies.extend(mine)

    threads = [
        threading.Thread(target=worker, args=(events[k::SINGLE_THREADS],)) for k in range(SINGLE_THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} single events refused, first: {errors[0]}")
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def pipeline_round(run, server, config: Path, tmp: Path, n: int, tag: str, interval: float) -> dict[str, Any]:
    """One round of the four figures; ``run`` is ``benchmarks.run`` (its helpers)."""
    from outreach.app import INGEST_QUEUE

    out: dict[str, Any] = {}
    # -- 1-3: staged, on one prefix -------------------------------------------------------
    app, customers, events, env, port = _project(
        run, server, config, tmp, f"pipe-{tag}:", f"{tag}h", n, interval
    )
    web = start_web(run, env, port, tmp / f"web-{tag}.log")
    try:
        cpu0, t0 = cpu_seconds(web.proc.pid), time.perf_counter()
        post_batches(port, events)
        seconds = time.perf_counter() - t0
        web_cpu = cpu_seconds(web.proc.pid) - cpu0
        out["http_batch"] = {
            "events": n,
            "events_per_s": round(n / seconds, 1),
            "web_cpu_us_per_event": round(web_cpu / n * 1e6, 1),
        }
        if app.inbox.depth() != n:
            raise RuntimeError(f"the inbox holds {app.inbox.depth()} events, not {n}")

        worker = run.Child(
            [str(run.BIN / "dramatiq"), "outreach.worker", "--processes", "1", "--threads", str(run.THREADS),
             "--queues", INGEST_QUEUE],
            env, r"Worker process is ready for action", tmp / f"ingest-{tag}.log",
        )  # fmt: skip
        try:
            redis0 = server.cpu_seconds()
            ready = worker.wait_ready()
            cpu0 = cpu_seconds(worker.proc.pid)
            done = run.wait_until(lambda: app.inbox.depth() == 0, timeout=max(120.0, n / 50), poll=0.01)
            cpu1, redis1 = cpu_seconds(worker.proc.pid), server.cpu_seconds()
        finally:
            worker.stop()
        planned = app.schedule.depth()[0]
        out["ingest"] = {
            "events": n,
            "planned": planned,
            "events_per_s": round(n / (done - ready), 1) if done else None,
            "worker_cpu_us_per_event": round((cpu1 - cpu0) / n * 1e6, 1),
            "redis_cpu_us_per_event": round((redis1 - redis0) / n * 1e6, 1),
        }
        if done is None or planned != n:
            out["ingest"]["error"] = f"{planned} of {n} sends planned, inbox {app.inbox.depth()}"

        singles = [run.delay_event(app, f"{tag}s", i, customers[i % len(customers)]) for i in range(n // 4)]
        t0 = time.perf_counter()
        latencies = post_singly(port, singles)
        seconds = time.perf_counter() - t0
        out["http_single"] = {
            "requests": len(singles),
            "client_threads": SINGLE_THREADS,
            "requests_per_s": round(len(singles) / seconds, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        }
    finally:
        web.stop()
        app.client.close()

    # -- 4: end to end, on a fresh prefix ---------------------------------------------------
    app, _, events, env, port = _project(run, server, config, tmp, f"e2e-pipe-{tag}:", f"{tag}e", n, interval)
    children = [start_web(run, env, port, tmp / f"e2e-web-{tag}.log")]
    try:
        children.append(
            run.Child(
                [
                    str(run.BIN / "dramatiq"),
                    "outreach.worker",
                    "--processes",
                    "1",
                    "--threads",
                    str(run.THREADS),
                ],
                env,
                r"Worker process is ready for action",
                tmp / f"e2e-worker-{tag}.log",
            )  # fmt: skip
        )
        children.append(
            run.Child(
                [str(run.BIN / "outreach"), "scheduler"],
                env,
                r"scheduler running",
                tmp / f"e2e-scheduler-{tag}.log",
            )  # fmt: skip
        )
        for child in children[1:]:
            child.wait_ready()
        t0 = time.perf_counter()
        post_batches(port, events)
        accepted = time.perf_counter() - t0
        key = "sends:delivered:ok"
        timeline: list[tuple[float, int, int, int]] = []
        last = [0.0]

        def finished() -> bool:
            delivered = run.counter(app, key)
            now = time.perf_counter() - t0
            if now - last[0] >= 0.5:
                last[0] = now
                timeline.append((round(now, 2), app.inbox.depth(), sum(app.schedule.depth()), delivered))
            return delivered >= n

        done = run.wait_until(finished, timeout=max(120.0, n / 50), poll=0.01)
        delivered = run.counter(app, key)
    finally:
        for child in reversed(children):
            child.stop()
        app.client.close()
    out["end_to_end"] = {
        "events": n,
        "delivered": delivered,
        "events_per_s": round(n / (done - t0), 1) if done else None,
        "accepted_in_s": round(accepted, 3),
        "seconds": round(done - t0, 3) if done else None,
        # Every half second: (seconds, events not yet applied, sends waiting or in flight, delivered).
        "timeline": timeline,
    }
    if done is None:
        out["end_to_end"]["error"] = f"{delivered} of {n} delivered"
    return out


def _project(run, server, config: Path, tmp: Path, prefix: str, label: str, n: int, interval: float):
    """An application on its own prefix with the benchmark's customers, ``n`` delay events for them,
    the environment of its processes and a free port for its web process."""
    from outreach import Outreach

    settings = run.bench_settings(server, config, tmp, prefix, interval)
    app = Outreach(settings)
    customers = run.add_customers(app, per_locale=100, zones=run.zones_in_window(run.datetime.now(run.UTC)))
    events = [run.delay_event(app, label, i, customers[i % len(customers)]) for i in range(n)]
    env = run.outreach_env(settings)
    env["OUTREACH_API_TOKENS"] = TOKEN
    return app, customers, events, env, run.free_port()


def start_web(run, env: dict[str, str], port: int, log: Path):
    child = run.Child(
        [str(run.BIN / "uvicorn"), "outreach.web.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "info"],
        env, r"Uvicorn running on", log,
    )  # fmt: skip
    child.wait_ready()
    return child
