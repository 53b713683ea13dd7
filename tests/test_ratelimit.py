"""The shared token bucket, on fakeredis and a real Redis, driven by a simulated clock."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from outreach.clock import SimulatedClock, SystemClock
from outreach.delivery.ratelimit import RateLimiter, rate_key
from outreach.timing import parse_instant


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(parse_instant("2026-03-20T06:00:00Z"))


@pytest.fixture
def limiter(client, clock) -> RateLimiter:
    return RateLimiter(client, f"t{uuid.uuid4().hex[:10]}:", clock)


def test_a_burst_then_a_wait(limiter):
    assert [limiter.acquire("sms", rate=2, burst=5) for _ in range(5)] == [0.0] * 5
    # Empty: the next token comes after 1/rate seconds, and asking again does not take it.
    assert limiter.acquire("sms", rate=2, burst=5) == 0.5
    assert limiter.acquire("sms", rate=2, burst=5) == 0.5


def test_tokens_refill_with_the_clock_up_to_the_burst(limiter, clock):
    for _ in range(5):
        limiter.acquire("sms", rate=2, burst=5)
    clock.advance(timedelta(milliseconds=500))
    assert limiter.acquire("sms", rate=2, burst=5) == 0.0
    assert limiter.acquire("sms", rate=2, burst=5) == 0.5
    clock.advance(timedelta(milliseconds=200))
    assert limiter.acquire("sms", rate=2, burst=5) == 0.3
    # A long quiet spell fills the bucket to the burst, never beyond.
    clock.advance(timedelta(hours=1))
    assert [limiter.acquire("sms", rate=2, burst=5) for _ in range(6)] == [0.0] * 5 + [0.5]


def test_several_tokens_at_once(limiter, clock):
    assert limiter.acquire("email", rate=10, burst=10, n=8) == 0.0
    # 2 left, 5 wanted: 3 more take 0.3 s at 10 per second.
    assert limiter.acquire("email", rate=10, burst=10, n=5) == 0.3
    clock.advance(timedelta(milliseconds=300))
    assert limiter.acquire("email", rate=10, burst=10, n=5) == 0.0


def test_slow_rates_and_fractional_tokens(limiter, clock):
    assert limiter.acquire("whatsapp", rate=0.1, burst=1) == 0.0
    assert limiter.acquire("whatsapp", rate=0.1, burst=1) == 10.0
    clock.advance(timedelta(seconds=4))
    assert limiter.acquire("whatsapp", rate=0.1, burst=1) == 6.0
    clock.advance(timedelta(seconds=6))
    assert limiter.acquire("whatsapp", rate=0.1, burst=1) == 0.0


def test_channels_have_their_own_buckets(limiter, client):
    assert limiter.acquire("sms", rate=1, burst=1) == 0.0
    assert limiter.acquire("sms", rate=1, burst=1) == 1.0
    assert limiter.acquire("email", rate=1, burst=1) == 0.0
    assert client.exists(rate_key(limiter.prefix, "sms"))
    # The bucket's key expires once it would be full again: no state left behind.
    assert 0 < client.pttl(rate_key(limiter.prefix, "sms")) <= 2000
    limiter.reset("sms")
    assert limiter.acquire("sms", rate=1, burst=1) == 0.0


def test_two_threads_racing_never_exceed_the_budget(client, clock):
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    limiter = RateLimiter(client, prefix, clock)
    granted: list[int] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        granted.append(sum(limiter.acquire("webhook", rate=5, burst=20) == 0.0 for _ in range(60)))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The clock stood still: exactly the burst was handed out, however the threads interleaved.
    assert sum(granted) == 20
    clock.advance(timedelta(seconds=1))
    assert sum(limiter.acquire("webhook", rate=5, burst=20) == 0.0 for _ in range(10)) == 5


def test_redis_time_is_used_without_a_simulated_clock(client):
    limiter = RateLimiter(client, f"t{uuid.uuid4().hex[:10]}:", SystemClock())
    assert limiter.acquire("sms", rate=0.001, burst=2) == 0.0
    assert limiter.acquire("sms", rate=0.001, burst=2) == 0.0
    # Empty at a token per 1000 s: the wait is (almost exactly) that.
    assert 999.0 <= limiter.acquire("sms", rate=0.001, burst=2) <= 1000.0


@pytest.mark.parametrize(
    ("rate", "burst", "n"),
    [(0, 5, 1), (-1, 5, 1), (float("inf"), 5, 1), (1, 0, 1), (1, 2.5, 1), (1, 5, 6), (1, 5, 0)],
)
def test_impossible_requests_are_refused(limiter, rate, burst, n):
    with pytest.raises(ValueError):
        limiter.acquire("sms", rate=rate, burst=burst, n=n)
