"""Chaos: SIGKILL real Dramatiq workers while they deliver a few thousand sends.

The real processes (``dramatiq outreach.worker`` and ``outreach scheduler``) run
against a throwaway redis-server and send SMS to a local HTTP provider that, like a
real one, takes each ``Idempotency-Key`` once and counts repeats. Workers are killed
with SIGKILL (their whole process group) at random moments and restarted. Every
send must end delivered, the provider must have seen every send id, and no key may
have been taken as a new delivery twice. The figures are printed for docs/DELIVERY.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from outreach import Outreach, Settings
from outreach.schedule import FINAL_STATES

from .conftest import STARTER
from .helpers import declared, process_env, zone_at_noon
from .test_delivery import SECRET, Provider

BIN = Path(sys.executable).parent

SENDS = 2500
CUSTOMERS = 250
WORKERS = 2
#: Kill a worker every 0.3-1.5 s, this many times in all.
KILLS = (12, 18)
#: Lease of a claimed send in seconds: killed work comes back this quickly.
LEASE = 3
#: Real seconds the killing may last at most.
KILLING_SECONDS = 30
#: Real seconds to wait for the last sends after the killing stopped.
SETTLE_SECONDS = 40


def _stop(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 10) -> None:
    """Signal a process group this test started, and reap its leader."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.redis_server
