"""Outreach throughput, schedule memory and pump figures, next to Dramatiq and Celery, in one run.

    pip install -e '.[bench]'
    python benchmarks/run.py [--json] [--quick] [--sends N] [--backlog 1000000]

Everything runs against one throwaway ``redis-server`` this script starts on a
free loopback port (``--save '' --appendonly no``) and stops at the end; it never
talks to any other Redis. Measured in the same run (docs/PERFORMANCE.md):

1. Dramatiq no-op throughput: 20,000 messages enqueued first, then
   ``dramatiq benchmarks.noop --processes 1 --threads 8``; messages/s from the
   moment the worker process is ready until every message is acknowledged.
2. The same no-op as a Celery task (``celery -A benchmarks.celery_app worker
   --pool threads -c 8``, no result backend); tasks/s, timed the same way.
3. Outreach end to end: N ``order.delayed`` sends due now for customers in the ten
   shipped locales, planned with ``app.ingest`` (timed separately: the ingestion
   rate); then one ``dramatiq outreach.worker --processes 1 --threads 8 --queues
   outreach.deliver`` and the pump ticking in this process (APScheduler, as
   ``outreach run`` does). Delivered/s from the first pump tick until the stats
   hash counts N deliveries; the outbox must hold N lines.
4. A backlog of far-future onboarding sends planned through ``Schedule.plan``
   (pipelined, as ``ingest.py`` plans them): fill rate and Redis memory per send.
5. With that backlog: ``Schedule.claim`` and ``app.pump()`` throughput on sends made
   due now that were never claimed before (the small backlog shared among the
   runs: 25,000 sends per run in a full run), then the due-to-enqueue lag while
   a producer adds 1,000 sends/s due now and the pump ticks every 0.1 s
   (``OUTREACH_PUMP_INTERVAL``).
6. Step 4-5 at a tenth of the backlog, and the ratios 1M / 100k.
7. The whole path with real processes (``benchmarks/pipeline.py``): HTTP batch
   acceptance by one web process, worker ingestion by one worker process (its CPU
   and Redis's CPU per event), single-event POSTs from 8 client threads, and end
   to end from the first POST until every send is delivered (web, worker and
   scheduler processes), each next to the Dramatiq no-op of the same round.

The throughput rounds (1-3 and 7) run once first; the backlog figures next; further
rounds follow while the time budget allows (3 rounds in all, ``--quick`` one).
Medians are quoted. Progress goes to stderr; ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from outreach import Outreach, Settings
from outreach.app import DELIVER_QUEUE
from outreach.channels.outbox import OUTBOX_FILE, Outbox
from outreach.clock import to_ms
from outreach.journeys.preview import sample_customer
from outreach.schedule import Intent
from outreach.store import scripts
from outreach.store.keys import send_id_for, split_send_id
from outreach.ticks import build_scheduler
from outreach.timing import resolve

try:
    from benchmarks import pipeline
except ImportError:  # run as a script: its folder is on sys.path, not the project's
    import pipeline  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "outreach" / "starter"
BIN = Path(sys.executable).parent
THREADS = 8
NOOP_MESSAGES = 20_000
#: Sends made due now for each claim and pump run (fewer when the small backlog cannot hold them all).
DUE_NOW = 100_000
#: Sends per ``Schedule.claim`` call in the claim figure (the default ``claim_limit``).
CLAIM_LIMIT = 500
#: Sends per second the steady-state producer adds, due now.
PRODUCER_RATE = 1000
#: Time budget of a whole run in seconds; extra rounds are skipped past it.
BUDGET_S = 540.0

#: Targets: name -> (comparison, bound).
TARGETS: dict[str, tuple[str, float]] = {
    "outreach_vs_dramatiq": (">=", 2.5),
    "ingest_vs_dramatiq": (">=", 2.5),
    "end_to_end_vs_dramatiq": (">=", 1.0),
    "http_batch_vs_dramatiq": (">=", 3.0),
    "redis_cpu_us_per_event": ("<=", 100.0),
    "outreach_vs_celery": (">=", 8.0),
    "memory_bytes_per_send": ("<=", 300.0),
    "pump_claims_per_s": (">=", 20_000.0),
    "lag_p99_s": ("<=", 1.0),
    "cost_growth_1m_vs_100k": ("<=", 1.3),
}

START = time.perf_counter()


def say(text: str) -> None:
    """Progress on stderr, so that stdout stays one JSON object with --json."""
    print(f"[{time.perf_counter() - START:6.1f}s] {text}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# -- the throwaway Redis and child processes ------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server on a free loopback port, without persistence; stopped on exit."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        if self.port == 6379:  # never the developer's Redis
            raise SystemExit("refusing to use port 6379")
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        # A long timeout: MEMORY USAGE ... SAMPLES 0 walks a whole million-entry sorted set.
        self.client = redis.Redis.from_url(self.url, socket_timeout=300)
        for _ in range(250):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        else:
            self.stop()
            raise SystemExit("redis-server did not start")

    def flush(self) -> None:
        """Empty this throwaway server (only ever this one: its port is ours).

        FLUSHALL ASYNC frees in a background thread; wait until it is done, so that
        the next ``used_memory`` reading is not inflated by what is still being freed.
        """
        assert self.port != 6379
        self.client.flushall(asynchronous=True)
        while int(self.client.info("memory").get("lazyfree_pending_objects", 0)):
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server has used (``INFO cpu``)."""
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def throwaway_app(prefix: str = "prof:", per_locale: int = 20):
    """(server, app, customer ids): an application on a redis-server of its own, with the benchmark's
    config and customers in zones where it is now inside the send window; all gone on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="outreach-profile-"))
    server = RedisServer(tmp / "redis")
    try:
        app = Outreach(bench_settings(server, bench_config(tmp), tmp, prefix, 0.1))
        yield server, app, add_customers(app, per_locale=per_locale, zones=zones_in_window(datetime.now(UTC)))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def child_env(**extra: str) -> dict[str, str]:
    """This environment without any OUTREACH_* / BENCH_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "BENCH_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


