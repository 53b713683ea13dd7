"""A Dramatiq broker with one no-op actor: the baseline ``benchmarks/run.py`` compares Outreach with.

    BENCH_REDIS_URL=redis://127.0.0.1:PORT/0 dramatiq benchmarks.noop --processes 1 --threads 8

The broker is a plain ``RedisBroker`` with Dramatiq's default middleware, the same
as Outreach's (``outreach/app.py``). ``BENCH_REDIS_URL`` is required: this module
never falls back to a default Redis (and so never to a developer's one on 6379).
``BENCH_DRAMATIQ_NAMESPACE`` picks the key namespace (default ``bench-dramatiq``).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

#: Queue of the no-op actor.
QUEUE = "default"
DEFAULT_NAMESPACE = "bench-dramatiq"


def build(url: str, namespace: str = DEFAULT_NAMESPACE) -> tuple[RedisBroker, dramatiq.Actor]:
    """A broker on ``url`` and its no-op actor (not made the global broker)."""
    broker = RedisBroker(url=url, namespace=namespace)

    @dramatiq.actor(actor_name="bench.noop", queue_name=QUEUE, broker=broker, max_retries=0)
    def noop() -> None:
        return None

    return broker, noop


def messages_key(namespace: str = DEFAULT_NAMESPACE) -> str:
    """The hash that holds every message not yet acknowledged (enqueued or being processed)."""
    return f"{namespace}:{QUEUE}.msgs"


_url = os.environ.get("BENCH_REDIS_URL")
if not _url:
    # Never fall back to Dramatiq's default broker (a Redis on localhost:6379).
    raise SystemExit("benchmarks.noop needs BENCH_REDIS_URL (a throwaway redis-server)")
broker, noop = build(_url, os.environ.get("BENCH_DRAMATIQ_NAMESPACE") or DEFAULT_NAMESPACE)
dramatiq.set_broker(broker)
