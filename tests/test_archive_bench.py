"""The archive's benchmark runs, small, and its figures say what the archive promises: a finished
send leaves under 100 bytes in Redis, and the report counts every archived send."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import _installed, _postgres_bin

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_archive_benchmark_runs_and_keeps_its_promises():
    _installed("redis-server")
    _postgres_bin("initdb")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "archive_bench.py"), "--json", "--sends", "2000", "--rows",
         "5000", "--runs", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    for name in ("sqlite", "postgresql"):
        run = figures[name]
        assert run["finished"] == run["archived"] == run["sends"] == 2000
        # The marks' hashes (16 a shard and generation) cost a little each: at 2,000 sends that is
        # some 8 marks a hash; in a real deployment thousands (docs/PERFORMANCE.md, "The archive").
        assert run["bytes_per_finished_send_after_archiving"] <= 100
        assert run["bytes_per_finished_send_before_archiving"] > 1000
    assert figures["report"]["rows"] == 5000 and set(figures["report"]["seconds"]) == {
        "overall", "locale", "journey", "channel", "country"
    }  # fmt: skip
