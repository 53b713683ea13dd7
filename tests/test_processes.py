"""The Procfile's processes for real: a Dramatiq worker and a scheduler against one Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .conftest import ROOT

BIN = Path(sys.executable).parent


def _zone_at_noon() -> str:
    """An Etc/GMT zone where it is about midday now, so the send window is open."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    # Etc/GMT signs are inverted: Etc/GMT-3 is UTC+3.
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


@pytest.mark.redis_server
def test_worker_and_scheduler_processes_deliver_once(redis_server, tmp_path):
    env = {
        **os.environ,
        "OUTREACH_REDIS_URL": redis_server,
        "OUTREACH_PREFIX": f"proc{uuid.uuid4().hex[:8]}:",
        "OUTREACH_CONFIG_DIR": str(ROOT / "config"),
        "OUTREACH_TEMPLATES_DIR": str(ROOT / "templates"),
        "OUTREACH_OUTBOX_DIR": str(tmp_path / "outbox"),
        "OUTREACH_PUMP_INTERVAL": "0.2",
    }
    people = tmp_path / "people.jsonl"
    people.write_text(
        json.dumps({"id": "p1", "name": "Pat", "email": "pat@example.com", "zone": _zone_at_noon()}) + "\n"
    )

    def cli(*args: str) -> str:
        done = subprocess.run([BIN / "outreach", *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli("customers", "import", str(people))
    procs = [
        subprocess.Popen(
            [BIN / "dramatiq", "outreach.worker", "--processes", "1", "--threads", "2",
             "--queues", "outreach.ingest", "outreach.deliver"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        ),
        # Two schedulers at once: their claims must not overlap.
        subprocess.Popen([BIN / "outreach", "scheduler"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd=tmp_path),
        subprocess.Popen([BIN / "outreach", "scheduler"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd=tmp_path),
    ]  # fmt: skip
    try:
        for i in range(20):
            cli("emit", "order.delayed", "--customer", "p1", "--id", f"e{i}",
                "--data", json.dumps({"order_id": f"O-{i}", "new_eta": "2030-01-01"}))  # fmt: skip
        cli("emit", "order.delayed", "--customer", "p1", "--id", "e0",
            "--data", json.dumps({"order_id": "O-0", "new_eta": "2030-01-01"}))  # fmt: skip
        outbox = tmp_path / "outbox" / "deliveries.jsonl"
        deadline = time.monotonic() + 60
        rows: list[dict] = []
        while time.monotonic() < deadline:
            if outbox.exists():
                rows = [json.loads(x) for x in outbox.read_text().splitlines()]
                if len(rows) >= 20:
                    break
            time.sleep(0.1)  # waiting for other processes' output, not for simulated time
        assert len(rows) == 20
        assert len({r["send_id"] for r in rows}) == 20
        assert "0 waiting, 0 in flight" in cli("schedule", "list")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