class Child:
    """A child process in its own session; its output goes to a log file, watched for a ready line."""

    def __init__(self, argv: list[str], env: dict[str, str], ready: str, log: Path) -> None:
        self.pattern = re.compile(ready)
        self.log_path = log
        self.ready_at: float | None = None
        self._ready = threading.Event()
        self.launched_at = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with open(self.log_path, "wb") as log:
            for line in self.proc.stdout:  # type: ignore[union-attr]
                if self.ready_at is None and self.pattern.search(line.decode("utf-8", "replace")):
                    self.ready_at = time.perf_counter()
                    self._ready.set()
                log.write(line)
                log.flush()

    def wait_ready(self, timeout: float = 60) -> float:
        deadline = time.perf_counter() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                tail = self.log_path.read_text("utf-8", "replace")[-2000:]
                raise RuntimeError(f"{self.proc.args[:3]} did not become ready:\n{tail}")
        assert self.ready_at is not None
        return self.ready_at

    def stop(self) -> None:
        """SIGTERM to the process group this script started, SIGKILL if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


def wait_until(check, timeout: float, poll: float = 0.005) -> float | None:
    """perf_counter() of the first poll at which ``check()`` held twice in a row; None on timeout."""
    deadline = time.perf_counter() + timeout
    first = None
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        if check():
            if first is not None:
                return first
            first = now
        else:
            first = None
        time.sleep(poll)
    return None


# -- machine -----------------------------------------------------------------------------


def machine(server: RedisServer) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("dramatiq", "redis", "celery", "kombu", "jinja2", "babel"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "redis_server": server.client.info("server")["redis_version"],
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }


# -- 1. Dramatiq no-op ----------------------------------------------------------------------


def dramatiq_round(server: RedisServer, tmp: Path, n: int, tag: str) -> dict[str, Any]:
    from benchmarks import noop

    namespace = f"bench-dq-{tag}"
    broker, actor = noop.build(server.url, namespace)
    key = noop.messages_key(namespace)
    began = time.perf_counter()
    for _ in range(n):
        actor.send()
    enqueue_s = time.perf_counter() - began
    assert server.client.hlen(key) == n, "not every no-op message was enqueued"
    env = child_env(BENCH_REDIS_URL=server.url, BENCH_DRAMATIQ_NAMESPACE=namespace)
    argv = [str(BIN / "dramatiq"), "benchmarks.noop", "--processes", "1", "--threads", str(THREADS)]
    child = Child(argv, env, r"Worker process is ready for action", tmp / f"dramatiq-{tag}.log")
    try:
        ready = child.wait_ready()
        done = wait_until(lambda: server.client.hlen(key) == 0, timeout=300)
    finally:
        child.stop()
        broker.close()
    if done is None:
        raise RuntimeError("the Dramatiq no-op worker did not drain its queue within 300 s")
    return {
        "messages": n,
        "messages_per_s": round(n / (done - ready), 1),
        "seconds": round(done - ready, 3),
        "startup_s": round(ready - child.launched_at, 3),
        "messages_per_s_with_startup": round(n / (done - child.launched_at), 1),
        "enqueue_per_s": round(n / enqueue_s, 1),
    }


# -- 2. Celery no-op ------------------------------------------------------------------------


def celery_available() -> str | None:
    """None when Celery can run, else why not."""
    try:
        import celery  # noqa: F401
    except ImportError as exc:
        return f"celery is not installed ({exc}); pip install -e '.[bench]'"
    if not (BIN / "celery").exists():
        return f"no celery command in {BIN}"
    return None


def celery_round(server: RedisServer, tmp: Path, n: int, tag: str) -> dict[str, Any]:
    from benchmarks import celery_app

    client = server.client
    queue = celery_app.QUEUE
    client.delete(queue, "unacked", "unacked_index")
    began = time.perf_counter()
    for _ in range(n):
        celery_app.noop.apply_async()
    enqueue_s = time.perf_counter() - began
    assert client.llen(queue) == n, "not every Celery task was enqueued"
    env = child_env(BENCH_REDIS_URL=server.url)
    argv = [str(BIN / "celery"), "-A", "benchmarks.celery_app", "worker", "--pool", "threads",
            "-c", str(THREADS), "--loglevel", "INFO", "--hostname", f"bench-{tag}@%h"]  # fmt: skip
    child = Child(argv, env, r"@\S+ ready\.", tmp / f"celery-{tag}.log")
    try:
        ready = child.wait_ready()
        done = wait_until(lambda: client.llen(queue) == 0 and client.hlen("unacked") == 0, timeout=300)
    finally:
        child.stop()
    if done is None:
        raise RuntimeError("the Celery worker did not drain its queue within 300 s")
    return {
        "tasks": n,
        "tasks_per_s": round(n / (done - ready), 1),
        "seconds": round(done - ready, 3),
        "startup_s": round(ready - child.launched_at, 3),
        "tasks_per_s_with_startup": round(n / (done - child.launched_at), 1),
        "enqueue_per_s": round(n / enqueue_s, 1),
    }


# -- 3. Outreach end to end -------------------------------------------------------------


def bench_config(tmp: Path) -> Path:
    """A copy of config/ whose channels.toml has no rate or burst; policy.toml is unchanged."""
    folder = tmp / "config"
    if folder.exists():
        return folder
    shutil.copytree(STARTER / "config", folder)
    source = STARTER / "config" / "channels.toml"
    data = tomllib.loads(source.read_text("utf-8")) if source.exists() else {}
    lines = ["# benchmarks/run.py: config/channels.toml without rate and burst."]
    for channel, table in data.items():
        lines.append(f"\n[{channel}]")
        nested = {}
        for key, value in table.items():
            if key in ("rate", "burst"):
                continue
            if isinstance(value, dict):
                nested[key] = value
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        for key, value in nested.items():
            lines.append(f"[{channel}.{key}]")
            lines.extend(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
    (folder / "channels.toml").write_text("\n".join(lines) + "\n", "utf-8")
    return folder


def zones_in_window(now: datetime) -> list[str]:
    """Etc/GMT zones where it is now between 09:00 and 19:59 local time (inside 07:00-22:00)."""
    names = []
    for offset in range(-12, 15):
        if 9 <= (now.hour + offset) % 24 <= 19:
            # Etc/GMT signs are inverted: Etc/GMT-3 is UTC+3.
            names.append("Etc/GMT" + (f"{-offset:+d}" if offset else ""))
    return names


def bench_settings(server: RedisServer, config: Path, tmp: Path, prefix: str, interval: float, **more):
    return Settings(
        redis_url=server.url,
        prefix=prefix,
        config_dir=config,
        templates_dir=STARTER / "templates",
        outbox_dir=tmp / f"outbox-{prefix.rstrip(':')}",
        pump_interval=interval,
        archive_url=f"sqlite:///{tmp / ('archive-' + prefix.rstrip(':') + '.sqlite3')}",
        **more,
    )


def outreach_env(settings: Settings) -> dict[str, str]:
    return child_env(
        OUTREACH_REDIS_URL=str(settings.redis_url),
        OUTREACH_PREFIX=settings.prefix,
        OUTREACH_CONFIG_DIR=str(settings.config_dir),
        OUTREACH_TEMPLATES_DIR=str(settings.templates_dir),
        OUTREACH_OUTBOX_DIR=str(settings.outbox_dir),
        OUTREACH_PUMP_INTERVAL=str(settings.pump_interval),
        OUTREACH_ARCHIVE_URL=settings.archive_url,
    )


def add_customers(app: Outreach, per_locale: int, zones: list[str]) -> list[str]:
    """Customers in every shipped locale (names from the demo data), email, zones in the window."""
    ids = []
    for tag in app.locales.shipped:
        person = sample_customer(tag)
        for k in range(per_locale):
            customer_id = f"{tag}-{k}"
            app.upsert_customer(
                {"id": customer_id, "given_name": person.given_name, "family_name": person.family_name,
                 "title": person.title, "email": f"{tag.lower()}.{k}@example.com", "locale": tag,
                 "zone": zones[k % len(zones)], "country": person.country, "channel": "email"}
            )  # fmt: skip
            ids.append(customer_id)
    return ids


#: The delay notice's fields every run has measured (the starter's sample adds a reason, options and a
#: link, whose cost docs/LOCALIZATION.md, "Cost", gives per email): runs stay comparable.
MEASURED_FIELDS = ("order_id", "original_eta", "new_eta", "credit", "currency")


def delay_event(app: Outreach, tag: str, i: int, customer_id: str) -> dict[str, Any]:
    sample = app.journeys["order_delay"].sample or {}
    data = {k: v for k, v in sample.items() if k in MEASURED_FIELDS}
    data["order_id"] = f"{tag}-{i}"
    data["new_eta"] = (date.today() + timedelta(days=6)).isoformat()
    return {"id": f"{tag}-ev-{i}", "type": "order.delayed", "customer_id": customer_id, "data": data}


def counter(app: Outreach, name: str) -> int:
    """One counter summed over the stats hashes of every shard (one round trip)."""
    pipe = app.client.pipeline(transaction=False)
    for key in app.keys.all_stats():
        pipe.hget(key, name)
    return sum(int(value or 0) for value in pipe.execute())


def outreach_round(server, config: Path, tmp: Path, n: int, tag: str, interval: float) -> dict[str, Any]:
    settings = bench_settings(server, config, tmp, f"e2e-{tag}:", interval)
    app = Outreach(settings)
    if not all(isinstance(t, Outbox) for t in app.transports.values()):
        raise RuntimeError("a channel is not on the outbox; unset OUTREACH_*_URL")
    customers = add_customers(app, per_locale=100, zones=zones_in_window(datetime.now(UTC)))
    began = time.perf_counter()
    planned = 0
    for i in range(n):
        result = app.ingest(delay_event(app, tag, i, customers[i % len(customers)]))
        planned += len(result.planned) if result else 0
    ingest_s = time.perf_counter() - began
    if planned != n:
        raise RuntimeError(f"{planned} of {n} events planned a send")
    [later] = app.schedule.count_due([(to_ms(datetime.now(UTC)) + 60_000, "+inf")])
    if later or app.schedule.depth() != (n, 0):
        raise RuntimeError(f"sends not all due now: {later} later, depth {app.schedule.depth()}")

    argv = [str(BIN / "dramatiq"), "outreach.worker", "--processes", "1", "--threads", str(THREADS),
            "--queues", DELIVER_QUEUE]  # fmt: skip
    child = Child(argv, outreach_env(settings), r"Worker process is ready for action", tmp / f"{tag}.log")
    delivered_key = "sends:delivered:ok"
    try:
        child.wait_ready()
        scheduler = build_scheduler(app, blocking=False)
        cpu_before, redis_before = pipeline.cpu_seconds(child.proc.pid), server.cpu_seconds()
        began = time.perf_counter()
        scheduler.start()
        timeout = max(60.0, n / 100)
        done = wait_until(lambda: counter(app, delivered_key) >= n, timeout=timeout, poll=0.01)
        worker_cpu = pipeline.cpu_seconds(child.proc.pid) - cpu_before
        redis_cpu = server.cpu_seconds() - redis_before
        scheduler.shutdown(wait=True)
    finally:
        child.stop()
    stats = app.stats()
    delivered = int(stats.get(delivered_key, 0))
    outcomes = {k: int(v) for k, v in stats.items() if k.startswith("sends:")}
    path = Path(settings.outbox_dir) / OUTBOX_FILE
    lines = sum(1 for _ in path.open("rb")) if path.exists() else 0
    elapsed = (done if done is not None else time.perf_counter()) - began
    result = {
        "sends": n,
        "delivered": delivered,
        "outbox_lines": lines,
        "all_delivered": delivered == n and lines == n,
        "delivered_per_s": round(delivered / elapsed, 1),
        "seconds": round(elapsed, 3),
        # The worker process group's CPU (the Dramatiq master and its worker) and Redis's, per send.
        "worker_cpu_us_per_send": round(worker_cpu / max(delivered, 1) * 1e6, 1),
        "redis_cpu_us_per_send": round(redis_cpu / max(delivered, 1) * 1e6, 1),
        "outcomes": outcomes,
        "ingest": {
            "events": n,
            "sends": planned,
            "events_per_s": round(n / ingest_s, 1),
            "sends_per_s": round(planned / ingest_s, 1),
        },
    }
    if done is None:
        result["error"] = f"not every send was delivered within {timeout:.0f} s"
    app.client.close()
    return result


# -- 4-6. Backlog: memory, claims, pump, lag ----------------------------------------------


class Backlog:
    """Sends shaped as ``ingest.py`` plans them, for ``customer.signed_up`` (onboarding).

    Each event is one customer's sign-up and plans the journey's three steps with
    real intents, rules and resolutions, for ten of the shipped locales over ``days``
    future start days, through ``Schedule.plan`` exactly as ingest calls it.
    ``due_now`` gives an ``order.delayed`` notice due at once (the steady-state
    producer).
    """

    def __init__(self, app: Outreach, now: datetime, days: int = 120) -> None:
        self.app = app
        self.now = now
        self.journey = app.journeys["onboarding"]
        self.steps = self.journey.steps
        self.people = [sample_customer(tag) for tag in app.locales.shipped]
        self.days = days
        self.plans: list[tuple[Intent, datetime, datetime]] = []
        for person in self.people:
            for day in range(days):
                start = now + timedelta(days=1 + day, minutes=(37 * day) % 600)
                for step in self.steps:
                    self.plans.append(self._plan(self.journey, step, person, start, "customer.signed_up"))
        delay = app.journeys["order_delay"]
        self.delay = (delay, delay.steps[0])

    @staticmethod
    def _plan(journey, step, person, start: datetime, event_type: str) -> tuple[Intent, datetime, datetime]:
        resolution = resolve(step.send_rule(person.calendar), start, person.zone)
        intent = Intent(
            journey=journey.name, step=step.name, category=journey.category, template=step.template,
            channels=json.dumps(step.channels), rule=step.rule_json, survey=step.survey or "",
            event_type=event_type, zone=person.zone, country=person.country or "",
        )  # fmt: skip
        return intent, start, resolution.utc

    @staticmethod
    def event_id(event: int) -> str:
        return hashlib.md5(f"bench-event-{event}".encode()).hexdigest()  # a uuid4().hex's length

    def send(self, i: int) -> tuple[str, Intent, str, datetime, datetime]:
        """Send number ``i``: (send id, intent, event id, event start, due)."""
        event, step = divmod(i, len(self.steps))
        person = event % len(self.people)
        day = (event // len(self.people)) % self.days
        intent, start, due = self.plans[(person * self.days + day) * len(self.steps) + step]
        event_id = self.event_id(event)
        return self.send_id(i), intent, event_id, start, due

    def send_id(self, i: int) -> str:
        event, step = divmod(i, len(self.steps))
        return send_id_for(self.event_id(event), self.journey.name, self.steps[step].name, f"c-{event}")

    def due_now(self, i: int, due: datetime) -> tuple[str, Intent, str, dict[str, str]]:
        """A delay notice due at ``due``: (send id, intent, event id, data)."""
        journey, step = self.delay
        intent, _, _ = self._plan(journey, step, self.people[i % len(self.people)], due, "order.delayed")
        event_id = self.event_id(10**9 + i)
        send_id = send_id_for(event_id, journey.name, step.name, f"p-{i}")
        return send_id, intent, event_id, {"order_id": f"P-{i}", "new_eta": "2030-01-01"}

    def fill(self, client: redis.Redis, count: int, chunk: int = 1000) -> None:
        """Plan ``count`` sends through ``Schedule.plan`` on a pipeline, as ingest does."""
        schedule = self.app.schedule
        client.script_load(scripts.source("outreach.schedule", "plan"))
        pipe = client.pipeline(transaction=False)
        for i in range(count):
            send_id, intent, event_id, start, due = self.send(i)
            schedule.plan(send_id, due, intent, event_id=event_id, start=start, data={}, pipe=pipe)
            if i % chunk == chunk - 1:
                pipe.execute()
        pipe.execute()


def set_due(app: Outreach, ids: list[str], scores: list[int], chunk: int = 5000) -> None:
    """Move sends in the due sets to the given scores; a claimed one goes back as ``scheduled``."""
    keys = app.keys
    pipe = app.client.pipeline(transaction=False)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        for send_id, score in zip(part, scores[start : start + chunk], strict=True):
            shard = keys.shard_of_send(send_id)
            pipe.zadd(keys.due(shard), {send_id: score})
            pipe.zrem(keys.inflight(shard), send_id)
            # A planned send has no hash of its own; HSET XX-like: only touch one that exists.
            pipe.eval(
                "if redis.call('EXISTS', KEYS[1]) == 1 then "
                "redis.call('HSET', KEYS[1], 'state', 'scheduled') redis.call('HDEL', KEYS[1], 'token') end",
                1, keys.send(send_id),
            )  # fmt: skip
        pipe.execute()


def memory_samples(client: redis.Redis, app: Outreach, send_id: str) -> dict[str, Any]:
    """MEMORY USAGE of the structures a planned send lives in, per send."""
    keys = app.keys
    customer = split_send_id(send_id)[2]
    shard = keys.shard_of(customer)

    def usage(key: str) -> int:
        return int(client.memory_usage(key, samples=0) or 0)

    plan = keys.planned(customer)
    sends_in_plan = sum(1 for field in client.hkeys(plan) if len(field) == 18) or 1
    zcard = client.zcard(keys.due(shard))
    return {
        "plan_hash_per_send": round(usage(plan) / sends_in_plan, 1),
        "plan_hash_encoding": client.object("encoding", plan).decode(),
        "plan_hash_fields": client.hlen(plan),
        "due_zset_per_entry": round(usage(keys.due(shard)) / zcard, 1) if zcard else None,
        "due_zset_encoding": client.object("encoding", keys.due(shard)).decode(),
        "intents": client.hlen(keys.intents),
        "intents_bytes": usage(keys.intents),
        "keys_in_db": client.dbsize(),
    }


def claim_rate(app: Outreach, expected: int, limit: int) -> dict[str, Any]:
    began = time.perf_counter()
    claimed = calls = 0
    while True:
        got = len(app.schedule.claim(limit))
        claimed += got
        calls += 1
        if got < limit:
            break
    seconds = time.perf_counter() - began
    if claimed != expected:
        raise RuntimeError(f"claimed {claimed} of {expected} due sends")
    return {
        "claimed": claimed,
        "calls": calls,
        "claims_per_s": round(claimed / seconds, 1),
        "us_per_claim": round(seconds / claimed * 1e6, 2),
        "ms_per_call": round(seconds / calls * 1e3, 3),
    }


def pump_rate(app: Outreach, expected: int) -> dict[str, Any]:
    sent = []
    original = app.deliver_actor.send

    def counting_send(*args, **kwargs):
        sent.append(1)
        return original(*args, **kwargs)

    app.deliver_actor.send = counting_send  # type: ignore[method-assign]
    try:
        began = time.perf_counter()
        total = pumps = 0
        while total < expected:
            got = app.pump()
            pumps += 1
            total += got
            if got == 0:
                break
        seconds = time.perf_counter() - began
    finally:
        del app.deliver_actor.send
    if total != expected:
        raise RuntimeError(f"the pump claimed {total} of {expected} due sends")
    return {
        "claimed": total,
        "pump_calls": pumps,
        "deliver_messages": len(sent),
        "sends_per_s": round(total / seconds, 1),
        "us_per_send": round(seconds / total * 1e6, 2),
    }


def lag_run(app: Outreach, backlog: Backlog, seconds: float, rate: int) -> dict[str, Any]:
    """A producer adds ``rate`` sends/s due now; the pump ticks; lag = enqueued - due, per send."""
    enqueued: dict[str, float] = {}
    original = app.deliver_actor.send

    def timed_send(claims, *args, **kwargs):
        message = original(claims, *args, **kwargs)
        at = time.time()
        for send_id, _token in claims:
            enqueued[send_id] = at
        return message

    planned: dict[str, int] = {}
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            client = redis.Redis.from_url(str(app.settings.redis_url))
            pipe = client.pipeline(transaction=False)
            schedule = app.schedule
            began = time.time()
            made = 0
            while True:
                elapsed = time.time() - began
                if elapsed >= seconds:
                    break
                want = min(int(elapsed * rate) + 1, int(seconds * rate)) - made
                for _ in range(want):
                    due = datetime.now(UTC)
                    send_id, intent, event_id, data = backlog.due_now(made, due)
                    schedule.plan(send_id, due, intent, event_id=event_id, start=due, data=data, pipe=pipe)
                    planned[send_id] = to_ms(due)
                    made += 1
                if want:
                    pipe.execute()
                time.sleep(0.005)
            client.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    app.deliver_actor.send = timed_send  # type: ignore[method-assign]
    scheduler = build_scheduler(app, blocking=False)
    try:
        scheduler.start()
        producer = threading.Thread(target=produce, name="producer")
        producer.start()
        producer.join()
        wait_until(lambda: len(enqueued) >= len(planned), timeout=15, poll=0.02)
    finally:
        scheduler.shutdown(wait=True)
        del app.deliver_actor.send
    if errors:
        raise errors[0]
    lags = sorted(enqueued[s] - due / 1000 for s, due in planned.items() if s in enqueued)
    if not lags:
        raise RuntimeError("no send produced during the lag run was enqueued")

    def pct(p: float) -> float:
        return round(lags[min(len(lags) - 1, int(p / 100 * len(lags)))], 4)

    return {
        "seconds": seconds,
        "produced": len(planned),
        "enqueued": len(lags),
        "rate_per_s": rate,
        "lag_p50_s": pct(50),
        "lag_p90_s": pct(90),
        "lag_p99_s": pct(99),
        "lag_max_s": round(lags[-1], 4),
        "pump_interval_s": app.settings.pump_interval,
    }


def ingest_sample(app: Outreach, events: int) -> dict[str, Any]:
    """``app.ingest`` of ``customer.signed_up`` events (three onboarding sends each) at this backlog."""
    people = [sample_customer(tag) for tag in app.locales.shipped]
    ids = []
    for i in range(events):
        person = people[i % len(people)]
        customer_id = f"ing-{i}"
        app.upsert_customer(
            {"id": customer_id, "given_name": person.given_name, "family_name": person.family_name,
             "email": f"ing{i}@example.com", "locale": person.locale, "zone": person.zone,
             "country": person.country}
        )  # fmt: skip
        ids.append(customer_id)
    before = int(app.client.info("memory")["used_memory"])
    began = time.perf_counter()
    planned = 0
    for i, customer_id in enumerate(ids):
        result = app.ingest({"id": f"ing-ev-{i}", "type": "customer.signed_up", "customer_id": customer_id})
        planned += len(result.planned) if result else 0
    seconds = time.perf_counter() - began
    after = int(app.client.info("memory")["used_memory"])
    return {
        "events": events,
        "sends": planned,
        "events_per_s": round(events / seconds, 1),
        "sends_per_s": round(planned / seconds, 1),
        "memory_bytes_per_send": round((after - before) / planned, 1) if planned else None,
    }


def backlog_phase(
    server: RedisServer, config: Path, tmp: Path, count: int, due_now: int,
    lag_seconds: float, repeats: int, interval: float, sample_events: int,
) -> dict[str, Any]:  # fmt: skip
    server.flush()
    settings = bench_settings(server, config, tmp, f"bl{count}:", interval, max_inflight=10**9)
    app = Outreach(settings)
    backlog = Backlog(app, datetime.now(UTC))
    say(f"backlog {count:,}: planning through Schedule.plan (pipelined)")
    before = server.used_memory()
    began = time.perf_counter()
    backlog.fill(app.client, count)
    fill_s = time.perf_counter() - began
    after = server.used_memory()
    depth = app.schedule.depth()
    if depth != (count, 0):
        raise RuntimeError(f"backlog depth {depth}, expected ({count}, 0)")
    out: dict[str, Any] = {
        "backlog": count,
        "fill_sends_per_s": round(count / fill_s, 1),
        "fill_seconds": round(fill_s, 2),
        "used_memory_before": before,
        "used_memory_after": after,
        "memory_bytes_per_send": round((after - before) / count, 1),
        "memory_usage": memory_samples(server.client, app, backlog.send_id(0)),
    }

    # 5a. Make `due_now` of them (spread over the backlog) due now; claim them, then pump them.
    # Each run takes sends nobody claimed before (still planned, in compact form), as in production.
    step = count // due_now
    if step < repeats + 1:
        raise RuntimeError(f"a backlog of {count:,} is too small for {repeats + 1} runs of {due_now:,}")
    now_ms = to_ms(datetime.now(UTC)) - 1000

    def run_ids(run: int) -> tuple[list[str], list[int]]:
        indices = range(run, step * due_now, step)
        return [backlog.send_id(i) for i in indices], [to_ms(backlog.send(i)[4]) for i in indices]

    say(f"backlog {count:,}: Schedule.claim({CLAIM_LIMIT}) of {due_now:,} due sends x{repeats}")
    claims = []
    for run in range(repeats):
        ids, future = run_ids(run)
        set_due(app, ids, [now_ms] * len(ids))
        claims.append(claim_rate(app, due_now, CLAIM_LIMIT))
        set_due(app, ids, future)
    say(f"backlog {count:,}: app.pump() of {due_now:,} due sends (no worker consuming)")
    ids, future = run_ids(repeats)
    set_due(app, ids, [now_ms] * len(ids))
    pump = pump_rate(app, due_now)
    app.broker.flush(DELIVER_QUEUE)
    set_due(app, ids, future)
    if app.schedule.depth() != (count, 0) or app.schedule.next_due() <= datetime.now(UTC):
        raise RuntimeError("the backlog is not back in the future after the claim runs")
    out["claim"] = {
        "due_now": due_now,
        "claim_limit": CLAIM_LIMIT,
        "claims_per_s": median([c["claims_per_s"] for c in claims]),
        "us_per_claim": median([c["us_per_claim"] for c in claims]),
        "runs": claims,
    }
    out["pump"] = pump

    # 5b. Steady state: 1,000 sends/s due now, the pump ticking.
    say(f"backlog {count:,}: steady state, {PRODUCER_RATE}/s due now for {lag_seconds:g} s")
    out["lag"] = lag_run(app, backlog, lag_seconds, PRODUCER_RATE)
    app.broker.flush(DELIVER_QUEUE)

    # The real planning path at this backlog, on a sample.
    say(f"backlog {count:,}: app.ingest of {sample_events:,} customer.signed_up events")
    out["ingest_sample"] = ingest_sample(app, sample_events)
    app.client.close()
    return out


# -- report ----------------------------------------------------------------------------------


def judge(value: float | None, target: tuple[str, float]) -> dict[str, Any]:
    op, bound = target
    if value is None:
        return {"value": None, "target": f"{op} {bound:g}", "met": None, "status": "not measured"}
    met = value >= bound if op == ">=" else value <= bound
    return {"value": value, "target": f"{op} {bound:g}", "met": met, "status": "met" if met else "not met"}


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def build_report(args, info, rounds, backlogs, large: int, small: int, began: float) -> dict[str, Any]:
    dq = median([r["messages_per_s"] for r in rounds["dramatiq"]])
    cel = rounds["celery"]
    celery_rate = median([r["tasks_per_s"] for r in cel]) if isinstance(cel, list) else None
    out = median([r["delivered_per_s"] for r in rounds["outreach"]])
    ingest = [r["ingest"] for r in rounds["outreach"]]
    big, little = backlogs[large], backlogs[small]
    pipe = rounds["pipeline"]

    def whole(stage: str, figure: str) -> float | None:
        return median([p[stage][figure] for p in pipe if p[stage].get(figure) is not None])

    def per_round(stage: str, figure: str) -> float | None:
        return median([ratio(p[stage][figure], d["messages_per_s"]) for p, d in zip(pipe, rounds["dramatiq"],
                       strict=False) if p[stage].get(figure)])  # fmt: skip

    growth = {
        "claim_us_per_send": ratio(big["claim"]["us_per_claim"], little["claim"]["us_per_claim"]),
        "pump_us_per_send": ratio(big["pump"]["us_per_send"], little["pump"]["us_per_send"]),
        "memory_bytes_per_send": ratio(big["memory_bytes_per_send"], little["memory_bytes_per_send"]),
        "lag_p50_s": ratio(big["lag"]["lag_p50_s"], little["lag"]["lag_p50_s"]),
        "lag_p99_s": ratio(big["lag"]["lag_p99_s"], little["lag"]["lag_p99_s"]),
    }
    headline = {
        "outreach_vs_dramatiq": ratio(out, dq),
        "outreach_vs_celery": ratio(out, celery_rate),
        "memory_bytes_per_send": big["memory_bytes_per_send"],
        "pump_claims_per_s": big["claim"]["claims_per_s"],
        "lag_p99_s": big["lag"]["lag_p99_s"],
        "cost_growth_1m_vs_100k": growth["claim_us_per_send"],
        "ingest_vs_dramatiq": per_round("ingest", "events_per_s"),
        "end_to_end_vs_dramatiq": per_round("end_to_end", "events_per_s"),
        "http_batch_vs_dramatiq": per_round("http_batch", "events_per_s"),
        "redis_cpu_us_per_event": whole("ingest", "redis_cpu_us_per_event"),
    }
    report = {
        "machine": info,
        "settings": {
            "quick": args.quick,
            "sends": args.sends,
            "backlog": large,
            "small_backlog": small,
            "due_now": backlogs[large]["claim"]["due_now"],
            "rounds": len(rounds["outreach"]),
            "worker_processes": 1,
            "worker_threads": THREADS,
            "pump_interval_s": args.pump_interval,
            "noop_messages": NOOP_MESSAGES,
        },
        "dramatiq_noop": {"messages_per_s": dq, "runs": rounds["dramatiq"]},
        "celery_noop": (
            {"available": True, "tasks_per_s": celery_rate, "runs": cel}
            if isinstance(cel, list)
            else {"available": False, "reason": cel}
        ),
        "outreach": {
            "delivered_per_s": out,
            "all_delivered": all(r["all_delivered"] for r in rounds["outreach"]),
            "runs": rounds["outreach"],
        },
        "ingestion": {
            "path": "app.ingest, order.delayed (one send per event)",
            "events": args.sends,
            "events_per_s": median([i["events_per_s"] for i in ingest]),
            "sends_per_s": median([i["sends_per_s"] for i in ingest]),
        },
        "pipeline": {
            "http_batch_events_per_s": whole("http_batch", "events_per_s"),
            "http_batch_web_cpu_us_per_event": whole("http_batch", "web_cpu_us_per_event"),
            "ingest_events_per_s": whole("ingest", "events_per_s"),
            "ingest_worker_cpu_us_per_event": whole("ingest", "worker_cpu_us_per_event"),
            "ingest_redis_cpu_us_per_event": whole("ingest", "redis_cpu_us_per_event"),
            "http_single_requests_per_s": whole("http_single", "requests_per_s"),
            "http_single_p99_ms": whole("http_single", "p99_ms"),
            "end_to_end_events_per_s": whole("end_to_end", "events_per_s"),
            "runs": pipe,
        },
        "backlog": {str(k): v for k, v in backlogs.items()},
        "growth_1m_vs_100k": {"backlogs": [large, small], **growth},
        "ratios": headline,
        "per_round_ratios": [
            {
                "outreach_vs_dramatiq": ratio(o["delivered_per_s"], d["messages_per_s"]),
                "outreach_vs_celery": ratio(o["delivered_per_s"], c["tasks_per_s"]) if c else None,
            }
            for o, d, c in zip(
                rounds["outreach"],
                rounds["dramatiq"],
                cel if isinstance(cel, list) else [None] * len(rounds["outreach"]),
                strict=False,
            )
        ],
        "targets": {name: judge(headline[name], target) for name, target in TARGETS.items()},
        "runtime_s": round(time.perf_counter() - began, 1),
        "notes": [
            "Throughput: messages (sends) per second from the moment the worker process logged that it "
            "was ready (Outreach: from the start of the pump ticks) until the last one was acknowledged "
            "(delivered); the *_with_startup figures include the process start.",
            "Backlog phases lift OUTREACH_MAX_INFLIGHT (no worker consumes there, so the pump's "
            "backpressure would otherwise stop at 5,000 in flight).",
            "memory_bytes_per_send: (INFO used_memory after - before) / sends, for onboarding sends "
            "planned through Schedule.plan as ingest.py plans them (one sign-up, three sends, per customer).",
            "cost_growth_1m_vs_100k: Schedule.claim cost per claimed send at the large backlog "
            "divided by the same at a tenth of it.",
            "Ratios against the Dramatiq no-op (*_vs_dramatiq) are medians of the per-round ratios: each "
            "round's figure over the no-op measured in the same round.",
            "The machine is shared and noisy: compare the ratios, which are measured in the same run.",
        ],
    }
    return report


def print_human(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, Redis {m['redis_server']}")
    s = report["settings"]
    print(f"rounds: {s['rounds']} (medians), sends {s['sends']:,}, backlog {s['backlog']:,} / "
          f"{s['small_backlog']:,}, pump every {s['pump_interval_s']} s")  # fmt: skip
    print(f"dramatiq no-op:       {report['dramatiq_noop']['messages_per_s']:>10,.1f} messages/s")
    celery = report["celery_noop"]
    if celery["available"]:
        print(f"celery no-op:         {celery['tasks_per_s']:>10,.1f} tasks/s")
    else:
        print(f"celery no-op:         unavailable ({celery['reason']})")
    o = report["outreach"]
    print(f"outreach delivered:   {o['delivered_per_s']:>10,.1f} sends/s "
          f"(all delivered: {o['all_delivered']})")  # fmt: skip
    i = report["ingestion"]
    print(f"app.ingest, one by one: {i['events_per_s']:>8,.1f} events/s, {i['sends_per_s']:,.1f} sends/s")
    p = report["pipeline"]
    print(f"HTTP batch accepted:  {p['http_batch_events_per_s']:>10,.1f} events/s "
          f"({p['http_batch_web_cpu_us_per_event']} µs web CPU/event)")  # fmt: skip
    print(f"worker ingestion:     {p['ingest_events_per_s']:>10,.1f} events/s "
          f"({p['ingest_worker_cpu_us_per_event']} µs worker CPU, {p['ingest_redis_cpu_us_per_event']} µs "
          f"Redis CPU per event)")  # fmt: skip
    print(f"single-event POSTs:   {p['http_single_requests_per_s']:>10,.1f} requests/s "
          f"(p99 {p['http_single_p99_ms']} ms)")  # fmt: skip
    print(f"end to end:           {p['end_to_end_events_per_s']:>10,.1f} events/s (HTTP in -> delivered)")
    for size, b in report["backlog"].items():
        print(f"backlog {int(size):>9,}: {b['memory_bytes_per_send']:,.1f} B/send, fill "
              f"{b['fill_sends_per_s']:,.0f}/s, claim {b['claim']['claims_per_s']:,.0f}/s "
              f"({b['claim']['us_per_claim']} µs), pump {b['pump']['sends_per_s']:,.0f}/s, lag p50 "
              f"{b['lag']['lag_p50_s']} s p99 {b['lag']['lag_p99_s']} s, ingest "
              f"{b['ingest_sample']['events_per_s']:,.0f} ev/s")  # fmt: skip
    print("growth 1M/100k: " + ", ".join(f"{k} {v}" for k, v in report["growth_1m_vs_100k"].items()
                                          if k != "backlogs"))  # fmt: skip
    for name, t in report["targets"].items():
        print(f"  {name:<24} {t['value']!s:>12}  target {t['target']:<10} {t['status']}")
    print(f"runtime: {report['runtime_s']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--sends", type=int, default=None, help="sends per round (20,000; quick 3,000)")
    parser.add_argument("--backlog", type=int, default=None, help="large backlog (1,000,000; quick 100,000)")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds; no extra rounds after")
    args = parser.parse_args(argv)
    args.sends = args.sends or (3_000 if args.quick else 20_000)
    large = args.backlog or (100_000 if args.quick else 1_000_000)
    small = max(1, large // 10)
    rounds_wanted = 1 if args.quick else 3
    # Every claim and pump run takes sends never claimed before: the small backlog must hold them all.
    due_now = min(DUE_NOW, small // (rounds_wanted + 1))
    lag_seconds = 5.0 if args.quick else 20.0
    sample_events = 1_000 if args.quick else 3_000
    # The pump interval of every figure: OUTREACH_PUMP_INTERVAL, else 0.1 s.
    args.pump_interval = float(os.environ.get("OUTREACH_PUMP_INTERVAL") or 0.1)
    # Nothing from the caller's environment may route a channel away from the outbox.
    for key in [k for k in os.environ if k.startswith("OUTREACH_")]:
        del os.environ[key]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    began = time.perf_counter()

    tmp = Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    server = RedisServer(tmp / "redis")
    try:
        os.environ["BENCH_REDIS_URL"] = server.url  # read by benchmarks.noop / celery_app
        info = machine(server)
        config = bench_config(tmp)
        unavailable = celery_available()
        rounds: dict[str, Any] = {"dramatiq": [], "celery": [] if unavailable is None else unavailable,
                                  "outreach": [], "pipeline": []}  # fmt: skip
        durations: list[float] = []

        def throughput_round(r: int) -> None:
            t = time.perf_counter()
            say(f"round {r}: dramatiq no-op, {NOOP_MESSAGES:,} messages")
            rounds["dramatiq"].append(dramatiq_round(server, tmp, NOOP_MESSAGES, f"r{r}"))
            if unavailable is None:
                say(f"round {r}: celery no-op, {NOOP_MESSAGES:,} tasks")
                rounds["celery"].append(celery_round(server, tmp, NOOP_MESSAGES, f"r{r}"))
            say(f"round {r}: outreach, {args.sends:,} order.delayed sends")
            result = outreach_round(server, config, tmp, args.sends, f"r{r}", args.pump_interval)
            rounds["outreach"].append(result)
            server.flush()
            say(f"round {r}: the whole path (HTTP, worker ingestion, end to end), {args.sends:,} events")
            whole = pipeline.pipeline_round(sys.modules[__name__], server, config, tmp, args.sends, f"r{r}",
                                            args.pump_interval)  # fmt: skip
            rounds["pipeline"].append(whole)
            server.flush()
            durations.append(time.perf_counter() - t)
            p = rounds["pipeline"][-1]
            say(f"round {r}: {rounds['outreach'][-1]['delivered_per_s']:,.1f} delivered/s, ingest "
                f"{p['ingest']['events_per_s']:,.1f}/s, end to end {p['end_to_end']['events_per_s']}/s, "
                f"dramatiq {rounds['dramatiq'][-1]['messages_per_s']:,.1f}/s")  # fmt: skip

        throughput_round(1)
        backlogs = {}
        for count in (small, large):
            backlogs[count] = backlog_phase(server, config, tmp, count, due_now, lag_seconds,
                                            rounds_wanted, args.pump_interval, sample_events)  # fmt: skip
        server.flush()
        for r in range(2, rounds_wanted + 1):
            remaining = args.budget - (time.perf_counter() - began)
            if max(durations) * 1.15 > remaining:
                say(f"round {r} skipped: {remaining:.0f} s of the budget left")
                break
            throughput_round(r)
        report = build_report(args, info, rounds, backlogs, large, small, began)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_human(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
