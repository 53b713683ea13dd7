"""Redis restarts under running processes: workers and the scheduler carry on by themselves.

A throwaway redis-server with AOF (``appendfsync always``) is killed with SIGKILL
while real ``dramatiq outreach.worker`` and ``outreach scheduler`` processes
ingest events and deliver sends to a local provider, then started again on the
same port and folder. Nobody restarts the workers or the scheduler. Every event
emitted before, during and after the outage must end as one delivered send, the
provider must take each send id once as new, and the same processes must still
be running at the end (docs/RUNNING.md, "Redis restarts").
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from outreach import Outreach, Settings
from outreach.schedule import FINAL_STATES

from .conftest import STARTER, _free_port, _installed, _wait_for
from .helpers import declared, process_env, zone_at_noon
from .test_chaos import BIN, _stop
from .test_delivery import SECRET, Provider

CUSTOMERS = 40
#: Events per phase: before the outage, emitted just before the kill, after the restart.
EVENTS = 120
#: Real seconds Redis stays down.
DOWN_SECONDS = 3
#: Real seconds to wait for every send to be final once Redis is back.
SETTLE_SECONDS = 60


def _durable_redis(binary: str, port: int, folder: Path) -> subprocess.Popen:
    """A redis-server that writes every command to its AOF before answering."""
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--appendfsync", "always", "--dir", str(folder)]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.redis_server
def test_workers_and_scheduler_ride_out_a_redis_restart(tmp_path):
    binary = _installed("redis-server")
    port = _free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    server = _durable_redis(binary, port, folder)
    url = f"redis://127.0.0.1:{port}/0"
    probe = redis.Redis.from_url(url)
    _wait_for(probe.ping, "redis-server")

    provider = Provider(SECRET).start()
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    (config / "channels.toml").write_text(declared('[sms]\ntimeout = 5\nproviders = ["outbox"]\n'))
    env = process_env(
        url,
        config,
        tmp_path,
        "restart",
        OUTREACH_LEASE_SECONDS="3",
        OUTREACH_INGEST_LEASE_SECONDS="2",
        OUTREACH_SMS_URL=provider.url,
        OUTREACH_SMS_PROVIDERS="http",
        OUTREACH_SMS_SECRET=SECRET,
    )
    app = Outreach(Settings.from_env(env))
    procs: dict[str, subprocess.Popen] = {}
    logs = []

    def start(name: str, *command: str) -> None:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed in finally
        logs.append(log)
        procs[name] = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def emit(phase: str) -> list[str]:
        return [
            app.emit(
                "order.delayed",
                f"r{i % CUSTOMERS}",
                {"order_id": f"{phase}-{i}", "new_eta": "2030-01-01"},
                id=f"{phase}-{i}",
            )  # fmt: skip
            for i in range(EVENTS)
        ]

    def sends_of(event_ids: list[str]) -> Counter:
        """The states of the sends the events planned ("unplanned" for an event not applied yet)."""
        ids = [s for c in range(CUSTOMERS) for s in app.schedule.send_ids_of(f"r{c}")]
        by_event = {send.event_id: send.state.value for send in app.schedule.get_many(ids) if send}
        return Counter(by_event.get(event_id, "unplanned") for event_id in event_ids)

    def wait_final(event_ids: list[str], seconds: float) -> Counter:
        deadline = time.monotonic() + seconds
        while True:
            with contextlib.suppress(redis.ConnectionError):
                seen = sends_of(event_ids)
                if sum(n for s, n in seen.items() if s in FINAL_STATES) == len(event_ids):
                    return seen
            assert time.monotonic() < deadline, f"not final after {seconds} s: {dict(seen)}"
            time.sleep(0.25)  # polling real processes

    try:
        zone_name = zone_at_noon()
        for c in range(CUSTOMERS):
            app.upsert_customer(
                {"id": f"r{c}", "name": f"Rae {c}", "phone": f"+4915201{c:06d}", "zone": zone_name,
                 "channel": "sms"}
            )  # fmt: skip
        start("worker", "dramatiq", "outreach.worker", "--processes", "1", "--threads", "4",
              "--queues", "outreach.ingest", "outreach.deliver")  # fmt: skip
        start("scheduler", "outreach", "scheduler")
        pids = {name: proc.pid for name, proc in procs.items()}

        before = emit("before")
        assert wait_final(before, SETTLE_SECONDS) == Counter({"delivered": EVENTS})

        # Events in the inbox and sends in flight when Redis dies without a goodbye.
        during = emit("during")
        time.sleep(0.3)
        server.kill()
        server.wait(timeout=10)
        time.sleep(DOWN_SECONDS)
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited while Redis was down"
        server = _durable_redis(binary, port, folder)
        _wait_for(probe.ping, "redis-server after the restart")

        after = emit("after")
        everything = before + during + after
        seen = wait_final(everything, SETTLE_SECONDS)
        assert seen == Counter({"delivered": 3 * EVENTS})

        # The same processes did it all.
        assert {name: proc.pid for name, proc in procs.items()} == pids
        assert all(proc.poll() is None for proc in procs.values())
        assert app.deadletters.count() == 0
        # Each send id taken as new exactly once; any repeat was answered, not delivered.
        sends = set(provider.accepted)
        assert len(sends) == 3 * EVENTS
        assert all(r.signed for r in provider.requests)
        for log in logs:
            log.flush()
        said = (tmp_path / "scheduler.log").read_text()
        # The scheduler said the outage once per tick, not once per failed tick, and its end.
        assert said.count("pump tick: Redis unreachable") == 1
        assert said.count("pump tick: Redis answers again") == 1
        assert "Traceback" not in said
        print(
            f"\nredis restart: {len(provider.requests)} requests for {len(sends)} sends, "
            f"{sum(a.repeats for a in provider.accepted.values())} repeats answered"
        )
    finally:
        for proc in procs.values():
            _stop(proc, signal.SIGTERM)
        for log in logs:
            log.close()
        app.client.close()
        probe.close()
        provider.stop()
        server.terminate()
        server.wait(timeout=10)
