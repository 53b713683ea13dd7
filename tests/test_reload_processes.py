"""Running processes pick up a sound change of the project and refuse a broken one, keeping the old.

A real ``dramatiq outreach.worker`` and ``outreach scheduler`` run against a throwaway
redis-server on a project folder; the test edits a template while they run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from outreach import Outreach, Settings
from outreach.settings import STARTER

from .helpers import zone_at_noon
from .test_chaos import BIN, _stop

RELOAD_SECONDS = "0.2"


def wait_for(check, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)  # polling real processes
    pytest.fail(f"{what} did not happen within {seconds} s")


@pytest.mark.redis_server
def test_workers_and_the_scheduler_load_a_sound_change_and_refuse_a_broken_one(redis_server, tmp_path):
    project = tmp_path / "shop"
    shutil.copytree(STARTER / "config", project / "config")
    shutil.copytree(STARTER / "templates", project / "templates")
    outbox = tmp_path / "outbox" / "deliveries.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update({"OUTREACH_REDIS_URL": redis_server, "OUTREACH_PREFIX": f"reload{uuid.uuid4().hex[:8]}:",
                "OUTREACH_PROJECT": str(project), "OUTREACH_OUTBOX_DIR": str(outbox.parent),
                "OUTREACH_RELOAD_SECONDS": RELOAD_SECONDS, "OUTREACH_PUMP_INTERVAL": "0.2"})  # fmt: skip
    app = Outreach(Settings.from_env(env))
    # A zone where it is about noon: the notice goes out at once, inside its window.
    app.upsert_customer({"id": "c1", "name": "Ana", "email": "ana@example.com", "zone": zone_at_noon()})
    procs: list[subprocess.Popen] = []
    logs: dict[str, Path] = {}
    handles = []

    def start(name: str, *command: str) -> None:
        logs[name] = tmp_path / f"{name}.log"
        handles.append(logs[name].open("wb"))
        procs.append(subprocess.Popen([str(BIN / command[0]), *command[1:]], env=env, cwd=tmp_path,
                                      stdout=handles[-1], stderr=subprocess.STDOUT,
                                      start_new_session=True))  # fmt: skip

    def subject_of(order: str) -> str:
        app.emit("order.delayed", "c1", {"order_id": order, "new_eta": "2030-01-01"})

        def delivered() -> str | None:
            if not outbox.exists():
                return None
            rows = [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]
            return next((r["subject"] for r in rows if order in r["body"]), None)

        return wait_for(delivered, f"the notice for {order}")

    try:
        start("worker", "dramatiq", "outreach.worker", "--processes", "1", "--threads", "2")
        start("scheduler", "outreach", "scheduler")
        assert "running late" in subject_of("R-1")

        subject = project / "templates" / "order_delay" / "notice" / "subject.txt"
        subject.write_text("{% trans order=data.order_id %}Order {{ order }}: new date{% endtrans %}")
        wait_for(lambda: "config reloaded" in logs["worker"].read_text(), "the worker's reload")
        assert subject_of("R-2") == "Order R-2: new date"

        subject.write_text("{{ data.coupon }}")
        wait_for(lambda: "config change refused" in logs["worker"].read_text(), "the worker's refusal")
        assert "uses data.coupon" in logs["worker"].read_text()
        assert subject_of("R-3") == "Order R-3: new date"  # the last sound config, still in use

        # SIGHUP asks the scheduler to check at once; the broken template is refused there too.
        os.killpg(procs[1].pid, signal.SIGHUP)
        wait_for(
            lambda: logs["scheduler"].read_text().count("config change refused") >= 1, "the scheduler's check"
        )
        assert all(p.poll() is None for p in procs)
    finally:
        for proc in procs:
            _stop(proc, signal.SIGTERM)
        for handle in handles:
            handle.close()
        app.client.close()