def test_sigkilled_workers_lose_nothing_and_the_provider_takes_each_send_once(redis_server, tmp_path):
    rng = random.Random()
    provider = Provider(SECRET).start()
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    # No rate limit on sms: the provider's URL and secret come from the environment.
    (config / "channels.toml").write_text(declared('[sms]\ntimeout = 5\nproviders = ["outbox"]\n'))
    env = process_env(
        redis_server,
        config,
        tmp_path,
        "chaos",
        OUTREACH_LEASE_SECONDS=str(LEASE),
        OUTREACH_SMS_URL=provider.url,
        OUTREACH_SMS_PROVIDERS="http",
        OUTREACH_SMS_SECRET=SECRET,
    )
    app = Outreach(Settings.from_env(env))
    procs: dict[str, subprocess.Popen] = {}
    logs = []

    def start(name: str, *command: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}-{len(logs)}.log", "wb")  # noqa: SIM115 - closed in finally
        logs.append(log)
        # A session of its own: a kill takes the whole process group (dramatiq's master
        # and its worker process) and never this test.
        procs[name] = subprocess.Popen(
            [str(BIN / command[0]), *command[1:]],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return procs[name]

    def start_worker(i: int) -> None:
        start(f"worker{i}", "dramatiq", "outreach.worker", "--processes", "1", "--threads", "4",
              "--queues", "outreach.ingest", "outreach.deliver")  # fmt: skip

    def states(send_ids: list[str]) -> Counter:
        pipe = app.client.pipeline(transaction=False)
        for send_id in send_ids:
            pipe.hget(app.keys.send(send_id), "state")
        return Counter((s or b"?").decode() for s in pipe.execute())

    try:
        began = time.monotonic()
        zone_name = zone_at_noon()
        for c in range(CUSTOMERS):
            app.upsert_customer(
                {"id": f"k{c}", "name": f"Kim {c}", "email": f"kim{c}@example.com",
                 "phone": f"+4915200{c:06d}", "zone": zone_name, "channel": "sms"}
            )  # fmt: skip
        sends = []
        for i in range(SENDS):
            result = app.ingest(
                {"id": f"chaos-{i}", "type": "order.delayed", "customer_id": f"k{i % CUSTOMERS}",
                 "data": {"order_id": f"O-{i}", "new_eta": "2030-01-01"}}
            )  # fmt: skip
            sends.extend(result.planned)
        assert len(set(sends)) == SENDS
        assert app.schedule.depth() == (SENDS, 0)
        planned_in = time.monotonic() - began

        started = time.monotonic()
        for i in range(WORKERS):
            start_worker(i)
        start("scheduler", "outreach", "scheduler")

        target = rng.randint(*KILLS)
        kills = kills_while_busy = 0
        while kills < target and time.monotonic() - started < KILLING_SECONDS:
            time.sleep(rng.uniform(0.3, 1.5))  # a random moment, in real time
            i = rng.randrange(WORKERS)
            _stop(procs[f"worker{i}"])
            kills += 1
            if states(sends)["delivered"] < SENDS:
                kills_while_busy += 1
            start_worker(i)
        killing_for = time.monotonic() - started

        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            seen = states(sends)
            if sum(n for s, n in seen.items() if s in FINAL_STATES) == SENDS:
                break
            assert time.monotonic() < deadline, f"not final after {SETTLE_SECONDS} s: {dict(seen)}"
            time.sleep(0.25)  # polling real processes, not waiting for simulated time
        took = time.monotonic() - started

        pipe = app.client.pipeline(transaction=False)
        for send_id in sends:
            pipe.lrange(app.keys.send_log(send_id), 0, -1)
        histories = [[json.loads(e)["what"] for e in entries] for entries in pipe.execute()]
        accepted = provider.accepted
        keys = provider.keys_seen()
        repeats = sum(a.repeats for a in accepted.values())
        overlapping = {s for s, whats in zip(sends, histories, strict=True) if whats.count("delivered") > 1}
        # A transient error after the provider had the message (a timeout waiting for its reply).
        retried = {s for s, whats in zip(sends, histories, strict=True) if "retry_scheduled" in whats}
        # A repeat a crash explains: the request the provider first took for the key was
        # the last one on its connection. Each worker thread keeps one connection for all
        # its sends, so its sender never sent again: it was killed before it could record
        # the outcome.
        last_on_connection = {r.peer: r for r in provider.requests}
        first_taken = {}
        for r in provider.requests:
            if 200 <= r.status < 300:
                first_taken.setdefault(r.key, r)
        after_kill = {
            key
            for key, taken in accepted.items()
            if taken.repeats and last_on_connection[first_taken[key].peer] is first_taken[key]
        }
        figures = {
            "sends": SENDS,
            "kills": kills,
            "kills while sends were outstanding": kills_while_busy,
            "requests received": len(provider.requests),
            "requests cut off by a kill": provider.truncated,
            "distinct keys": len(keys),
            "accepted as new": len(accepted),
            "repeated keys (requests)": repeats,
            "keys repeated": sum(1 for a in accepted.values() if a.repeats),
            "planning (s)": round(planned_in, 1),
            "killing (s)": round(killing_for, 1),
            "until all final (s)": round(took, 1),
            "lease expiries": sum(whats.count("lease_expired") for whats in histories),
            # Two attempts that both recorded "delivered": the lease ran out while the first
            # was still working through its batch and another worker took the send over.
            "sends delivered twice by overlapping attempts": len(overlapping),
            "repeated keys whose first sender died right after": len(after_kill),
            "sends retried after a transient error": len(retried),
        }
        print("\nchaos figures: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

        assert seen == Counter({"delivered": SENDS})
        assert app.schedule.depth() == (0, 0)
        assert app.deadletters.count() == 0
        # The provider saw every send id as an Idempotency-Key, and nothing else.
        assert set(keys) == set(sends)
        assert all(r.signed for r in provider.requests)
        # Each key was taken as a new delivery exactly once; repeats were answered, not delivered.
        assert set(accepted) == set(sends)
        assert len(provider.requests) == len(accepted) + repeats
        for key, taken in accepted.items():
            assert taken.body["send_id"] == key
            assert all(b["send_id"] == key and b["to"] == taken.body["to"] for b in taken.repeat_bodies)
        # Every repeat has one of the documented causes (docs/DELIVERY.md).
        repeated = {key for key, taken in accepted.items() if taken.repeats}
        unexplained = repeated - after_kill - overlapping - retried
        assert not unexplained, sorted(unexplained)
        assert not provider.errors, provider.errors
        assert kills >= KILLS[0] or time.monotonic() - started >= KILLING_SECONDS
    finally:
        for proc in procs.values():
            _stop(proc, signal.SIGTERM)
        for log in logs:
            log.close()
        app.client.close()
        provider.stop()
