"""The Procfile's processes for real: workers and schedulers, two of each, on every supported deployment.

Each deployment runs the same scenario: twenty order-delay notices for five
customers, one event emitted twice, two Dramatiq worker processes and two
scheduler processes at once. Every notice must arrive exactly once.

* ``redis``: state and broker on one Redis server;
* ``cluster``: state and broker on a three-node Redis Cluster (the state's keys
  spread over the nodes by hash tag; Dramatiq's keys share one tag);
* ``rabbitmq``: state on Redis, Dramatiq's queues on RabbitMQ;
* ``cluster+rabbitmq``: state on the Redis Cluster, queues on RabbitMQ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import STARTER
from .helpers import zone_at_noon

BIN = Path(sys.executable).parent

DEPLOYMENTS = {
    "redis": ("redis_server", None),
    "cluster": ("redis_cluster", None),
    "rabbitmq": ("redis_server", "rabbitmq_url"),
    "cluster+rabbitmq": ("redis_cluster", "rabbitmq_url"),
}


@pytest.mark.redis_server
@pytest.mark.parametrize("deployment", list(DEPLOYMENTS))
def test_two_workers_and_two_schedulers_deliver_each_send_once(deployment, request, tmp_path):
    state, broker = DEPLOYMENTS[deployment]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        {
            "OUTREACH_REDIS_URL": request.getfixturevalue(state),
            "OUTREACH_PREFIX": f"proc{uuid.uuid4().hex[:8]}:",
            "OUTREACH_CONFIG_DIR": str(STARTER / "config"),
            "OUTREACH_TEMPLATES_DIR": str(STARTER / "templates"),
            "OUTREACH_OUTBOX_DIR": str(tmp_path / "outbox"),
            "OUTREACH_PUMP_INTERVAL": "0.2",
            "OUTREACH_ARCHIVE_URL": f"sqlite:///{tmp_path / 'archive.sqlite3'}",
        }
    )
    if broker:
        env["OUTREACH_BROKER_URL"] = request.getfixturevalue(broker)
    people = tmp_path / "people.jsonl"
    zone = zone_at_noon()
    people.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "name": f"Pat {i}", "email": f"pat{i}@example.com", "zone": zone})
            + "\n"
            for i in range(5)
        )
    )

    def cli(*args: str) -> str:
        done = subprocess.run([BIN / "outreach", *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("customers", "import", str(people))
    worker = [BIN / "dramatiq", "outreach.worker", "--processes", "1", "--threads", "2",
              "--queues", "outreach.ingest", "outreach.deliver"]  # fmt: skip
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
        for command in (worker, worker, [BIN / "outreach", "scheduler"], [BIN / "outreach", "scheduler"])
    ]
    try:
        for i in range(20):
            cli("emit", "order.delayed", "--customer", f"p{i % 5}", "--id", f"e{i}",
                "--data", json.dumps({"order_id": f"O-{i}", "new_eta": "2030-01-01"}))  # fmt: skip
        cli("emit", "order.delayed", "--customer", "p0", "--id", "e0",
            "--data", json.dumps({"order_id": "O-0", "new_eta": "2030-01-01"}))  # fmt: skip
        outbox = tmp_path / "outbox" / "deliveries.jsonl"
        deadline = time.monotonic() + 90
        rows: list[dict] = []
        while time.monotonic() < deadline:
            if outbox.exists():
                rows = [json.loads(x) for x in outbox.read_text().splitlines()]
                if len(rows) >= 20:
                    break
            time.sleep(0.1)  # waiting for other processes' output, not for simulated time
        assert len(rows) == 20
        assert len({r["send_id"] for r in rows}) == 20
        assert {r["customer_id"] for r in rows} == {f"p{i}" for i in range(5)}
        assert "0 waiting, 0 in flight" in cli("schedule", "list")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
