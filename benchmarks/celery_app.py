"""A Celery app with one no-op task: the second baseline of ``benchmarks/run.py``.

    BENCH_REDIS_URL=redis://127.0.0.1:PORT/0 celery -A benchmarks.celery_app worker --pool threads -c 8

Redis is the broker; there is no result backend (``task_ignore_result``), so a
task costs one message and nothing else. Everything else is Celery's default
(prefetch multiplier 4, early acknowledgement, JSON). ``BENCH_REDIS_URL`` is
required: this module never falls back to a default Redis.
"""

from __future__ import annotations

import os

from celery import Celery

#: The queue (a Redis list of that name) the no-op task goes to.
QUEUE = "bench-celery"

_url = os.environ.get("BENCH_REDIS_URL")
if not _url:
    raise SystemExit("benchmarks.celery_app needs BENCH_REDIS_URL (a throwaway redis-server)")

app = Celery("bench", broker=_url, backend=None)
app.conf.update(
    task_ignore_result=True,
    task_store_errors_even_if_ignored=False,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=True,
)


@app.task(name="bench.noop")
def noop() -> None:
    return None
